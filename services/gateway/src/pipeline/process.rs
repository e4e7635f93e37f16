//! `ProcessMessage`: consent, detection, minimization under the tenant policy, vault
//! tokens for pseudonymized values, the redacted turn and its events in one transaction,
//! and privacy commands. Raw text is never stored.

use std::collections::HashMap;

use prost::Message as _;
use veil_core::error::ServiceError;
use veil_core::types::SubjectRef;
use veil_pii::{Operator, Policy, PolicySpec};
use veil_proto::gateway::v1::{
    MessageContext, MessageRole, ProcessMessageRequest, ProcessMessageResponse,
};

use super::commands::{CommandSubject, acts_after_store};
use super::consent::ConsentOutcome;
use super::lookups::StateQuery;
use super::notices::NoticeSubject;
use super::persist::{ATTEMPTS, Assumed, Landing, Turn, too_many_concurrent_turns};
use super::replays::{Claim, Claimed, ReplayKey, Replayed};
use super::{Call, PipelineApi, check_redacted_size, validate_text};
use crate::engine::{self, Engine};
use crate::pseudonyms::{self, Known};
use crate::turn_state::TurnState;

/// A checked `ProcessMessage` request.
struct Message {
    context: MessageContext,
    role: MessageRole,
    text: String,
    subject_ref: SubjectRef,
}

impl PipelineApi {
    pub(super) async fn process(
        &self,
        call: Call,
        request: ProcessMessageRequest,
    ) -> Result<ProcessMessageResponse, tonic::Status> {
        let (context, role) = super::context::checked("context", request.context)?;
        validate_text("text", &request.text, false)?;
        let subject_ref = self.subjects.subject_ref(&call.tenant, &context.subject_id);
        let message = Message {
            context,
            role,
            text: request.text,
            subject_ref,
        };
        let Some(key) = ReplayKey::of(call.tenant, &message.context) else {
            let (response, _) = self.process_checked(&call, &message, None).await?;
            return Ok(response);
        };
        let fingerprint = self
            .replays
            .fingerprint(&call.tenant, &message.context, &message.text);
        let claim = match self
            .replays
            .claim(key, &message.subject_ref, &fingerprint)
            .await?
        {
            Claimed::Replay(replayed) => {
                return Ok(self.replayed_response(&call, &message, replayed).await?);
            }
            Claimed::Fresh(claim) => claim,
        };
        // A keyed message runs to its end even when its caller goes away, so that the
        // retry finds its answer rather than a claim that holds it off until it expires.
        let api = self.clone();
        let task = async move {
            let result = api.process_checked(&call, &message, Some(&claim)).await;
            let recorded = match &result {
                // Kept with the turn.
                Ok((_, true)) => Ok(()),
                Ok((response, false)) => {
                    api.replays.answer(&claim, &response.encode_to_vec()).await
                }
                Err(_) => api.replays.release(&claim).await,
            };
            if let Err(error) = recorded {
                tracing::warn!(%error, "the idempotent message's answer was not recorded");
            }
            result.map(|(response, _)| response)
        };
        tokio::spawn(tracing::Instrument::in_current_span(task))
            .await
            .map_err(ServiceError::internal)?
    }

