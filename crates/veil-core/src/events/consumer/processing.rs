//! Handling one message (dedupe, handler, commit, then ack) and the consumer's
//! background upkeep (lag gauge, old `processed_events` rows).

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::{
    Consumer, ConsumerLag, ConsumerSettings, EventHandler, HandlerError, Outcome, ReceivedEvent,
    event_id_of, traceparent_of,
};
use crate::events::backoff::error_chain;

const REASON_MAX_LEN: usize = 500;
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Where a message sits in the stream, for failure records and logs.
struct Position {
    subject: String,
    stream_sequence: u64,
    delivered: u64,
}

/// Applies one message at most once per consumer: the `processed_events` insert (unless
/// the handler deduplicates by itself), the handler and the commit share one
/// transaction, and the ack only follows the commit.
pub(super) async fn process<H: EventHandler>(
    consumer: &Consumer,
    pool: &PgPool,
    handler: &H,
    message: jetstream::Message,
) -> Outcome {
    let (delivered, stream_sequence) = match message.info() {
        Ok(info) => (
            u64::try_from(info.delivered).unwrap_or(1),
            info.stream_sequence,
        ),
        Err(_) => (1, 0),
    };
    let position = Position {
        subject: message.subject.to_string(),
        stream_sequence,
        delivered,
    };
    let Some(event_id) = event_id_of(&message) else {
        let reason = "missing or invalid Nats-Msg-Id header";
        return give_up(consumer, pool, &message, None, &position, reason).await;
    };
    let event = ReceivedEvent {
        event_id,
        subject: position.subject.clone(),
        payload: message.payload.to_vec(),
        traceparent: traceparent_of(&message),
        delivered,
        stream_sequence,
    };
    let retry_delay = consumer.settings.retry_delay(delivered);
    let mut tx = match crate::db::begin(pool).await {
        Ok(tx) => tx,
        Err(error) => return unavailable(consumer, &message, &error, retry_delay).await,
    };
    let claimed = if handler.deduplicates_itself() {
        Ok(true)
    } else {
        sqlx::query(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&consumer.durable)
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .map(|done| done.rows_affected() > 0)
    };
    match claimed {
        Err(error) => return unavailable(consumer, &message, &error, retry_delay).await,
        Ok(false) => {
            let _ = tx.rollback().await;
            tracing::debug!(consumer = %consumer.durable, %event_id, "duplicate event skipped");
            acknowledge(&message, AckKind::Ack).await;
            return Outcome::Duplicate;
        }
        Ok(_) => {}
    }
    // The handler's work continues the publisher's trace.
    let span = tracing::info_span!(
        "event",
        consumer = %consumer.durable,
        %event_id,
        subject = %event.subject
    );
    crate::telemetry::set_remote_parent(&span, event.traceparent.as_deref());
    let handled = handler.handle(&mut tx, &event).instrument(span).await;
    match handled {
        Ok(()) => match tx.commit().await {
            Ok(()) => {
                acknowledge(&message, AckKind::Ack).await;
                Outcome::Applied
            }
            Err(error) => unavailable(consumer, &message, &error, retry_delay).await,
        },
        Err(HandlerError::Retryable(error)) => {
            let _ = tx.rollback().await;
            tracing::warn!(
                consumer = %consumer.durable,
                %event_id,
                delivered,
                retry_in_ms = retry_delay.as_millis() as u64,
                error = %error_chain(&*error, REASON_MAX_LEN),
                "event handler failed, will retry"
            );
            acknowledge(&message, AckKind::Nak(Some(retry_delay))).await;
            Outcome::Retry
        }
        Err(HandlerError::Permanent(error)) => {
            let _ = tx.rollback().await;
            let reason = error_chain(&*error, REASON_MAX_LEN);
            give_up(consumer, pool, &message, Some(event_id), &position, &reason).await
        }
    }
}

/// Records a message that can never be applied and terminates its delivery, so it does
/// not block the consumer. If even the record fails, the message is retried later.
async fn give_up(
    consumer: &Consumer,
    pool: &PgPool,
    message: &jetstream::Message,
    event_id: Option<Uuid>,
    position: &Position,
    reason: &str,
) -> Outcome {
    tracing::error!(
        consumer = %consumer.durable,
        event_id = ?event_id,
        subject = %position.subject,
        stream_sequence = position.stream_sequence,
        delivered = position.delivered,
        reason,
        "event cannot be applied, recorded in event_failures"
    );
    let recorded = sqlx::query(
        "INSERT INTO event_failures \
         (consumer, event_id, subject, stream_sequence, delivered, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&consumer.durable)
    .bind(event_id)
    .bind(&position.subject)
    .bind(i64::try_from(position.stream_sequence).unwrap_or(i64::MAX))
    .bind(i64::try_from(position.delivered).unwrap_or(i64::MAX))
    .bind(reason)
    .execute(pool)
    .await;
    match recorded {
        Ok(_) => {
            acknowledge(message, AckKind::Term).await;
            Outcome::Failed
        }
        Err(error) => {
            let delay = consumer.settings.retry_delay(position.delivered);
            unavailable(consumer, message, &error, delay).await
        }
    }
}

async fn unavailable(
    consumer: &Consumer,
    message: &jetstream::Message,
    error: &sqlx::Error,
    delay: Duration,
) -> Outcome {
    tracing::warn!(
        consumer = %consumer.durable,
        error = %error_chain(error, REASON_MAX_LEN),
        "database unavailable for event, will retry"
    );
    acknowledge(message, AckKind::Nak(Some(delay))).await;
    Outcome::Unavailable
}

/// A lost ack only means a redelivery, which `processed_events` absorbs.
pub(super) async fn acknowledge(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        tracing::debug!(error = %error, "ack not sent");
    }
}

/// Refreshes the lag gauges and prunes old `processed_events` rows until `stop`.
pub(super) async fn maintain(
    mut consumer: PullConsumer,
    pool: PgPool,
    durable: String,
    settings: ConsumerSettings,
    lag: ConsumerLag,
    stop: CancellationToken,
) {
    let refresh = Duration::from_millis(settings.lag_refresh_ms);
    let mut next_cleanup = Instant::now();
    loop {
        if let Ok(Ok(info)) = tokio::time::timeout(Duration::from_secs(5), consumer.info()).await {
            lag.pending.store(info.num_pending, Ordering::Relaxed);
            lag.ack_pending
                .store(info.num_ack_pending as u64, Ordering::Relaxed);
        }
        if settings.processed_retention_days > 0 && Instant::now() >= next_cleanup {
            prune_processed(&pool, &durable, settings.processed_retention_days).await;
            next_cleanup = Instant::now() + CLEANUP_EVERY;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(refresh) => {}
        }
    }
}

async fn prune_processed(pool: &PgPool, durable: &str, retention_days: u64) {
    let days = i32::try_from(retention_days).unwrap_or(i32::MAX);
    let pruned = sqlx::query(
        "DELETE FROM processed_events \
         WHERE consumer = $1 AND processed_at < now() - make_interval(days => $2)",
    )
    .bind(durable)
    .bind(days)
    .execute(pool)
    .await;
    if let Err(error) = pruned {
        tracing::warn!(consumer = %durable, error = %error_chain(&error, REASON_MAX_LEN), "processed_events cleanup failed");
    }
}
