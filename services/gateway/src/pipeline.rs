//! `veil.gateway.v1.PrivacyGatewayService`, walking skeleton: authenticate the bot, check
//! consent, replace e-mail addresses with per-message placeholders, store the redacted
//! turn and its `message_processed` event in one transaction.
//!
//! The real engine (veil-pii), policies, vault tokenization, notices, privacy commands,
//! restore and streaming arrive with the gateway issue.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use veil_core::app::Foundation;
use veil_core::auth::Principal;
use veil_core::emit::{EventContext, emit};
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::rpc_layer::CallId;
use veil_core::subjects::{SubjectKeys, validate_subject_id};
use veil_core::types::{RequestId, Role};
use veil_proto::common::v1::{ConsentDecision, SubjectSelector, subject_selector};
use veil_proto::consent::v1::CheckConsentRequest;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{GatewayMessageProcessed, GatewayTextRestored};
use veil_proto::gateway::v1::privacy_gateway_service_server::PrivacyGatewayService;
use veil_proto::gateway::v1::{
    ConsentApplied, ConsentFallback, MessageRole, ProcessMessageRequest, ProcessMessageResponse,
    RestoreTextRequest, RestoreTextResponse,
};

use crate::admin::actor;
use crate::apikeys::Authenticator;
use crate::clients::Clients;
use crate::engine::{self, Engine};
use crate::limits::RateLimiter;
use crate::pseudonyms;
use crate::restore::Restorer;
use crate::store::{self, NewTurn};

/// Largest accepted message text.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Implementation of the message pipeline.
pub struct PipelineApi {
    pool: sqlx::PgPool,
    events: EventsConfig,
    relay: RelayHandle,
    auth: Arc<Authenticator>,
    limiter: Arc<RateLimiter>,
    clients: Clients,
    subjects: SubjectKeys,
    engine: Arc<Engine>,
}

impl PipelineApi {
    pub fn new(
        foundation: &Foundation,
        auth: Arc<Authenticator>,
        limiter: Arc<RateLimiter>,
        clients: Clients,
        subjects: SubjectKeys,
        engine: Arc<Engine>,
    ) -> Self {
        Self {
            pool: foundation.pool.clone(),
            events: foundation.events.clone(),
            relay: foundation.relay.clone(),
            auth,
            limiter,
            clients,
            subjects,
            engine,
        }
    }
}

fn validate_conversation_id(id: &str) -> Result<(), ServiceError> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "context.conversation_id",
            "must be 1 to 128 characters of [A-Za-z0-9._:-]",
        ))
    }
}

