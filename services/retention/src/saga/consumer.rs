//! The consumer of every service's `erasure_completed` (one filter subject with a
//! wildcard for the service: `<prefix>.*.erasure_completed`).

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message as _;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::app::Foundation;
use veil_core::convert::from_timestamp;
use veil_core::events::{EventHandler, HandlerError, ReceivedEvent};
use veil_core::types::TenantId;
use veil_proto::common::v1::VeilService;
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;

use super::{finish, steps};
use crate::certificate::service_label;
use crate::state::Retention;

/// Durable consumer name; also its idempotency scope in `processed_events`.
const DURABLE: &str = "retention_erasure_completed";

/// Registers the consumer.
pub fn spawn(foundation: &mut Foundation, state: Arc<Retention>) -> anyhow::Result<()> {
    // Validates the prefix and event name, then swaps the service token for a wildcard.
    let exact = foundation.events.subject("gateway", "erasure_completed")?;
    let filter = format!("{}.*.erasure_completed", foundation.events.subject_prefix);
    debug_assert!(exact.ends_with(".gateway.erasure_completed"));
    foundation.spawn_consumer(DURABLE, filter, CompletionConsumer { state });
    Ok(())
}

struct CompletionConsumer {
    state: Arc<Retention>,
}

#[derive(Debug, thiserror::Error)]
enum SagaError {
    #[error("event envelope does not decode")]
    Decode,
    #[error("erasure answer without a valid tenant or request id")]
    Target,
    #[error("saga step failed: {0}")]
    Step(String),
}

#[async_trait::async_trait]
impl EventHandler for CompletionConsumer {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let envelope = Event::decode(event.payload.as_slice())
            .map_err(|_| HandlerError::permanent(SagaError::Decode))?;
        let (service, completed) = match &envelope.payload {
            Some(Payload::GatewayErasureCompleted(c)) => (VeilService::Gateway, c),
            Some(Payload::VaultErasureCompleted(c)) => (VeilService::Vault, c),
            Some(Payload::ConsentErasureCompleted(c)) => (VeilService::Consent, c),
            _ => return Ok(()),
        };
        // Erasures outside a data-subject request (admin ShredSubject) are not ours.
        if completed.request_id.is_empty() {
            return Ok(());
        }
        let tenant: TenantId = envelope
            .tenant_id
            .parse()
            .map_err(|_| HandlerError::permanent(SagaError::Target))?;
        let request_id = Uuid::parse_str(&completed.request_id)
            .map_err(|_| HandlerError::permanent(SagaError::Target))?;
        let outcome = completed.outcome.clone().unwrap_or_default();
        let counts: BTreeMap<String, i64> = outcome.counts.into_iter().collect();
        let completed_at = outcome
            .completed_at
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(OffsetDateTime::now_utc);
        let recorded = steps::complete(
            tx,
            tenant.as_uuid(),
            request_id,
            service_label(service),
            &counts,
            completed_at,
        )
        .await
        .map_err(|e| HandlerError::retryable(SagaError::Step(e.to_string())))?;
        if !recorded {
            return Ok(());
        }
        let finished = finish::try_finish(tx, &self.state, tenant, request_id)
            .await
            .map_err(|e| {
                HandlerError::retryable(SagaError::Step(tonic::Status::from(e).message().into()))
            })?;
        // The consumer commits after this returns; the relay also polls, so waking it
        // early only saves a poll interval.
        if finished {
            self.state.notify_relay();
        }
        Ok(())
    }
}
