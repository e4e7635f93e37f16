//! Helpers shared by the events tests: polling with a deadline, stream inspection,
//! a recording handler.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::time::Instant;
use uuid::Uuid;
use veil_core::events::{EventHandler, HandlerError, MSG_ID_HEADER, ReceivedEvent};

/// Default deadline for asynchronous effects.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Polls `check` every few milliseconds until it yields `Some`, or panics at the deadline.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Number of messages in the stream.
pub async fn stream_messages(js: &jetstream::Context, stream: &str) -> u64 {
    let mut stream = js.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// The `Nats-Msg-Id` of the message at `sequence`.
pub async fn msg_id_at(js: &jetstream::Context, stream: &str, sequence: u64) -> String {
    let stream = js.get_stream(stream).await.unwrap();
    let message = stream.get_raw_message(sequence).await.unwrap();
    message
        .headers
        .get(MSG_ID_HEADER)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// Publishes directly (bypassing the outbox), optionally with a `Nats-Msg-Id`.
pub async fn publish(
    js: &jetstream::Context,
    subject: &str,
    msg_id: Option<Uuid>,
    payload: &[u8],
) -> jetstream::publish::PublishAck {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(id) = msg_id {
        headers.insert(MSG_ID_HEADER, id.to_string().as_str());
    }
    js.publish_with_headers(subject.to_owned(), headers, payload.to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap()
}

/// Waits until the consumer has acknowledged (or terminated) everything up to the
/// stream's last message.
pub async fn wait_all_acked(js: &jetstream::Context, stream: &str, durable: &str) {
    let stream_handle = js.get_stream(stream).await.unwrap();
    eventually("consumer to ack everything", DEADLINE, || async {
        let last = js
            .get_stream(stream)
            .await
            .ok()?
            .info()
            .await
            .ok()?
            .state
            .last_sequence;
        let info = stream_handle.consumer_info(durable).await.ok()?;
        (info.ack_floor.stream_sequence >= last
            && info.num_ack_pending == 0
            && info.num_pending == 0)
            .then_some(())
    })
    .await;
}

/// Creates the `effects` table the recording handler writes to (no unique key, so a
/// second application would show up as a second row).
pub async fn create_effects_table(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS effects (event_id uuid NOT NULL, subject text NOT NULL, \
         delivered bigint NOT NULL, traceparent text)",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Rows in `effects` for `event_id`.
pub async fn effects_for(pool: &PgPool, event_id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM effects WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What the recording handler does on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Succeed,
    /// Fails with a retryable error on the first `n` calls for an event.
    FailRetryable(u32),
    Permanent,
}

/// Writes one `effects` row per call inside the consumer transaction, then succeeds or
/// fails as told; a failure's row must therefore be rolled back.
#[derive(Debug)]
pub struct RecordingHandler {
    pub calls: AtomicU32,
    behaviour: Mutex<Vec<(Uuid, Behaviour)>>,
}

impl RecordingHandler {
    pub fn new() -> Self {
        Self {
            calls: AtomicU32::new(0),
            behaviour: Mutex::new(Vec::new()),
        }
    }

    /// Sets how calls for `event_id` behave (default: succeed).
    pub fn behave(&self, event_id: Uuid, behaviour: Behaviour) {
        self.behaviour.lock().unwrap().push((event_id, behaviour));
    }

    fn behaviour_for(&self, event_id: Uuid) -> Behaviour {
        self.behaviour
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| *id == event_id)
            .map_or(Behaviour::Succeed, |(_, b)| *b)
    }
}

#[async_trait::async_trait]
impl EventHandler for RecordingHandler {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        sqlx::query(
            "INSERT INTO effects (event_id, subject, delivered, traceparent) VALUES ($1, $2, $3, $4)",
        )
        .bind(event.event_id)
        .bind(&event.subject)
        .bind(event.delivered as i64)
        .bind(&event.traceparent)
        .execute(&mut **tx)
        .await?;
        match self.behaviour_for(event.event_id) {
            Behaviour::Succeed => Ok(()),
            Behaviour::FailRetryable(n) if event.delivered <= u64::from(n) => {
                Err(HandlerError::retryable("dependency not ready"))
            }
            Behaviour::FailRetryable(_) => Ok(()),
            Behaviour::Permanent => Err(HandlerError::permanent("unknown event version")),
        }
    }
}
