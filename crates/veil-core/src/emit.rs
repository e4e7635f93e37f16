//! Building event envelopes and writing them to the outbox.
//!
//! The subject of every event comes from its payload kind through [`kind_of`], the one
//! table that maps `veil.events.v1.Event.payload` variants to `<service>.<event>`.

use prost::Message;
use sqlx::PgExecutor;
use uuid::Uuid;
use veil_proto::common::v1::{Actor, VeilService};
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;

use crate::events::{EventsConfig, EventsError, OutboxEvent, OutboxWriter, enqueue};
use crate::types::{SubjectRef, TenantId};

/// Who and what an event is about; never carries raw personal data.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    /// Tenant, if the event belongs to one.
    pub tenant: Option<TenantId>,
    /// Subject pseudonym, if the event concerns a subject.
    pub subject_ref: Option<SubjectRef>,
    /// Who acted.
    pub actor: Option<Actor>,
    /// Request that caused the event.
    pub request_id: String,
}

/// `(service, event)` of a payload, i.e. the last two tokens of its subject.
pub fn kind_of(payload: &Payload) -> (&'static str, &'static str) {
    match payload {
        Payload::GatewayMessageProcessed(_) => ("gateway", "message_processed"),
        Payload::GatewayTextRestored(_) => ("gateway", "text_restored"),
        Payload::GatewayPrivacyCommandDetected(_) => ("gateway", "privacy_command_detected"),
        Payload::GatewayAuthFailed(_) => ("gateway", "auth_failed"),
        Payload::GatewayTenantCreated(_) => ("gateway", "tenant_created"),
        Payload::GatewayApiKeyCreated(_) => ("gateway", "api_key_created"),
        Payload::GatewayApiKeyRevoked(_) => ("gateway", "api_key_revoked"),
        Payload::GatewayPolicyChanged(_) => ("gateway", "policy_changed"),
        Payload::GatewayErasureCompleted(_) => ("gateway", "erasure_completed"),
        Payload::ConsentPurposeChanged(_) => ("consent", "purpose_changed"),
        Payload::ConsentNoticePublished(_) => ("consent", "notice_published"),
        Payload::ConsentNoticeServed(_) => ("consent", "notice_served"),
        Payload::ConsentGranted(_) => ("consent", "granted"),
        Payload::ConsentDenied(_) => ("consent", "denied"),
        Payload::ConsentWithdrawn(_) => ("consent", "withdrawn"),
        Payload::ConsentPreferenceSignal(_) => ("consent", "preference_signal"),
        Payload::ConsentErasureCompleted(_) => ("consent", "erasure_completed"),
        Payload::VaultRecordStored(_) => ("vault", "record_stored"),
        Payload::VaultRecordDeleted(_) => ("vault", "record_deleted"),
        Payload::VaultRevealed(_) => ("vault", "revealed"),
        Payload::VaultSubjectShredded(_) => ("vault", "subject_shredded"),
        Payload::VaultKeyRotated(_) => ("vault", "key_rotated"),
        Payload::VaultErasureCompleted(_) => ("vault", "erasure_completed"),
        Payload::RetentionPolicyChanged(_) => ("retention", "policy_changed"),
        Payload::RetentionHoldPlaced(_) => ("retention", "hold_placed"),
        Payload::RetentionHoldReleased(_) => ("retention", "hold_released"),
        Payload::RetentionPurgeCompleted(_) => ("retention", "purge_completed"),
        Payload::RetentionRequestReceived(_) => ("retention", "request_received"),
        Payload::RetentionRequestStateChanged(_) => ("retention", "request_state_changed"),
        Payload::RetentionRequestOverdue(_) => ("retention", "request_overdue"),
        Payload::RetentionErasureRequested(_) => ("retention", "erasure_requested"),
        Payload::RetentionCertificateIssued(_) => ("retention", "certificate_issued"),
        Payload::RetentionRecipientNotification(_) => ("retention", "recipient_notification"),
        Payload::AuditTreeHeadSigned(_) => ("audit", "tree_head_signed"),
        Payload::AuditIncidentOpened(_) => ("audit", "incident_opened"),
        Payload::AuditIncidentUpdated(_) => ("audit", "incident_updated"),
    }
}

fn source_of(service: &str) -> VeilService {
    match service {
        "gateway" => VeilService::Gateway,
        "consent" => VeilService::Consent,
        "vault" => VeilService::Vault,
        "retention" => VeilService::Retention,
        "audit" => VeilService::Audit,
        _ => VeilService::Unspecified,
    }
}

/// Builds the envelope for `payload` with a fresh UUIDv7 id and the current trace context.
pub fn envelope(context: &EventContext, payload: Payload) -> Event {
    let (service, _) = kind_of(&payload);
    Event {
        event_id: Uuid::now_v7().to_string(),
        occurred_at: Some(crate::convert::now()),
        tenant_id: context.tenant.map(|t| t.to_string()).unwrap_or_default(),
        subject_ref: context
            .subject_ref
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        actor: context.actor.clone(),
        source: source_of(service) as i32,
        traceparent: crate::telemetry::current_traceparent().unwrap_or_default(),
        request_id: context.request_id.clone(),
        payload: Some(payload),
    }
}

/// Writes the event into the outbox through `executor` (pass the transaction of the
/// state change) and returns its id.
pub async fn emit<'c>(
    executor: impl PgExecutor<'c>,
    events: &EventsConfig,
    context: &EventContext,
    payload: Payload,
) -> Result<Uuid, EventsError> {
    let outbox = outbox_event(events, context, payload)?;
    enqueue(executor, &outbox).await?;
    Ok(outbox.event_id)
}

/// Writes an event that goes with no other write through `writer`, batched with other
/// calls' events (group commit), and returns its id once it is durable.
pub async fn emit_alone(
    writer: &OutboxWriter,
    events: &EventsConfig,
    context: &EventContext,
    payload: Payload,
) -> Result<Uuid, EventsError> {
    let outbox = outbox_event(events, context, payload)?;
    let event_id = outbox.event_id;
    writer.write(outbox).await?;
    Ok(event_id)
}

/// The outbox row of an event: its subject, encoded envelope, id and trace context.
pub fn outbox_event(
    events: &EventsConfig,
    context: &EventContext,
    payload: Payload,
) -> Result<OutboxEvent, EventsError> {
    let (service, event) = kind_of(&payload);
    let subject = events.subject(service, event)?;
    let envelope = envelope(context, payload);
    let event_id = Uuid::parse_str(&envelope.event_id).unwrap_or_else(|_| Uuid::now_v7());
    let mut outbox = OutboxEvent::new(subject, envelope.encode_to_vec());
    outbox.event_id = event_id;
    if !envelope.traceparent.is_empty() {
        outbox = outbox.with_traceparent(envelope.traceparent.clone());
    }
    Ok(outbox)
}
