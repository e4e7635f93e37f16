//! Durable pull consumers that ack only after the handler's transaction committed and
//! apply each event id once per consumer.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, consumer::pull};
use futures::{FutureExt, StreamExt};
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::backoff::{Backoff, error_chain};
use super::error::EventsError;
use super::subjects::validate_token;
use super::{MSG_ID_HEADER, TRACEPARENT_HEADER};

mod batch;
mod processing;
mod settings;

pub use batch::{BatchEventHandler, BatchSettings};
pub use settings::ConsumerSettings;

/// How long after its `expires` a pull may still deliver before it is abandoned.
const PULL_GRACE: Duration = Duration::from_millis(500);

/// How long a consumer that cannot bind yet retries quietly (debug logs) before each
/// miss is a warning: long enough for a deployment's services to create the stream.
const QUIET_START: Duration = Duration::from_secs(5);

/// One delivered event, as a handler sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// From the `Nats-Msg-Id` header.
    pub event_id: Uuid,
    /// Full subject.
    pub subject: String,
    /// Encoded event.
    pub payload: Vec<u8>,
    /// W3C trace context from the publisher, if any.
    pub traceparent: Option<String>,
    /// Delivery attempt, 1 for the first.
    pub delivered: u64,
    /// Position in the stream.
    pub stream_sequence: u64,
}

// The payload stays out of logs: only its size is shown.
impl fmt::Debug for ReceivedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedEvent")
            .field("event_id", &self.event_id)
            .field("subject", &self.subject)
            .field("payload_len", &self.payload.len())
            .field("delivered", &self.delivered)
            .field("stream_sequence", &self.stream_sequence)
            .finish()
    }
}

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth another try later (database or dependency trouble): the message is
    /// redelivered after a growing delay.
    #[error("retryable handler failure")]
    Retryable(#[source] Box<dyn Error + Send + Sync>),
    /// Will never succeed (malformed event): recorded in `event_failures` and dropped.
    /// The message must not contain personal data.
    #[error("permanent handler failure")]
    Permanent(#[source] Box<dyn Error + Send + Sync>),
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn retryable(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        HandlerError::Retryable(error.into())
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        HandlerError::Permanent(error.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        HandlerError::Retryable(Box::new(error))
    }
}

/// Applies events; all its database work goes through `tx`, which commits before the
/// message is acknowledged.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    /// Applies one event inside the consumer's transaction.
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError>;

    /// True when the handler's own writes already make a second delivery of an event
    /// change nothing (a unique event id in its tables): the consumer then skips its
    /// `processed_events` claim, one row written and later pruned per event.
    fn deduplicates_itself(&self) -> bool {
        false
    }
}

#[async_trait::async_trait]
impl<H: EventHandler + ?Sized> EventHandler for Arc<H> {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        (**self).handle(tx, event).await
    }

    fn deduplicates_itself(&self) -> bool {
        (**self).deduplicates_itself()
    }
}

/// Consumer lag for metrics: messages in the stream not yet delivered, and delivered
/// but not yet acknowledged, at the last refresh.
#[derive(Debug, Clone, Default)]
pub struct ConsumerLag {
    pending: Arc<AtomicU64>,
    ack_pending: Arc<AtomicU64>,
}

impl ConsumerLag {
    /// Messages not yet delivered to this consumer (`num_pending`).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Messages delivered and awaiting an ack (`num_ack_pending`).
    pub fn ack_pending(&self) -> u64 {
        self.ack_pending.load(Ordering::Relaxed)
    }
}

/// A durable pull consumer on one filter subject (NATS 2.9 allows only one).
#[derive(Debug)]
pub struct Consumer {
    js: jetstream::Context,
    stream: String,
    durable: String,
    filter: String,
    settings: ConsumerSettings,
    inner: PullConsumer,
    lag: ConsumerLag,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    Duplicate,
    Retry,
    Failed,
    /// The database is unreachable: the loop should back off.
    Unavailable,
}

impl Consumer {
    /// Creates (or updates) and binds the durable consumer with default settings.
    pub async fn new(
        js: jetstream::Context,
        stream_name: &str,
        durable_name: &str,
        filter_subject: &str,
    ) -> Result<Self, EventsError> {
        Self::with_settings(
            js,
            stream_name,
            durable_name,
            filter_subject,
            ConsumerSettings::default(),
        )
        .await
    }