#[tonic::async_trait]
impl PrivacyGatewayService for PipelineApi {
    async fn process_message(
        &self,
        request: Request<ProcessMessageRequest>,
    ) -> Result<Response<ProcessMessageResponse>, Status> {
        let caller = self
            .auth
            .authenticate_call(
                request.metadata(),
                "/veil.gateway.v1.PrivacyGatewayService/ProcessMessage",
            )
            .await?;
        caller.require_any(&[Role::Bot])?;
        self.limiter.check(&caller.key_id)?;
        let tenant = caller.tenant()?;
        let request_id = request
            .extensions()
            .get::<CallId>()
            .and_then(|id| id.0.parse::<RequestId>().ok())
            .unwrap_or_else(RequestId::generate);
        let request = request.into_inner();
        let context = request
            .context
            .ok_or_else(|| ServiceError::invalid("context", "is required"))?;
        validate_conversation_id(&context.conversation_id)?;
        validate_subject_id("context.subject_id", &context.subject_id)?;
        let role = MessageRole::try_from(context.role)
            .ok()
            .filter(|r| *r != MessageRole::Unspecified)
            .ok_or_else(|| ServiceError::invalid("context.role", "is required"))?;
        if request.text.is_empty() {
            return Err(ServiceError::invalid("text", "must not be empty").into());
        }
        if request.text.len() > MAX_TEXT_BYTES {
            return Err(ServiceError::invalid("text", "must be at most 64 KiB").into());
        }
        let subject_ref = self.subjects.subject_ref(&tenant, &context.subject_id);
        let principal = Principal {
            tenant: Some(tenant),
            principal_id: format!("gateway:{}", caller.key_id)
                .parse()
                .map_err(ServiceError::internal)?,
            roles: vec![Role::Bot],
            request_id: request_id.clone(),
        };

        // Consent for the message's purposes (skeleton: no cache yet).
        let mut consent = Vec::new();
        let mut effective_purposes = Vec::new();
        let mut denied_purposes = Vec::new();
        if !context.purposes.is_empty() {
            let check = CheckConsentRequest {
                subject: Some(SubjectSelector {
                    subject: Some(subject_selector::Subject::SubjectRef(
                        subject_ref.as_str().to_string(),
                    )),
                }),
                purpose_keys: context.purposes.clone(),
                jurisdiction: context.jurisdiction,
            };
            let call = self.clients.request("consent", &principal, check)?;
            let decisions = self
                .clients
                .consent()
                .check_consent(call)
                .await?
                .into_inner();
            for decision in decisions.decisions {
                let allowed = decision.decision == ConsentDecision::Allowed as i32;
                if allowed {
                    effective_purposes.push(decision.purpose_key.clone());
                } else {
                    denied_purposes.push(decision.purpose_key.clone());
                }
                consent.push(ConsentApplied {
                    fallback: if allowed {
                        ConsentFallback::Unspecified
                    } else {
                        ConsentFallback::DropPurpose
                    } as i32,
                    decision: Some(decision),
                });
            }
        }

        // Detect and minimize; pseudonymized values go to the vault as tokens.
        let policy = self.engine.default_policy();
        let findings = self.engine.analyze(&request.text, policy);
        let values = Engine::pseudonymized_values(&request.text, &findings, policy);
        let service = Principal {
            roles: vec![Role::Service],
            ..principal.clone()
        };
        let tokens = self
            .clients
            .tokenize(&service, &context.subject_id, &values)
            .await?;
        let by_token: HashMap<String, (String, String)> =
            tokens.iter().cloned().zip(values.iter().cloned()).collect();

        let message_id = uuid::Uuid::now_v7();
        let mut tx = self.pool.begin().await.map_err(ServiceError::from)?;
        let (known, counters) =
            pseudonyms::load(&mut tx, tenant.as_uuid(), &context.conversation_id, &tokens)
                .await
                .map_err(ServiceError::from)?;
        let mut map =
            pseudonyms::rebuild(&known, &counters, &by_token).map_err(ServiceError::internal)?;
        let redacted = self
            .engine
            .anonymize(&request.text, &findings, policy, &mut map)
            .map_err(|e| {
                ServiceError::FailedPrecondition(format!("policy cannot be applied: {e}"))
            })?;
        // Tokens seen for the first time in this conversation get their placeholder stored
        // (a new one, or an existing one for another spelling of the same value).
        let mut new_rows = Vec::new();
        for (token, (entity, value)) in tokens.iter().zip(values.iter()) {
            if known.iter().any(|row| &row.token == token) {
                continue;
            }
            let Some(entity_type) = veil_pii::EntityType::parse(entity) else {
                continue;
            };
            let placeholder = map.placeholder_for(&entity_type, value);
            new_rows.push((token.as_str(), placeholder, entity.as_str()));
        }
        let rows: Vec<pseudonyms::NewRow<'_>> = new_rows
            .iter()
            .map(|(token, placeholder, entity)| pseudonyms::NewRow {
                token,
                placeholder,
                entity_type: entity,
                number: pseudonyms::number_of(placeholder).unwrap_or(0),
            })
            .collect();
        pseudonyms::insert(
            &mut tx,
            tenant.as_uuid(),
            &context.conversation_id,
            subject_ref.as_str(),
            &rows,
        )
        .await
        .map_err(ServiceError::from)?;
        let (entity_counts, operator_counts) = engine::counts(&redacted);
        let entities = engine::entities(&redacted, &findings, context.explain);
        let turn_index = store::insert_turn(
            &mut tx,
            &NewTurn {
                message_id,
                tenant: tenant.as_uuid(),
                conversation_id: &context.conversation_id,
                subject_ref: subject_ref.as_str(),
                role: role as i32,
                redacted_text: &redacted.text,
                entity_counts: serde_json::to_value(&entity_counts)
                    .map_err(ServiceError::internal)?,
            },
        )
        .await
        .map_err(ServiceError::from)?;
        let event_context = EventContext {
            tenant: Some(tenant),
            subject_ref: Some(subject_ref.clone()),
            actor: Some(actor(&caller)),
            request_id: request_id.to_string(),
        };
        emit(
            &mut *tx,
            &self.events,
            &event_context,
            Payload::GatewayMessageProcessed(GatewayMessageProcessed {
                conversation_id: context.conversation_id.clone(),
                message_id: message_id.to_string(),
                message_role: role.as_str_name().to_string(),
                operator_counts: operator_counts.into_iter().collect(),
                entity_counts: entity_counts.into_iter().collect(),
                purposes: effective_purposes.clone(),
                denied_purposes,
                stored: true,
                policy_version: 0,
                text_bytes: request.text.len() as i64,
                streamed: false,
            }),
        )
        .await
        .map_err(ServiceError::internal)?;
        tx.commit().await.map_err(ServiceError::from)?;
        self.relay.notify();
        Ok(Response::new(ProcessMessageResponse {
            message_id: message_id.to_string(),
            redacted_text: redacted.text,
            entities,
            consent,
            effective_purposes,
            stored: true,
            turn_index,
            ..Default::default()
        }))
    }

