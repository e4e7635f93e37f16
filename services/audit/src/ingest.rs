//! The ingest consumer: every event on `veil.events.>` is queued once for the writer,
//! which appends it to the log (see [`crate::writer`]).

use prost::Message;
use sqlx::{Postgres, Transaction};
use veil_core::app::Foundation;
use veil_core::events::{EventHandler, HandlerError, ReceivedEvent, parse_subject};
use veil_proto::events::v1::Event;

use crate::store::{self, NewEntry};

/// Durable consumer name; also the idempotency scope in `processed_events`.
const DURABLE: &str = "audit_ingest";

/// Registers the ingest consumer with the service's background tasks.
pub fn spawn(foundation: &mut Foundation) {
    let handler = Ingest {
        prefix: foundation.events.subject_prefix.clone(),
    };
    let filter = foundation.events.all();
    foundation.spawn_consumer(DURABLE, filter, handler);
}

struct Ingest {
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

#[async_trait::async_trait]
impl EventHandler for Ingest {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let envelope = Event::decode(event.payload.as_slice())
            .map_err(|_| HandlerError::permanent(IngestError::Decode))?;
        let (service, kind) = parse_subject(&self.prefix, &event.subject)
            .ok_or_else(|| HandlerError::permanent(IngestError::Subject))?;
        if envelope.event_id != event.event_id.to_string() {
            return Err(HandlerError::permanent(IngestError::EventId));
        }
        let event_type = format!("{service}.{kind}");
        let tenant_id = envelope.tenant_id.parse().ok();
        let occurred_at = envelope
            .occurred_at
            .and_then(|t| {
                time::OffsetDateTime::from_unix_timestamp(t.seconds)
                    .ok()
                    .map(|at| at + time::Duration::nanoseconds(i64::from(t.nanos)))
            })
            .unwrap_or_else(time::OffsetDateTime::now_utc);
        let subject_ref = Some(envelope.subject_ref.as_str()).filter(|s| !s.is_empty());
        let actor_id = envelope
            .actor
            .as_ref()
            .map(|actor| actor.principal_id.as_str())
            .filter(|id| !id.is_empty());
        // Idempotent twice over: `processed_events` (by the consumer) and the unique
        // event id in `pending`; the writer also skips ids already appended.
        let queued = store::enqueue(
            tx,
            &NewEntry {
                event_id: event.event_id,
                tenant_id,
                subject_ref,
                actor_id,
                event_type: &event_type,
                occurred_at,
                envelope: &event.payload,
            },
        )
        .await?;
        tracing::debug!(queued, event_type = %event_type, "audit event received");
        Ok(())
    }
}