    /// Creates (or updates) and binds the durable consumer.
    pub async fn with_settings(
        js: jetstream::Context,
        stream_name: &str,
        durable_name: &str,
        filter_subject: &str,
        settings: ConsumerSettings,
    ) -> Result<Self, EventsError> {
        validate_token("stream", stream_name)?;
        validate_token("durable consumer", durable_name)?;
        settings.validate().map_err(EventsError::InvalidConfig)?;
        let inner = bind(&js, stream_name, durable_name, filter_subject, &settings).await?;
        Ok(Self {
            js,
            stream: stream_name.to_owned(),
            durable: durable_name.to_owned(),
            filter: filter_subject.to_owned(),
            settings,
            inner,
            lag: ConsumerLag::default(),
        })
    }

    /// Creates and binds the durable consumer, retrying with a growing delay while NATS
    /// or the stream is not there yet; `None` when `shutdown` came first.
    pub async fn bind_retrying(
        js: jetstream::Context,
        stream_name: &str,
        durable_name: &str,
        filter_subject: &str,
        settings: ConsumerSettings,
        shutdown: &CancellationToken,
    ) -> Option<Self> {
        let mut delay = Duration::from_millis(100);
        let started = tokio::time::Instant::now();
        loop {
            match Self::with_settings(
                js.clone(),
                stream_name,
                durable_name,
                filter_subject,
                settings.clone(),
            )
            .await
            {
                Ok(consumer) => return Some(consumer),
                // At start-up the stream is created concurrently (the service's own
                // start, or another service's): a miss then is expected, not a warning.
                Err(error) if started.elapsed() < QUIET_START => tracing::debug!(
                    consumer = %durable_name,
                    error = %error_chain(&error, 500),
                    "consumer not ready yet; retrying"
                ),
                Err(error) => tracing::warn!(
                    consumer = %durable_name,
                    error = %error_chain(&error, 500),
                    "consumer not ready; retrying"
                ),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// The lag gauges, refreshed while [`Consumer::run`] runs.
    pub fn lag(&self) -> ConsumerLag {
        self.lag.clone()
    }

    /// The durable name, which is also the `consumer` key in `processed_events`.
    pub fn durable_name(&self) -> &str {
        &self.durable
    }

    /// Pulls and handles messages until `shutdown`, surviving NATS and database outages.
    pub async fn run<H: EventHandler>(self, pool: PgPool, handler: H, shutdown: CancellationToken) {
        self.drive(pool, Single(handler), shutdown).await;
    }

    /// Like [`Consumer::run`], but applies up to `batch.max_messages` messages per
    /// transaction through a [`BatchEventHandler`] (see [`BatchSettings`]).
    pub async fn run_batch<H: BatchEventHandler>(
        self,
        pool: PgPool,
        handler: H,
        batch: BatchSettings,
        shutdown: CancellationToken,
    ) {
        self.drive(pool, Batched { handler, batch }, shutdown).await;
    }

    async fn drive<P: Pull>(mut self, pool: PgPool, pull: P, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(
            Duration::from_millis(self.settings.backoff_min_ms),
            Duration::from_millis(self.settings.backoff_max_ms),
        );
        let maintenance = shutdown.child_token();
        tokio::spawn(processing::maintain(
            self.inner.clone(),
            pool.clone(),
            self.durable.clone(),
            self.settings.clone(),
            self.lag.clone(),
            maintenance.clone(),
        ));
        let _stop_maintenance = maintenance.drop_guard();
        let mut needs_bind = false;
        while !shutdown.is_cancelled() {
            if needs_bind {
                match self.rebind().await {
                    Ok(()) => needs_bind = false,
                    Err(error) => {
                        tracing::warn!(consumer = %self.durable, error = %error_chain(&error, 500), "consumer bind failed, will retry");
                        backoff.wait(&shutdown).await;
                        continue;
                    }
                }
            }
            // Not raced against shutdown: a pull stops between messages (or batches), so
            // a handler's transaction is never abandoned half-way.
            match pull.pull_once(&self, &pool, &shutdown).await {
                Ok(true) => backoff.reset(),
                Ok(false) => {
                    backoff.wait(&shutdown).await;
                }
                Err(error) => {
                    tracing::warn!(consumer = %self.durable, error = %error_chain(&error, 500), "consumer pull failed, will retry");
                    needs_bind = true;
                    backoff.wait(&shutdown).await;
                }
            }
        }
    }

    async fn rebind(&mut self) -> Result<(), EventsError> {
        self.inner = bind(
            &self.js,
            &self.stream,
            &self.durable,
            &self.filter,
            &self.settings,
        )
        .await?;
        Ok(())
    }

    /// One pull: handles what arrives until the batch ends. `Ok(false)` when the
    /// database was unavailable, so the caller backs off.
    async fn pull_once<H: EventHandler>(
        &self,
        pool: &PgPool,
        handler: &H,
        shutdown: &CancellationToken,
    ) -> Result<bool, EventsError> {
        let request = self
            .inner
            .batch()
            .max_messages(self.settings.batch_size)
            .expires(Duration::from_millis(self.settings.fetch_expires_ms))
            .messages();
        // Sending the pull can wait on a full client buffer while NATS is down.
        let mut batch = tokio::select! {
            _ = shutdown.cancelled() => return Ok(true),
            batch = request => batch.map_err(|e| EventsError::nats("pull", e))?,
        };
        // The server forgets a pull when it restarts, and the client only gives up on it
        // 5 s after `expires`; ending it ourselves soon after `expires` re-pulls sooner.
        let pull_deadline = tokio::time::Instant::now()
            + Duration::from_millis(self.settings.fetch_expires_ms)
            + PULL_GRACE;
        let mut healthy = true;
        loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    release_buffered(&mut batch).await;
                    return Ok(healthy);
                }
                next = batch.next() => next,
                _ = tokio::time::sleep_until(pull_deadline) => {
                    release_buffered(&mut batch).await;
                    return Ok(healthy);
                }
            };
            let message = match next {
                None => return Ok(healthy),
                Some(Err(error)) => return Err(EventsError::nats("pull", error)),
                Some(Ok(message)) => message,
            };
            let outcome = processing::process(self, pool, handler, message).await;
            if outcome == Outcome::Unavailable {
                healthy = false;
            }
        }
    }
}

