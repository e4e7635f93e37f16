//! Batched consumption: up to `max_messages` messages applied in one transaction with
//! their `processed_events` rows written in one statement (none when the handler
//! deduplicates by itself), then acknowledged together.
//!
//! A single transaction per message costs one commit (a WAL flush) per event, which
//! caps a consumer at a few hundred events per second; a batch pays it once. A handler
//! error on the batch must not cost the other messages their delivery, so the batch is
//! rolled back and its messages are applied one at a time, each in its own transaction
//! with the single-message rules (retry, dead-letter) of [`super::processing`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::processing::{self, acknowledge};
use super::{
    Consumer, EventHandler, HandlerError, Outcome, PULL_GRACE, ReceivedEvent, event_id_of,
    release_buffered, traceparent_of,
};
use crate::events::backoff::error_chain;
use crate::events::error::EventsError;

const REASON_MAX_LEN: usize = 500;

/// Applies events a batch at a time; all its database work goes through `tx`, which
/// commits before any message of the batch is acknowledged.
///
/// The events of one call have distinct event ids, none applied before by this
/// consumer. An error rolls the whole batch back; the consumer then calls again with one
/// event at a time, so that a malformed event (a permanent error) is dead-lettered
/// alone and the others are still applied.
#[async_trait::async_trait]
pub trait BatchEventHandler: Send + Sync {
    /// Applies `events` (at least one) inside the consumer's transaction.
    async fn handle_batch(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[ReceivedEvent],
    ) -> Result<(), HandlerError>;

    /// As [`EventHandler::deduplicates_itself`]; copies of one event within a batch are
    /// still applied once.
    fn deduplicates_itself(&self) -> bool {
        false
    }
}

#[async_trait::async_trait]
impl<H: BatchEventHandler + ?Sized> BatchEventHandler for Arc<H> {
    async fn handle_batch(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[ReceivedEvent],
    ) -> Result<(), HandlerError> {
        (**self).handle_batch(tx, events).await
    }

    fn deduplicates_itself(&self) -> bool {
        (**self).deduplicates_itself()
    }
}

/// How a batched consumer groups messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSettings {
    /// Most messages applied in one transaction (also the size of each pull).
    pub max_messages: usize,
    /// How long after the first message of a batch more are awaited before the batch is
    /// applied: the latency a lone event pays for the throughput of full batches.
    pub max_wait_ms: u64,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_messages: 500,
            max_wait_ms: 20,
        }
    }
}

impl BatchSettings {
    /// Checks the values; the error starts with the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.max_messages) {
            return Err("max_messages: must be between 1 and 10000".to_owned());
        }
        if self.max_wait_ms > 10_000 {
            return Err("max_wait_ms: must be at most 10000".to_owned());
        }
        Ok(())
    }

    fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

/// Lets the one-message path apply a single event through a batch handler.
struct One<'a, H: ?Sized>(&'a H);

#[async_trait::async_trait]
impl<H: BatchEventHandler + ?Sized> EventHandler for One<'_, H> {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        self.0.handle_batch(tx, std::slice::from_ref(event)).await
    }

    fn deduplicates_itself(&self) -> bool {
        self.0.deduplicates_itself()
    }
}

