//! The ingest consumer: every event on `veil.events.>` is queued once for the writer,
//! which appends it to the log (see [`crate::writer`]).
//!
//! Events are queued a batch at a time (one transaction, one multi-row insert, one
//! commit for up to `ingest_batch` events): one commit per event capped ingest at a
//! few hundred events per second. A malformed event fails its batch, which the
//! consumer then replays one event at a time, so only that event is dead-lettered.

use prost::Message;
use sqlx::{Postgres, Transaction};
use veil_core::app::Foundation;
use veil_core::events::{
    BatchEventHandler, BatchSettings, HandlerError, ReceivedEvent, parse_subject,
};
use veil_proto::events::v1::Event;

use crate::settings::AuditSettings;
use crate::store::{self, NewEntry};

/// Durable consumer name; also the idempotency scope in `processed_events`.
pub const DURABLE: &str = "audit_ingest";

/// Registers the ingest consumer with the service's background tasks.
pub fn spawn(foundation: &mut Foundation, settings: &AuditSettings) {
    let handler = Ingest::new(foundation.events.subject_prefix.clone());
    let filter = foundation.events.all();
    let batch = BatchSettings {
        max_messages: settings.ingest_batch,
        max_wait_ms: settings.ingest_wait_ms,
    };
    foundation.spawn_batch_consumer(DURABLE, filter, handler, batch);
}

/// Queues received events in `pending` (see the module docs).
pub struct Ingest {
    prefix: String,
}

#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error("event envelope does not decode")]
    Decode,
    #[error("event subject is outside the event prefix")]
    Subject,
    #[error("event id in envelope and header differ")]
    EventId,
}

/// What the queue keeps of one event, owned so a batch can borrow it into one insert.
struct Parsed {
    tenant_id: Option<uuid::Uuid>,
    subject_ref: Option<String>,
    actor_id: Option<String>,
    event_type: String,
    occurred_at: time::OffsetDateTime,
}

impl Ingest {
    /// An ingest handler for events under `prefix` (e.g. `veil.events`).
    pub fn new(prefix: String) -> Self {
        Self { prefix }
    }

    fn parse(&self, event: &ReceivedEvent) -> Result<Parsed, IngestError> {
        let envelope = Event::decode(event.payload.as_slice()).map_err(|_| IngestError::Decode)?;
        let (service, kind) =
            parse_subject(&self.prefix, &event.subject).ok_or(IngestError::Subject)?;
        if envelope.event_id != event.event_id.to_string() {
            return Err(IngestError::EventId);
        }
        let occurred_at = envelope
            .occurred_at
            .and_then(|t| veil_core::convert::from_timestamp(&t))
            .unwrap_or_else(time::OffsetDateTime::now_utc);
        Ok(Parsed {
            tenant_id: envelope.tenant_id.parse().ok(),
            subject_ref: Some(envelope.subject_ref).filter(|s| !s.is_empty()),
            actor_id: envelope
                .actor
                .map(|actor| actor.principal_id)
                .filter(|id| !id.is_empty()),
            event_type: format!("{service}.{kind}"),
            occurred_at,
        })
    }
}

#[async_trait::async_trait]
impl BatchEventHandler for Ingest {
    async fn handle_batch(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[ReceivedEvent],
    ) -> Result<(), HandlerError> {
        let parsed = events
            .iter()
            .map(|event| self.parse(event))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HandlerError::permanent)?;
        let entries: Vec<NewEntry<'_>> = events
            .iter()
            .zip(&parsed)
            .map(|(event, parsed)| NewEntry {
                event_id: event.event_id,
                tenant_id: parsed.tenant_id,
                subject_ref: parsed.subject_ref.as_deref(),
                actor_id: parsed.actor_id.as_deref(),
                event_type: &parsed.event_type,
                occurred_at: parsed.occurred_at,
                envelope: &event.payload,
            })
            .collect();
        let queued = store::enqueue_many(tx, &entries).await?;
        tracing::debug!(received = events.len(), queued, "audit events queued");
        Ok(())
    }

    /// A redelivered event is queued at most once (the unique event id in `pending`)
    /// and appended at most once (the writer skips ids already in `entries`), so the
    /// consumer's `processed_events` claim would only repeat that per event.
    fn deduplicates_itself(&self) -> bool {
        true
    }
}
