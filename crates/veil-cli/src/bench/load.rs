//! The two load shapes: a closed loop of `concurrency` clients sending as fast as the
//! gateway answers (throughput), and an open loop that starts messages on a fixed
//! schedule whatever the answers do (latency at a rate, free of coordinated omission:
//! latency counts from when a message was due, not from when it was sent).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;
use tonic::Request;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Status};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    MessageContext, MessageRole, ProcessMessageRequest, RedactStreamRequest, RedactStreamStart,
    RestoreTextRequest, StreamFinish, redact_stream_request, redact_stream_response,
};

use super::messages::chat_message;
use super::stats::Outcome;

/// What every load shape sends and over which connections.
#[derive(Clone)]
pub struct Load {
    /// Several HTTP/2 connections to the gateway; clients are spread over them.
    pub channels: Vec<Channel>,
    /// `Bearer <bot key>`.
    pub authorization: AsciiMetadataValue,
    /// Purposes asked for on every message (each one is a consent check).
    pub purposes: Vec<String>,
    /// Distinguishes the conversations of one phase from those of another.
    pub phase: &'static str,
    /// Messages answered so far, for progress display.
    pub done: Arc<AtomicU64>,
    /// 0: each message is one ProcessMessage call. Otherwise each message is one
    /// RedactStream of chunks of this many bytes, all sent at once (an LLM faster than
    /// the gateway), and its latency runs from the stream's start to its completion.
    pub stream_chunk: usize,
    /// After each message, restore a bot reply that names its placeholders (RestoreText);
    /// the latency covers both calls.
    pub restore: bool,
    /// Give every message (or stream) its own idempotency key (one more statement per
    /// message); counts the keys handed out.
    pub idempotency_keys: Option<Arc<AtomicU64>>,
}

impl Load {
    /// A load on `channels` with the bot key `key`.
    pub fn new(channels: Vec<Channel>, key: &str, purposes: Vec<String>) -> anyhow::Result<Self> {
        let authorization = MetadataValue::try_from(format!("Bearer {key}"))?;
        Ok(Self {
            channels,
            authorization,
            purposes,
            phase: "warmup",
            done: Arc::new(AtomicU64::new(0)),
            stream_chunk: 0,
            restore: false,
            idempotency_keys: None,
        })
    }

    fn client(&self, n: usize) -> PrivacyGatewayServiceClient<Channel> {
        let channel = self.channels[n % self.channels.len()].clone();
        PrivacyGatewayServiceClient::new(channel)
    }

    /// Each conversation has its own subject.
    fn subject_of(conversation: &str) -> String {
        format!("subject-{conversation}")
    }

    fn context(&self, conversation: String) -> MessageContext {
        MessageContext {
            subject_id: Self::subject_of(&conversation),
            conversation_id: conversation,
            role: MessageRole::User as i32,
            purposes: self.purposes.clone(),
            channel: "bench".into(),
            idempotency_key: self
                .idempotency_keys
                .as_ref()
                .map_or_else(String::new, |keys| {
                    format!("m-{}", keys.fetch_add(1, Ordering::Relaxed))
                }),
            ..Default::default()
        }
    }