    async fn restore_text(
        &self,
        request: Request<RestoreTextRequest>,
    ) -> Result<Response<RestoreTextResponse>, Status> {
        let caller = self
            .auth
            .authenticate_call(
                request.metadata(),
                "/veil.gateway.v1.PrivacyGatewayService/RestoreText",
            )
            .await?;
        caller.require_any(&[Role::Bot])?;
        self.limiter.check(&caller.key_id)?;
        let tenant = caller.tenant()?;
        let request_id = request
            .extensions()
            .get::<CallId>()
            .and_then(|id| id.0.parse::<RequestId>().ok())
            .unwrap_or_else(RequestId::generate);
        let request = request.into_inner();
        validate_conversation_id(&request.conversation_id).map_err(|_| {
            ServiceError::invalid(
                "conversation_id",
                "must be 1 to 128 characters of [A-Za-z0-9._:-]",
            )
        })?;
        validate_subject_id("subject_id", &request.subject_id)?;
        if request.text.len() > MAX_TEXT_BYTES {
            return Err(ServiceError::invalid("text", "must be at most 64 KiB").into());
        }
        let subject_ref = self.subjects.subject_ref(&tenant, &request.subject_id);
        let principal = Principal {
            tenant: Some(tenant),
            principal_id: format!("gateway:{}", caller.key_id)
                .parse()
                .map_err(ServiceError::internal)?,
            roles: vec![Role::Bot],
            request_id: request_id.clone(),
        };
        let restorer = Restorer::load(
            &self.pool,
            &self.clients,
            &principal,
            tenant,
            &request.conversation_id,
            subject_ref.as_str(),
        )
        .await?;
        let (text, counts, unknown) = restorer.restore(&request.text);
        let restored_count: i64 = counts.values().sum();
        let event_context = EventContext {
            tenant: Some(tenant),
            subject_ref: Some(subject_ref),
            actor: Some(actor(&caller)),
            request_id: request_id.to_string(),
        };
        emit(
            &self.pool,
            &self.events,
            &event_context,
            Payload::GatewayTextRestored(GatewayTextRestored {
                conversation_id: request.conversation_id,
                entity_counts: counts.into_iter().collect(),
                unknown_placeholders: unknown.len() as i64,
                streamed: false,
            }),
        )
        .await
        .map_err(ServiceError::internal)?;
        self.relay.notify();
        Ok(Response::new(RestoreTextResponse {
            text,
            restored_count: i32::try_from(restored_count).unwrap_or(i32::MAX),
            unknown_placeholders: unknown,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_are_checked() {
        assert!(validate_conversation_id("conv-1:a.b_c").is_ok());
        assert!(validate_conversation_id("").is_err());
        assert!(validate_conversation_id("has space").is_err());
    }
}
