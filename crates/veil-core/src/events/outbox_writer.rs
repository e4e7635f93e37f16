//! Group commit of events that go with no other write, such as the audit records of a
//! reveal or a restore: under load, the events of concurrent calls are inserted by one
//! statement and one commit instead of a commit each; on an idle service an event is
//! written at once (see [`crate::batch`]). A caller returns only when its event is
//! durable, as with [`super::enqueue`].

use sqlx::PgPool;

use super::{EventsError, OutboxEvent, RelayHandle, enqueue};
use crate::batch::{Batcher, Limits};
use crate::db::retry_if_lost;

/// Statements in flight at once (each holds a pooled connection while it runs).
pub const IN_FLIGHT: usize = 1;

/// Writes standalone events in batches; cheap to clone.
#[derive(Clone)]
pub struct OutboxWriter {
    batcher: Batcher<OutboxEvent, Result<(), EventsError>>,
}

impl OutboxWriter {
    /// Starts the writer on `pool`; the relay is woken after each batch.
    pub fn spawn(pool: PgPool, relay: RelayHandle) -> Self {
        let batcher = Batcher::spawn(
            Limits::statements("outbox writes", IN_FLIGHT),
            |event: &OutboxEvent| event.payload.len() + event.subject.len() + 120,
            move |events| {
                let (pool, relay) = (pool.clone(), relay.clone());
                async move {
                    let written = write_batch(&pool, events).await;
                    relay.notify();
                    written
                }
            },
        );
        Self { batcher }
    }

    /// Writes `event` with whichever others are waiting; durable when this returns.
    pub async fn write(&self, event: OutboxEvent) -> Result<(), EventsError> {
        self.batcher.call(event).await?
    }
}

/// One answer per event, in order. When the statement of several events fails (nothing
/// of it is written), each is written alone, so a bad event fails only its own call.
async fn write_batch(pool: &PgPool, events: Vec<OutboxEvent>) -> Vec<Result<(), EventsError>> {
    let written = retry_if_lost(|| {
        sqlx::query(
            "INSERT INTO outbox (event_id, subject, payload, traceparent)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bytea[], $4::text[])",
        )
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.subject.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.payload.clone()).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.traceparent.clone())
                .collect::<Vec<_>>(),
        )
        .execute(pool)
    })
    .await;
    match written {
        Ok(_) => events.iter().map(|_| Ok(())).collect(),
        Err(error) if events.len() == 1 => vec![Err(error.into())],
        Err(_) => {
            let mut answers = Vec::with_capacity(events.len());
            for event in &events {
                answers.push(enqueue(pool, event).await);
            }
            answers
        }
    }
}