    fn authorized<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request
    }

    /// Sends one message of `conversation` the way this load sends them, and with
    /// `restore` the bot's reply naming the message's placeholders for restoring.
    async fn send(
        &self,
        client: &mut PrivacyGatewayServiceClient<Channel>,
        conversation: String,
        text: String,
    ) -> Result<(), Status> {
        let redacted = self.redact(client, conversation.clone(), text).await?;
        if !self.restore {
            return Ok(());
        }
        let request = self.authorized(RestoreTextRequest {
            subject_id: Self::subject_of(&conversation),
            conversation_id: conversation,
            text: format!("Thanks, I have noted this: {redacted}"),
        });
        client.restore_text(request).await.map(drop)
    }

    /// The redacted text of one message, by ProcessMessage or a RedactStream.
    async fn redact(
        &self,
        client: &mut PrivacyGatewayServiceClient<Channel>,
        conversation: String,
        text: String,
    ) -> Result<String, Status> {
        let context = Some(self.context(conversation));
        if self.stream_chunk == 0 {
            let request = self.authorized(ProcessMessageRequest { context, text });
            let response = client.process_message(request).await?;
            return Ok(response.into_inner().redacted_text);
        }
        let kind = |kind| RedactStreamRequest { kind: Some(kind) };
        let mut requests = vec![kind(redact_stream_request::Kind::Start(
            RedactStreamStart { context },
        ))];
        requests.extend(
            text.as_bytes()
                .chunks(self.stream_chunk)
                .map(|piece| kind(redact_stream_request::Kind::Chunk(piece.to_vec()))),
        );
        requests.push(kind(redact_stream_request::Kind::Finish(StreamFinish {})));
        let request = self.authorized(tokio_stream::iter(requests));
        let mut responses = client.redact_stream(request).await?.into_inner();
        let mut redacted = String::new();
        while let Some(response) = responses.message().await? {
            match response.kind {
                Some(redact_stream_response::Kind::Chunk(chunk)) => redacted.push_str(&chunk.text),
                Some(redact_stream_response::Kind::Completed(_)) => return Ok(redacted),
                None => {}
            }
        }
        Err(Status::new(
            Code::Unknown,
            "stream ended without completion",
        ))
    }
}

/// Sends `messages` with `concurrency` clients in a closed loop.
pub async fn closed_loop(load: &Load, messages: u64, concurrency: usize) -> Outcome {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let load = load.clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut client = load.client(worker);
            let mut rng = StdRng::from_entropy();
            let mut outcome = Outcome::default();
            // Turns this client has sent: `next` counts every client's messages, so
            // dividing it by 25 would start a new conversation (and a new subject)
            // with almost every message.
            let mut turns = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= messages {
                    return outcome;
                }
                // Each client works through conversations of 25 turns, one turn at a
                // time, as a chat user would.
                let conversation = format!("{}-{worker}-{}", load.phase, turns / 25);
                turns += 1;
                let text = chat_message(&mut rng);
                let sent = Instant::now();
                let result = load.send(&mut client, conversation, text).await;
                outcome.record(sent.elapsed(), result.err());
                load.done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut total = Outcome::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(outcome) => total.merge(outcome),
            Err(error) => total.fail(format!("client task failed: {error}")),
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Starts `rate` messages per second for `duration`, each on its own task.
pub async fn open_loop(load: &Load, rate: u32, duration: Duration) -> Outcome {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    // Conversations are reused round-robin with turns 2 s apart, so a conversation
    // does not have two turns in flight (a chat user waits for the answer).
    let conversations = u64::from(rate) * 2;
    let mut rng = StdRng::from_entropy();
    let shared = Arc::new(load.clone());
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcome = Outcome::default();
    let started = Instant::now();
    let mut i = 0u64;
    while i < total {
        let now = Instant::now();
        // Timers tick in milliseconds: start everything that is due, then sleep.
        while i < total && started + period.mul_f64(i as f64) <= now {
            let due = started + period.mul_f64(i as f64);
            let conversation = format!("{}-{}", load.phase, i % conversations);
            let text = chat_message(&mut rng);
            let mut client = load.client(i as usize);
            let load = shared.clone();
            tasks.spawn(async move {
                let result = load.send(&mut client, conversation, text).await;
                load.done.fetch_add(1, Ordering::Relaxed);
                (due.elapsed(), result.err())
            });
            i += 1;
        }
        // Reap finished tasks as we go so the set stays small.
        while let Some(joined) = tasks.try_join_next() {
            outcome.joined(joined);
        }
        if i < total {
            tokio::time::sleep_until(started + period.mul_f64(i as f64)).await;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        outcome.joined(joined);
    }
    outcome.elapsed = started.elapsed();
    outcome
}
