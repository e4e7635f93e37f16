//! What ends a turn, written atomically in one statement (shared with concurrent turns):
//! new placeholders, the redacted transcript turn (unless consent says not to store it),
//! `message_processed`, when a privacy command was found, `privacy_command_detected`,
//! and a keyed call's answer.

use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_core::events::OutboxEvent;
use veil_core::types::SubjectRef;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{GatewayMessageProcessed, GatewayPrivacyCommandDetected};
use veil_proto::gateway::v1::{MessageRole, ProcessMessageResponse, RedactStreamCompleted};

use super::consent::ConsentOutcome;
use super::{Call, PipelineApi};
use crate::admin::actor;
use crate::engine;
use crate::store::{Landed, NewPlaceholder, TurnAnswer, TurnWrite};

/// What a turn leaves behind.
pub struct Turn<'a> {
    pub conversation_id: &'a str,
    pub subject_ref: &'a SubjectRef,
    pub role: MessageRole,
    pub redacted_text: &'a str,
    pub entities: &'a [veil_pii::RedactedEntity],
    pub new_placeholders: &'a [NewPlaceholder],
    pub consent: &'a ConsentOutcome,
    pub command: Option<GatewayPrivacyCommandDetected>,
    pub policy_version: i64,
    pub text_bytes: usize,
    pub streamed: bool,
    /// What the turn was built on, checked by the write (see [`TurnWrite`]).
    pub assumed: Assumed<'a>,
    /// A keyed call's answer, kept with the turn (see `super::replays`).
    pub answer: Option<TurnAnswer>,
}

/// What a turn's map and restriction were taken from, for the write to check.
#[derive(Default)]
pub struct Assumed<'a> {
    /// The subject's restriction, when the turn depends on it.
    pub restricted: Option<bool>,
    /// The conversation's rows the map used.
    pub rows: &'a [crate::pseudonyms::Row],
}

/// Where the turn landed.
pub struct Stored {
    /// Empty when the turn was not stored.
    pub message_id: String,
    pub turn_index: i64,
}

/// An answer that tells where its turn landed: filled in once the turn is written, or
/// on a replay of an answer kept with its turn (which leaves that out).
pub(super) trait Landing {
    fn land(&mut self, stored: Stored);
}

impl Landing for ProcessMessageResponse {
    fn land(&mut self, stored: Stored) {
        self.stored = !stored.message_id.is_empty();
        self.message_id = stored.message_id;
        self.turn_index = stored.turn_index;
    }
}

impl Landing for RedactStreamCompleted {
    fn land(&mut self, stored: Stored) {
        self.stored = !stored.message_id.is_empty();
        self.message_id = stored.message_id;
        self.turn_index = stored.turn_index;
    }
}

/// A turn whose map went stale (a concurrent turn took a token or placeholder it had as
/// new) is rebuilt by its caller this many times at most.
pub(super) const ATTEMPTS: usize = 5;

/// Concurrent turns of one conversation race for the next turn index; the loser retries
/// with the index after the winner's. Each lost race means another turn landed, so this
/// many turns of one conversation can be written at once before one gives up.
const INDEX_RACES: usize = 16;

/// What a turn gets after too many lost races.
pub(super) fn too_many_concurrent_turns() -> ServiceError {
    ServiceError::Unavailable("too many concurrent turns in this conversation; retry".into())
}

/// What a keyed call gets whose claim a retry took over (after the claim's timeout)
/// before this call's turn was written: it writes nothing.
fn claim_lost() -> ServiceError {
    ServiceError::FailedPrecondition(
        "a retry took context.idempotency_key over from this call; nothing was stored".into(),
    )
}