/// One pull and the handling of what it delivers: per message or per batch.
#[async_trait::async_trait]
trait Pull: Send + Sync {
    /// `Ok(false)` when the database was unavailable, so the caller backs off.
    async fn pull_once(
        &self,
        consumer: &Consumer,
        pool: &PgPool,
        shutdown: &CancellationToken,
    ) -> Result<bool, EventsError>;
}

/// One transaction per message.
struct Single<H>(H);

#[async_trait::async_trait]
impl<H: EventHandler> Pull for Single<H> {
    async fn pull_once(
        &self,
        consumer: &Consumer,
        pool: &PgPool,
        shutdown: &CancellationToken,
    ) -> Result<bool, EventsError> {
        consumer.pull_once(pool, &self.0, shutdown).await
    }
}

/// One transaction per batch of messages.
struct Batched<H> {
    handler: H,
    batch: BatchSettings,
}

#[async_trait::async_trait]
impl<H: BatchEventHandler> Pull for Batched<H> {
    async fn pull_once(
        &self,
        consumer: &Consumer,
        pool: &PgPool,
        shutdown: &CancellationToken,
    ) -> Result<bool, EventsError> {
        batch::pull_once(consumer, pool, &self.handler, &self.batch, shutdown).await
    }
}

/// Creates or updates the durable consumer and binds to it.
async fn bind(
    js: &jetstream::Context,
    stream: &str,
    durable: &str,
    filter: &str,
    settings: &ConsumerSettings,
) -> Result<PullConsumer, EventsError> {
    let config = pull::Config {
        durable_name: Some(durable.to_owned()),
        description: Some("veil event consumer".to_owned()),
        deliver_policy: jetstream::consumer::DeliverPolicy::All,
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(settings.ack_wait_secs),
        max_deliver: settings.max_deliver,
        max_ack_pending: settings.max_ack_pending,
        filter_subject: filter.to_owned(),
        ..pull::Config::default()
    };
    js.create_consumer_on_stream(config, stream)
        .await
        .map_err(|e| EventsError::nats("create consumer", e))
}

/// On shutdown, hands messages already delivered to this process back at once instead
/// of letting them wait out the ack timeout.
async fn release_buffered(batch: &mut pull::Batch) {
    while let Some(Some(Ok(message))) = batch.next().now_or_never() {
        if let Err(error) = message.ack_with(AckKind::Nak(None)).await {
            tracing::debug!(error = %error, "nak at shutdown failed");
        }
    }
}

fn header(message: &jetstream::Message, name: &str) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(name))
        .map(|value| value.as_str().to_owned())
}

fn event_id_of(message: &jetstream::Message) -> Option<Uuid> {
    header(message, MSG_ID_HEADER).and_then(|id| Uuid::parse_str(&id).ok())
}

fn traceparent_of(message: &jetstream::Message) -> Option<String> {
    header(message, TRACEPARENT_HEADER)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn debug_hides_the_payload() {
        let event = ReceivedEvent {
            event_id: Uuid::nil(),
            subject: "veil.events.a.b".into(),
            payload: b"jane@example.com".to_vec(),
            traceparent: None,
            delivered: 1,
            stream_sequence: 3,
        };
        let shown = format!("{event:?}");
        assert!(!shown.contains("jane"), "{shown}");
    }
}
