//! Erasing a subject from the gateway schema, shared by `EraseSubject` and the erasure
//! saga: the consumer of `retention.erasure_requested` erases the event's subject and
//! reports `gateway.erasure_completed` with its counts, in the consumer's transaction.
//!
//! Every table keyed by the subject is cleared with one set-based DELETE by its
//! (tenant, subject_ref) index, so the time does not grow with a row loop: transcript
//! turns, pseudonym map rows (placeholder -> vault token), the restriction mark and the
//! stored answers of idempotent messages.

use std::collections::HashMap;

use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;
use veil_core::app::Foundation;
use veil_core::convert::now;
use veil_core::emit::{EventContext, emit};
use veil_core::events::{
    EventHandler, EventsConfig, HandlerError, ReceivedEvent, RelayHandle, erasure_target,
};
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::{Actor, ActorKind, ErasureOutcome, VeilService};
use veil_proto::events::v1::ErasureCompleted;
use veil_proto::events::v1::event::Payload;

/// Durable consumer name; also its idempotency scope in `processed_events`.
const DURABLE: &str = "gateway_erasure";

/// The gateway acting on its own (events of erasures it performed).
pub const SERVICE_PRINCIPAL: &str = "veil-gateway";

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    pub turns: i64,
    pub pseudonym_maps: i64,
    pub restrictions: i64,
    pub idempotent_answers: i64,
}

impl Erased {
    /// The counts as an erasure outcome.
    pub fn outcome(&self) -> ErasureOutcome {
        ErasureOutcome {
            service: VeilService::Gateway as i32,
            counts: HashMap::from([
                ("turns".to_string(), self.turns),
                ("pseudonym_maps".to_string(), self.pseudonym_maps),
                ("restrictions".to_string(), self.restrictions),
                ("idempotent_answers".to_string(), self.idempotent_answers),
            ]),
            completed_at: Some(now()),
        }
    }
}

/// Deletes every row of the subject in one statement (four data-modifying CTEs, each by
/// an index on (tenant_id, subject_ref)) and leaves the subject's fence, so that a turn
/// of a message begun before now is refused (see the 0009 migration). The fence and the
/// subject's lock come first, by statements of their own: the delete's snapshot then
/// holds every turn written before. Erasing again finds nothing: idempotent.
pub async fn erase_subject(
    tx: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<Erased> {
    veil_core::fences::fence_subject(tx, tenant, subject_ref).await?;
    let (turns, pseudonym_maps, restrictions, idempotent_answers): (i64, i64, i64, i64) =
        sqlx::query_as(
            "WITH turns AS (DELETE FROM transcript_messages
                            WHERE tenant_id = $1 AND subject_ref = $2 RETURNING 1),
                  maps AS (DELETE FROM conversation_pseudonyms
                           WHERE tenant_id = $1 AND subject_ref = $2 RETURNING 1),
                  marks AS (DELETE FROM subject_restrictions
                            WHERE tenant_id = $1 AND subject_ref = $2 RETURNING 1),
                  answers AS (DELETE FROM message_replays
                              WHERE tenant_id = $1 AND subject_ref = $2 RETURNING 1)
             SELECT (SELECT count(*) FROM turns), (SELECT count(*) FROM maps),
                    (SELECT count(*) FROM marks), (SELECT count(*) FROM answers)",
        )
        .bind(tenant)
        .bind(subject_ref)
        .fetch_one(&mut *tx)
        .await?;
    Ok(Erased {
        turns,
        pseudonym_maps,
        restrictions,
        idempotent_answers,
    })
}

/// The event context of an erasure the gateway performs for `request_id`.
pub fn context(tenant: TenantId, subject: &SubjectRef, request_id: &str) -> EventContext {
    EventContext {
        tenant: Some(tenant),
        subject_ref: Some(subject.clone()),
        actor: Some(Actor {
            kind: ActorKind::Service as i32,
            principal_id: SERVICE_PRINCIPAL.into(),
            roles: Vec::new(),
            tenant_id: String::new(),
        }),
        request_id: request_id.to_string(),
    }
}

/// Erases the subject and writes `gateway.erasure_completed` in the same transaction.
pub async fn erase_and_report(
    tx: &mut PgConnection,
    events: &EventsConfig,
    tenant: TenantId,
    subject: &SubjectRef,
    request_id: &str,
) -> Result<ErasureOutcome, EraseError> {
    let erased = erase_subject(tx, tenant.as_uuid(), subject.as_str()).await?;
    let outcome = erased.outcome();
    let completed = Payload::GatewayErasureCompleted(ErasureCompleted {
        request_id: request_id.to_string(),
        outcome: Some(outcome.clone()),
    });
    emit(
        &mut *tx,
        events,
        &context(tenant, subject, request_id),
        completed,
    )
    .await
    .map_err(|e| EraseError::Event(e.to_string()))?;
    Ok(outcome)
}

/// Why an erasure did not complete (never carries personal data).
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("outbox: {0}")]
    Event(String),
}

/// Registers the erasure-saga consumer.
pub fn spawn(foundation: &mut Foundation) -> anyhow::Result<()> {
    let filter = foundation
        .events
        .subject("retention", "erasure_requested")?;
    let consumer = ErasureConsumer {
        events: foundation.events.clone(),
        relay: foundation.relay.clone(),
    };
    foundation.spawn_consumer(DURABLE, filter, consumer);
    Ok(())
}

struct ErasureConsumer {
    events: EventsConfig,
    relay: RelayHandle,
}

#[tonic::async_trait]
impl EventHandler for ErasureConsumer {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let Some(target) = erasure_target(&event.payload, VeilService::Gateway)? else {
            return Ok(());
        };
        let outcome = erase_and_report(
            tx,
            &self.events,
            target.tenant,
            &target.subject,
            &target.request_id,
        )
        .await
        .map_err(HandlerError::retryable)?;
        tracing::info!(
            request_id = %target.request_id,
            turns = outcome.counts.get("turns").copied().unwrap_or(0),
            "gateway erasure done"
        );
        // The consumer commits after this returns; an early wake-up is harmless (the
        // relay also polls).
        self.relay.notify();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
