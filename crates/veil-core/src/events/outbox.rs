//! The transactional outbox: events written in the same transaction as the state change.

use std::fmt;

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::error::EventsError;

/// DDL of the event tables, created in the connection's current schema (services set
/// `search_path` to their own schema). Idempotent.
///
/// - `outbox`: events waiting for (or recently done with) publication; `rejected_at`
///   marks one the broker refuses for good (larger than its `max_payload`), kept for an
///   operator instead of blocking the rows behind it.
/// - `processed_events`: which event ids each consumer has applied, for idempotency.
/// - `event_failures`: messages a consumer gave up on (no payload is kept).
pub const OUTBOX_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS outbox (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    subject     text        NOT NULL,
    payload     bytea       NOT NULL,
    traceparent text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text
);
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS rejected_at timestamptz;
CREATE INDEX IF NOT EXISTS outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent_at_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS processed_events_processed_at_idx
    ON processed_events (processed_at);
CREATE TABLE IF NOT EXISTS event_failures (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    event_id        uuid,
    subject         text        NOT NULL,
    stream_sequence bigint      NOT NULL,
    delivered       bigint      NOT NULL,
    reason          text        NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now()
);
"#;

/// Creates the event tables in the current schema if they are missing.
///
/// Concurrent callers (replicas starting together) are serialized by an advisory lock,
/// because concurrent `CREATE TABLE IF NOT EXISTS` can still collide in the catalog.
pub async fn ensure_tables(pool: &PgPool) -> Result<(), EventsError> {
    let mut tx = crate::db::begin(pool).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('veil.events.ensure_tables'))")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(OUTBOX_DDL).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// One event to publish; written with [`enqueue`].
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique id, also the `Nats-Msg-Id` used for de-duplication.
    pub event_id: Uuid,
    /// Full subject, built with [`super::EventsConfig::subject`].
    pub subject: String,
    /// Encoded event (the protobuf envelope).
    pub payload: Vec<u8>,
    /// W3C trace context of the request that caused the event.
    pub traceparent: Option<String>,
}

impl OutboxEvent {
    /// A new event with a fresh time-ordered (v7) id.
    pub fn new(subject: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            subject: subject.into(),
            payload: payload.into(),
            traceparent: None,
        }
    }

    /// Sets the trace context carried to consumers.
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }
}

// The payload stays out of logs: only its size is shown.
impl fmt::Debug for OutboxEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxEvent")
            .field("event_id", &self.event_id)
            .field("subject", &self.subject)
            .field("payload_len", &self.payload.len())
            .field("traceparent", &self.traceparent)
            .finish()
    }
}

/// Writes `event` into the outbox. Pass the transaction of the state change
/// (`&mut *tx`), so the event exists exactly when the change commits.
pub async fn enqueue<'c>(
    executor: impl PgExecutor<'c>,
    event: &OutboxEvent,
) -> Result<(), EventsError> {
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload, traceparent) VALUES ($1, $2, $3, $4)",
    )
    .bind(event.event_id)
    .bind(&event.subject)
    .bind(&event.payload)
    .bind(&event.traceparent)
    .execute(executor)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_events_get_distinct_time_ordered_ids() {
        let first = OutboxEvent::new("veil.events.a.b", vec![1]);
        let second = OutboxEvent::new("veil.events.a.b", vec![1]);
        assert_ne!(first.event_id, second.event_id);
        assert_eq!(first.event_id.get_version_num(), 7);
        assert!(first.event_id < second.event_id);
    }

    #[test]
    fn debug_hides_the_payload() {
        let event = OutboxEvent::new("veil.events.a.b", b"secret@example.com".to_vec())
            .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let shown = format!("{event:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("payload_len: 18"), "{shown}");
    }
}