/// What a call gets whose subject was erased after it began: nothing of it is written,
/// so nothing it read or derived before the erasure outlives it.
pub(super) fn erased_in_flight() -> ServiceError {
    ServiceError::FailedPrecondition(
        "the subject's data was erased while this call was processed; nothing was stored".into(),
    )
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

impl PipelineApi {
    /// Writes the turn and its events atomically (with concurrent turns, see
    /// [`super::turn_writer`]) and wakes the outbox relay. `None` when nothing was
    /// written because a concurrent turn took a token or placeholder the turn's map had
    /// as new: the caller rebuilds the map and tries again.
    pub(super) async fn persist(
        &self,
        call: &Call,
        turn: Turn<'_>,
    ) -> Result<Option<Stored>, ServiceError> {
        let mut attempt = 1;
        loop {
            match self.persist_once(call, &turn).await {
                Err(Retry::Conflict) if attempt < INDEX_RACES => attempt += 1,
                Err(Retry::Conflict) => return Err(too_many_concurrent_turns()),
                Err(Retry::Failed(error)) => return Err(error),
                Ok(stored) => return Ok(stored),
            }
        }
    }

    async fn persist_once(&self, call: &Call, turn: &Turn<'_>) -> Result<Option<Stored>, Retry> {
        let store_turn = !turn.consent.do_not_store;
        let message_id = uuid::Uuid::now_v7();
        let (entity_counts, operator_counts) = engine::counts(turn.entities);
        let message_id_text = if store_turn {
            message_id.to_string()
        } else {
            String::new()
        };
        let context = EventContext {
            tenant: Some(call.tenant),
            subject_ref: Some(turn.subject_ref.clone()),
            actor: Some(actor(&call.caller)),
            request_id: call.principal.request_id.to_string(),
        };
        let processed = GatewayMessageProcessed {
            conversation_id: turn.conversation_id.to_string(),
            message_id: message_id_text.clone(),
            message_role: turn.role.as_str_name().to_string(),
            operator_counts: operator_counts.into_iter().collect(),
            entity_counts: entity_counts.clone().into_iter().collect(),
            purposes: turn.consent.effective.clone(),
            denied_purposes: turn.consent.denied.clone(),
            stored: store_turn,
            policy_version: turn.policy_version,
            text_bytes: i64::try_from(turn.text_bytes).unwrap_or(i64::MAX),
            streamed: turn.streamed,
        };
        let mut events =
            vec![self.outbox_event(&context, Payload::GatewayMessageProcessed(processed))?];
        if let Some(event) = &turn.command {
            let mut event = event.clone();
            event.conversation_id = turn.conversation_id.to_string();
            event.message_id = message_id_text.clone();
            events
                .push(self.outbox_event(&context, Payload::GatewayPrivacyCommandDetected(event))?);
        }
        let write = TurnWrite {
            message_id,
            tenant: call.tenant.as_uuid(),
            conversation_id: turn.conversation_id.to_string(),
            subject_ref: turn.subject_ref.as_str().to_string(),
            role: turn.role as i32,
            redacted_text: turn.redacted_text.to_string(),
            entity_counts: serde_json::to_string(&entity_counts)
                .map_err(|e| Retry::Failed(ServiceError::internal(e)))?,
            purposes: turn.consent.effective.clone(),
            store: store_turn,
            placeholders: turn.new_placeholders.to_vec(),
            events,
            restricted: turn.assumed.restricted,
            known: crate::pseudonyms::pairs(turn.assumed.rows),
            answer: turn.answer.clone(),
            erased_after: self.erased_after(call),
        };
        let landed = self
            .turns
            .write(write)
            .await
            .map_err(|lost| Retry::Failed(lost.into()))?
            .map_err(Retry::from)?;
        match landed {
            Landed::At(turn_index) => Ok(Some(Stored {
                message_id: message_id_text,
                turn_index,
            })),
            Landed::Stale => Ok(None),
            Landed::ClaimLost => Err(Retry::Failed(claim_lost())),
            Landed::Erased => Err(Retry::Failed(erased_in_flight())),
        }
    }

    /// The outbox row of one event, written with the turn.
    fn outbox_event(&self, context: &EventContext, payload: Payload) -> Result<OutboxEvent, Retry> {
        veil_core::emit::outbox_event(&self.events, context, payload)
            .map_err(|e| Retry::Failed(ServiceError::internal(e)))
    }
}

/// Why one attempt did not store the turn.
enum Retry {
    /// Another turn took the index first.
    Conflict,
    /// Anything else.
    Failed(ServiceError),
}

impl From<sqlx::Error> for Retry {
    fn from(error: sqlx::Error) -> Self {
        if is_unique_violation(&error) {
            Retry::Conflict
        } else {
            Retry::Failed(ServiceError::from(error))
        }
    }
}

/// Placeholders of `after` that `before` did not have, as rows with their tokens.
pub fn new_placeholders(
    before: &veil_pii::PseudonymMap,
    after: &veil_pii::PseudonymMap,
) -> Vec<(String, String, String)> {
    after
        .entries()
        .filter(|(placeholder, _)| before.original(placeholder).is_none())
        .map(|(placeholder, p)| (placeholder.to_string(), p.entity.clone(), p.value.clone()))
        .collect()
}
