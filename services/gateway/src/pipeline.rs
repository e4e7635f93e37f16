//! `veil.gateway.v1.PrivacyGatewayService`, walking skeleton: authenticate the bot, check
//! consent, replace e-mail addresses with per-message placeholders, store the redacted
//! turn and its `message_processed` event in one transaction.
//!
//! The real engine (veil-pii), policies, vault tokenization, notices, privacy commands,
//! restore and streaming arrive with the gateway issue.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use tonic::{Request, Response, Status};
use veil_core::app::Foundation;
use veil_core::auth::Principal;
use veil_core::emit::{EventContext, emit};
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::rpc_layer::CallId;
use veil_core::subjects::{SubjectKeys, validate_subject_id};
use veil_core::types::{RequestId, Role};
use veil_proto::common::v1::{
    ConsentDecision, Entity, Operator, Span, SubjectSelector, subject_selector,
};
use veil_proto::consent::v1::CheckConsentRequest;
use veil_proto::events::v1::GatewayMessageProcessed;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::privacy_gateway_service_server::PrivacyGatewayService;
use veil_proto::gateway::v1::{
    ConsentApplied, ConsentFallback, MessageRole, ProcessMessageRequest, ProcessMessageResponse,
};

use crate::admin::actor;
use crate::apikeys::Authenticator;
use crate::clients::Clients;
use crate::limits::RateLimiter;
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
}

impl PipelineApi {
    pub fn new(
        foundation: &Foundation,
        auth: Arc<Authenticator>,
        limiter: Arc<RateLimiter>,
        clients: Clients,
        subjects: SubjectKeys,
    ) -> Self {
        Self {
            pool: foundation.pool.clone(),
            events: foundation.events.clone(),
            relay: foundation.relay.clone(),
            auth,
            limiter,
            clients,
            subjects,
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

fn email_regex() -> &'static regex::Regex {
    static EMAIL: OnceLock<regex::Regex> = OnceLock::new();
    EMAIL.get_or_init(|| {
        regex::Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
            .unwrap_or_else(|_| unreachable!("the e-mail pattern is a valid regex"))
    })
}

/// Replaces e-mail addresses with `<EMAIL_ADDRESS_n>`; equal addresses share a number.
fn redact_emails(text: &str) -> (String, Vec<Entity>) {
    let mut out = String::with_capacity(text.len());
    let mut entities = Vec::new();
    let mut numbers: BTreeMap<&str, usize> = BTreeMap::new();
    let mut last = 0;
    let mut out_chars = 0u32;
    let mut in_chars = 0u32;
    for found in email_regex().find_iter(text) {
        let before = &text[last..found.start()];
        out.push_str(before);
        let before_chars = before.chars().count() as u32;
        out_chars += before_chars;
        in_chars += before_chars;
        let next = numbers.len() + 1;
        let number = *numbers.entry(found.as_str()).or_insert(next);
        let placeholder = format!("<EMAIL_ADDRESS_{number}>");
        let value_chars = found.as_str().chars().count() as u32;
        let out_start = out.len();
        out.push_str(&placeholder);
        let placeholder_chars = placeholder.chars().count() as u32;
        entities.push(Entity {
            entity_type: "EMAIL_ADDRESS".into(),
            span: Some(Span {
                byte_start: found.start() as u32,
                byte_end: found.end() as u32,
                char_start: in_chars,
                char_end: in_chars + value_chars,
            }),
            output_span: Some(Span {
                byte_start: out_start as u32,
                byte_end: out.len() as u32,
                char_start: out_chars,
                char_end: out_chars + placeholder_chars,
            }),
            score: 1.0,
            placeholder,
            operator: Operator::Pseudonymize as i32,
            explanation: None,
        });
        in_chars += value_chars;
        out_chars += placeholder_chars;
        last = found.end();
    }
    out.push_str(&text[last..]);
    (out, entities)
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
            let principal = Principal {
                tenant: Some(tenant),
                principal_id: format!("gateway:{}", caller.key_id)
                    .parse()
                    .map_err(ServiceError::internal)?,
                roles: vec![Role::Bot],
                request_id: request_id.clone(),
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

        let (redacted, entities) = redact_emails(&request.text);
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for entity in &entities {
            *counts.entry(entity.entity_type.clone()).or_default() += 1;
        }
        let message_id = uuid::Uuid::now_v7();
        let mut tx = self.pool.begin().await.map_err(ServiceError::from)?;
        let turn_index = store::insert_turn(
            &mut tx,
            &NewTurn {
                message_id,
                tenant: tenant.as_uuid(),
                conversation_id: &context.conversation_id,
                subject_ref: subject_ref.as_str(),
                role: role as i32,
                redacted_text: &redacted,
                entity_counts: serde_json::to_value(&counts).map_err(ServiceError::internal)?,
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
                operator_counts: BTreeMap::from([(
                    "PSEUDONYMIZE".to_string(),
                    entities.len() as i64,
                )])
                .into_iter()
                .collect(),
                entity_counts: counts.into_iter().collect(),
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
            redacted_text: redacted,
            entities,
            consent,
            effective_purposes,
            stored: true,
            turn_index,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_get_stable_placeholders_and_spans() {
        let text = "Écris à anna@example.org ou anna@example.org, pas bob@example.com";
        let (out, entities) = redact_emails(text);
        assert_eq!(
            out,
            "Écris à <EMAIL_ADDRESS_1> ou <EMAIL_ADDRESS_1>, pas <EMAIL_ADDRESS_2>"
        );
        assert_eq!(entities.len(), 3);
        let span = entities[0].span.expect("span");
        assert_eq!(
            &text[span.byte_start as usize..span.byte_end as usize],
            "anna@example.org"
        );
        assert_eq!(span.char_start, 8);
        let out_span = entities[2].output_span.expect("span");
        assert_eq!(
            &out[out_span.byte_start as usize..out_span.byte_end as usize],
            "<EMAIL_ADDRESS_2>"
        );
    }

    #[test]
    fn conversation_ids_are_checked() {
        assert!(validate_conversation_id("conv-1:a.b_c").is_ok());
        assert!(validate_conversation_id("").is_err());
        assert!(validate_conversation_id("has space").is_err());
    }
}
