//! Erasing a subject's consent data, by RPC (`EraseSubject`) or by the retention saga's
//! `retention.erasure_requested` event: the rows keep their proof value but lose the link
//! to the person, and `consent.erasure_completed` reports the counts.

use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;
use veil_core::app::Foundation;
use veil_core::crypto::KeyBytes;
use veil_core::emit::EventContext;
use veil_core::events::{EventHandler, EventsConfig, HandlerError, ReceivedEvent, erasure_target};
use veil_core::types::SubjectRef;
use veil_proto::common::v1::{ErasureOutcome, VeilService};
use veil_proto::events::v1::ErasureCompleted;
use veil_proto::events::v1::event::Payload;

use crate::store;

/// Durable consumer of erasure requests; replicas share it (each request once).
const DURABLE: &str = "consent_erasure";

/// Erases `subject` inside `db`'s transaction and writes the completion event.
pub async fn erase(
    db: &mut PgConnection,
    events: &EventsConfig,
    context: &EventContext,
    tenant: Uuid,
    subject: &SubjectRef,
    request_id: &str,
) -> Result<ErasureOutcome, anyhow::Error> {
    // HMAC under a key that exists only for this call: the rows of this subject stay
    // grouped (their history still reads), but nobody can link them back.
    let unlinkable = veil_core::crypto::subject_ref(&KeyBytes::generate(), subject.as_str());
    store::records::lock_subject(&mut *db, tenant, subject.as_str()).await?;
    let counts =
        store::erase::erase_subject(&mut *db, tenant, subject.as_str(), unlinkable.as_str())
            .await?;
    let outcome = ErasureOutcome {
        service: VeilService::Consent as i32,
        counts: counts.into_iter().collect(),
        completed_at: Some(veil_core::convert::now()),
    };
    let event = ErasureCompleted {
        request_id: request_id.to_string(),
        outcome: Some(outcome.clone()),
    };
    veil_core::emit::emit(
        &mut *db,
        events,
        context,
        Payload::ConsentErasureCompleted(event),
    )
    .await?;
    Ok(outcome)
}

/// Registers the consumer of `retention.erasure_requested`.
pub fn spawn(foundation: &mut Foundation) -> anyhow::Result<()> {
    let filter = foundation
        .events
        .subject("retention", "erasure_requested")?;
    let handler = ErasureRequests {
        events: foundation.events.clone(),
    };
    foundation.spawn_consumer(DURABLE, filter, handler);
    Ok(())
}

struct ErasureRequests {
    events: EventsConfig,
}

#[async_trait::async_trait]
impl EventHandler for ErasureRequests {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        received: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let Some(target) = erasure_target(&received.payload, VeilService::Consent)? else {
            return Ok(());
        };
        let context = target.answer_context("consent");
        erase(
            tx,
            &self.events,
            &context,
            target.tenant.as_uuid(),
            &target.subject,
            &target.request_id,
        )
        .await
        .map_err(|e| HandlerError::retryable(e.to_string()))?;
        tracing::info!(request_id = %target.request_id, "consent data erased for an erasure request");
        Ok(())
    }
}