    /// `ProcessMessage` of a checked message, and whether its answer was settled by its
    /// turn: under a `claim`, the turn's statement keeps the answer as it stood then, and
    /// only an answer that changed after it must be kept again.
    async fn process_checked(
        &self,
        call: &Call,
        message: &Message,
        claim: Option<&Claim>,
    ) -> Result<(ProcessMessageResponse, bool), tonic::Status> {
        let Message {
            context,
            role,
            text,
            subject_ref,
        } = message;
        let (role, tenant) = (*role, call.tenant);
        let policy = self.policies.get(&self.pool, tenant).await?;
        // GDPR Art. 18: a restricted subject's turn is stored but used for no purpose and
        // not handed back to the bot. The mark is taken with the placeholders (from this
        // replica's hint or in one statement) after tokenization, and checked again by
        // the turn write; consent for the message's purposes does not change it unless
        // it redacts everything; only then, or when consent refuses the message, is the
        // mark read first.
        let consent = self
            .consent(
                call,
                subject_ref,
                &context.purposes,
                context.jurisdiction,
                &policy,
            )
            .await;
        let read_first = consent.as_ref().map_or(true, |outcome| outcome.redact_all);
        let restricted_first = if read_first {
            let query = StateQuery::restriction(tenant.as_uuid(), subject_ref);
            Some(self.lookups.turn_state(query).await?.restricted)
        } else {
            None
        };
        let consent = match restricted_first {
            Some(true) => ConsentOutcome::default(),
            _ => consent?,
        };

        // Detect and minimize. A purpose without consent may demand that everything goes.
        let redact_all;
        let pii_policy: &Policy = if consent.redact_all {
            redact_all = Policy::new(PolicySpec {
                default_operator: Operator::Redact,
                operators: Default::default(),
                ..policy.pii.spec().clone()
            })
            .map_err(ServiceError::internal)?;
            &redact_all
        } else {
            &policy.pii
        };
        let findings = self.engine.analyze(text, pii_policy);
        let values = Engine::pseudonymized_values(text, &findings, pii_policy);
        let tokens = self
            .clients
            .tokenize(
                &call.service(),
                &context.subject_id,
                &values,
                policy.proto.store_raw_in_vault,
                call.started,
            )
            .await?;
        let by_token: HashMap<String, (String, String)> =
            tokens.iter().cloned().zip(values.iter().cloned()).collect();

        let notices_due = if role == MessageRole::User {
            let subject = NoticeSubject {
                subject_id: &context.subject_id,
                locale: &context.locale,
                jurisdiction: context.jurisdiction,
                conversation: Some(&context.conversation_id),
            };
            self.notice_statuses(call, &subject)
                .await?
                .into_iter()
                .filter(|status| status.due)
                .filter_map(|status| status.notice)
                .collect()
        } else {
            Vec::new()
        };
        let subject = CommandSubject::of(context, subject_ref);
        let command = if role == MessageRole::User {
            self.privacy_command(call, text, &subject, &policy).await
        } else {
            None
        };

        let (privacy_command, command_event) = command.unzip();
        let settled = !acts_after_store(privacy_command.as_ref(), &policy);
        let no_purpose = ConsentOutcome::default();
        let mut attempt = 1;
        let conversation = (tenant.as_uuid(), context.conversation_id.as_str());
        let (mut response, stored) = loop {
            // Placeholders come from the conversation's stored rows, read without a lock
            // (or, on a first attempt, from what this replica last saw of them): the turn
            // is written only if what it was built on still holds (see `Assumed`);
            // otherwise the map is read again. A message with nothing to pseudonymize
            // needs no placeholder.
            let TurnState { restricted, known } = match restricted_first {
                Some(restricted) if tokens.is_empty() && attempt == 1 => TurnState {
                    restricted,
                    known: Known::default(),
                },
                _ => {
                    let hinted = attempt == 1 && restricted_first.is_none();
                    self.map_state(conversation, subject_ref, &tokens, hinted)
                        .await?
                }
            };
            let mut map = pseudonyms::rebuild(&known.rows, &known.counters, &by_token)
                .map_err(ServiceError::internal)?;
            let redacted = self
                .engine
                .anonymize(text, &findings, pii_policy, &mut map)
                .map_err(|e| {
                    ServiceError::FailedPrecondition(format!("policy cannot be applied: {e}"))
                })?;
            check_redacted_size(&redacted.text)?;
            let rows = pseudonyms::new_rows(&known, &mut map, &tokens, &values);
            let consent = if restricted { &no_purpose } else { &consent };
            // The answer but for the turn's message id and index.
            let response = ProcessMessageResponse {
                stored: false,
                message_id: String::new(),
                redacted_text: if restricted {
                    String::new()
                } else {
                    redacted.text.clone()
                },
                entities: if restricted {
                    Vec::new()
                } else {
                    engine::entities(&redacted, &findings, context.explain)
                },
                notices_due: notices_due.clone(),
                privacy_command: privacy_command.clone(),
                consent: consent.applied.clone(),
                effective_purposes: consent.effective.clone(),
                policy_version: policy.version,
                turn_index: 0,
                processing_restricted: restricted,
            };
            let answer = claim
                .map(|claim| {
                    self.replays
                        .turn_answer(claim, &response.encode_to_vec(), settled)
                })
                .transpose()?;
            let turn = Turn {
                conversation_id: &context.conversation_id,
                subject_ref,
                role,
                redacted_text: &redacted.text,
                entities: &redacted.entities,
                new_placeholders: &rows,
                consent,
                command: command_event.clone(),
                policy_version: policy.version,
                text_bytes: text.len(),
                streamed: false,
                assumed: Assumed {
                    restricted: Some(restricted),
                    rows: &known.rows,
                },
                answer,
            };
            let (tenant_id, conversation_id) = conversation;
            match self.persist(call, turn).await? {
                Some(stored) => {
                    let subject = subject_ref.as_str();
                    let hints = &self.map_hints;
                    hints.written(tenant_id, conversation_id, subject, restricted, &rows);
                    break (response, stored);
                }
                None => {
                    self.map_hints.forget(tenant_id, conversation_id);
                    if attempt == ATTEMPTS {
                        return Err(too_many_concurrent_turns().into());
                    }
                    tracing::debug!(attempt, "the turn's map or restriction changed meanwhile");
                    attempt += 1;
                }
            }
        };
        response.land(stored);
        if let Some(command) = response.privacy_command.as_mut() {
            self.erase_after_store(call, &subject, &policy, command)
                .await;
        }
        Ok((response, settled))
    }