/// One pull of up to `max_messages`: messages are gathered into batches (whatever
/// arrives within `max_wait` of a batch's first message) and each batch is applied
/// before the next is gathered. `Ok(false)` when the database was unavailable.
pub(super) async fn pull_once<H: BatchEventHandler>(
    consumer: &Consumer,
    pool: &PgPool,
    handler: &H,
    batch: &BatchSettings,
    shutdown: &CancellationToken,
) -> Result<bool, EventsError> {
    let expires = Duration::from_millis(consumer.settings.fetch_expires_ms);
    let request = consumer
        .inner
        .batch()
        .max_messages(batch.max_messages)
        .expires(expires)
        .messages();
    let mut stream = tokio::select! {
        _ = shutdown.cancelled() => return Ok(true),
        stream = request => stream.map_err(|e| EventsError::nats("pull", e))?,
    };
    let pull_deadline = tokio::time::Instant::now() + expires + PULL_GRACE;
    let mut healthy = true;
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                release_buffered(&mut stream).await;
                return Ok(healthy);
            }
            next = stream.next() => next,
            _ = tokio::time::sleep_until(pull_deadline) => {
                release_buffered(&mut stream).await;
                return Ok(healthy);
            }
        };
        let mut group = match first {
            None => return Ok(healthy),
            Some(Err(error)) => return Err(EventsError::nats("pull", error)),
            Some(Ok(message)) => vec![message],
        };
        let gather_until = (tokio::time::Instant::now() + batch.max_wait()).min(pull_deadline);
        // What ended the gathering besides a full batch or the wait: the pull's end or
        // its failure, both acted on once the gathered messages are applied.
        let mut ended: Option<Result<(), EventsError>> = None;
        while group.len() < batch.max_messages {
            let next = tokio::select! {
                biased;
                next = stream.next() => next,
                _ = tokio::time::sleep_until(gather_until) => break,
            };
            match next {
                Some(Ok(message)) => group.push(message),
                Some(Err(error)) => {
                    ended = Some(Err(EventsError::nats("pull", error)));
                    break;
                }
                None => {
                    ended = Some(Ok(()));
                    break;
                }
            }
        }
        if process_batch(consumer, pool, handler, group).await == Outcome::Unavailable {
            healthy = false;
        }
        match ended {
            Some(Ok(())) => return Ok(healthy),
            Some(Err(error)) => return Err(error),
            None => {}
        }
    }
}

/// A message of the batch with the event it carries.
struct Delivery {
    message: jetstream::Message,
    event: ReceivedEvent,
}

/// Applies `messages` in one transaction (see the module docs); falls back to one
/// message at a time when the handler fails.
pub(super) async fn process_batch<H: BatchEventHandler>(
    consumer: &Consumer,
    pool: &PgPool,
    handler: &H,
    messages: Vec<jetstream::Message>,
) -> Outcome {
    let mut deliveries = Vec::with_capacity(messages.len());
    let mut outcome = Outcome::Applied;
    for message in messages {
        match received(&message) {
            Some(event) => deliveries.push(Delivery { message, event }),
            // No usable event id: the one-message path records and terminates it.
            None => {
                outcome = worst(
                    outcome,
                    processing::process(consumer, pool, &One(handler), message).await,
                );
            }
        }
    }
    if deliveries.is_empty() {
        return outcome;
    }
    let retry_delay = consumer.settings.retry_delay(1);
    let mut tx = match crate::db::begin(pool).await {
        Ok(tx) => tx,
        Err(error) => return unavailable(consumer, &deliveries, &error, retry_delay).await,
    };
    let ids: Vec<Uuid> = deliveries.iter().map(|d| d.event.event_id).collect();
    let claimed: Result<Vec<Uuid>, sqlx::Error> = if handler.deduplicates_itself() {
        Ok(ids)
    } else {
        sqlx::query_scalar(
            "INSERT INTO processed_events (consumer, event_id) \
             SELECT $1, id FROM UNNEST($2::uuid[]) AS t(id) \
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(&consumer.durable)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
    };
    let mut fresh: HashSet<Uuid> = match claimed {
        Ok(ids) => ids.into_iter().collect(),
        Err(error) => return unavailable(consumer, &deliveries, &error, retry_delay).await,
    };
    // The first delivery of a claimed id is applied; the rest (applied before, or a
    // second copy in this batch) are only acknowledged after the commit.
    let (apply, duplicates): (Vec<Delivery>, Vec<Delivery>) = deliveries
        .into_iter()
        .partition(|d| fresh.remove(&d.event.event_id));
    if apply.is_empty() {
        let _ = tx.rollback().await;
        tracing::debug!(consumer = %consumer.durable, skipped = duplicates.len(), "duplicate events skipped");
        ack_all(&duplicates).await;
        return worst(outcome, Outcome::Duplicate);
    }
    let events: Vec<ReceivedEvent> = apply.iter().map(|d| d.event.clone()).collect();
    let span =
        tracing::info_span!("event_batch", consumer = %consumer.durable, events = events.len());
    crate::telemetry::link_remote(
        &span,
        events
            .iter()
            .filter_map(|event| event.traceparent.as_deref()),
    );
    let handled = handler
        .handle_batch(&mut tx, &events)
        .instrument(span)
        .await;
    match handled {
        Ok(()) => match tx.commit().await {
            Ok(()) => {
                ack_all(&apply).await;
                ack_all(&duplicates).await;
                worst(outcome, Outcome::Applied)
            }
            Err(error) => {
                let all: Vec<Delivery> = apply.into_iter().chain(duplicates).collect();
                unavailable(consumer, &all, &error, retry_delay).await
            }
        },
        Err(error) => {
            let _ = tx.rollback().await;
            let (kind, error) = match error {
                HandlerError::Retryable(e) => ("retryable", e),
                HandlerError::Permanent(e) => ("permanent", e),
            };
            tracing::warn!(
                consumer = %consumer.durable,
                events = events.len(),
                kind,
                error = %error_chain(&*error, REASON_MAX_LEN),
                "batch handler failed, applying its events one at a time"
            );
            let mut all: Vec<Delivery> = apply.into_iter().chain(duplicates).collect();
            // Stream order, so one-at-a-time applies them in the order they arrived.
            all.sort_by_key(|d| d.event.stream_sequence);
            for delivery in all {
                let single =
                    processing::process(consumer, pool, &One(handler), delivery.message).await;
                outcome = worst(outcome, single);
            }
            outcome
        }
    }
}

/// The event `message` carries, if it has a usable event id.
fn received(message: &jetstream::Message) -> Option<ReceivedEvent> {
    let event_id = event_id_of(message)?;
    let (delivered, stream_sequence) = match message.info() {
        Ok(info) => (
            u64::try_from(info.delivered).unwrap_or(1),
            info.stream_sequence,
        ),
        Err(_) => (1, 0),
    };
    Some(ReceivedEvent {
        event_id,
        subject: message.subject.to_string(),
        payload: message.payload.to_vec(),
        traceparent: traceparent_of(message),
        delivered,
        stream_sequence,
    })
}

/// An unavailable database outranks everything: the loop must back off.
fn worst(a: Outcome, b: Outcome) -> Outcome {
    if a == Outcome::Unavailable || b == Outcome::Unavailable {
        Outcome::Unavailable
    } else if b == Outcome::Applied {
        a
    } else {
        b
    }
}

async fn ack_all(deliveries: &[Delivery]) {
    for delivery in deliveries {
        acknowledge(&delivery.message, AckKind::Ack).await;
    }
}

async fn unavailable(
    consumer: &Consumer,
    deliveries: &[Delivery],
    error: &sqlx::Error,
    delay: Duration,
) -> Outcome {
    tracing::warn!(
        consumer = %consumer.durable,
        events = deliveries.len(),
        error = %error_chain(error, REASON_MAX_LEN),
        "database unavailable for an event batch, will retry"
    );
    for delivery in deliveries {
        acknowledge(&delivery.message, AckKind::Nak(Some(delay))).await;
    }
    Outcome::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_by_key() {
        assert_eq!(BatchSettings::default().validate(), Ok(()));
        let empty = BatchSettings {
            max_messages: 0,
            ..BatchSettings::default()
        };
        assert!(
            empty
                .validate()
                .is_err_and(|e| e.starts_with("max_messages"))
        );
        let slow = BatchSettings {
            max_wait_ms: 60_000,
            ..BatchSettings::default()
        };
        assert!(slow.validate().is_err_and(|e| e.starts_with("max_wait_ms")));
    }

    #[test]
    fn an_unavailable_database_outranks_every_other_outcome() {
        assert_eq!(
            worst(Outcome::Unavailable, Outcome::Applied),
            Outcome::Unavailable
        );
        assert_eq!(
            worst(Outcome::Failed, Outcome::Unavailable),
            Outcome::Unavailable
        );
        assert_eq!(worst(Outcome::Failed, Outcome::Applied), Outcome::Failed);
        assert_eq!(worst(Outcome::Applied, Outcome::Retry), Outcome::Retry);
    }
}