    /// The subject's restriction and the conversation's map for a message with `tokens`:
    /// from this replica's hint when `hinted` and the hint is enough, otherwise read (and
    /// remembered).
    async fn map_state(
        &self,
        (tenant, conversation): (uuid::Uuid, &str),
        subject_ref: &SubjectRef,
        tokens: &[String],
        hinted: bool,
    ) -> Result<TurnState, ServiceError> {
        let hint = hinted
            .then(|| {
                self.map_hints
                    .state(tenant, conversation, subject_ref.as_str(), tokens)
            })
            .flatten();
        if let Some(state) = hint {
            return Ok(state);
        }
        let query = StateQuery::conversation(tenant, subject_ref, conversation, tokens.to_vec());
        let state = self.lookups.turn_state(query).await?;
        self.map_hints
            .read(tenant, conversation, subject_ref.as_str(), &state);
        Ok(state)
    }
}

impl PipelineApi {
    /// A kept answer as the first call gave it, or, when that call died before the step
    /// after its turn that changes the answer, as that step leaves it (then kept).
    async fn replayed_response(
        &self,
        call: &Call,
        message: &Message,
        replayed: Replayed,
    ) -> Result<ProcessMessageResponse, ServiceError> {
        let mut response = ProcessMessageResponse::decode(replayed.answer.as_slice())
            .map_err(ServiceError::internal)?;
        if let Some(turn) = replayed.turn {
            response.land(turn);
        }
        if let Some(claim) = replayed.unfinished {
            let subject = CommandSubject::of(&message.context, &message.subject_ref);
            self.finish_after_store(call, &subject, response.privacy_command.as_mut())
                .await;
            if let Err(error) = self.replays.answer(&claim, &response.encode_to_vec()).await {
                tracing::warn!(%error, "the idempotent message's answer was not recorded");
            }
        }
        Ok(response)
    }
}
