//! `RedactStream`: the pipeline over a token stream, and what both streams share. Output
//! is released as soon as it is safe; an entity that straddles two chunks is held back
//! until it is complete. Chunks are bytes and may split a UTF-8 sequence.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use veil_core::error::ServiceError;
use veil_core::types::SubjectRef;
use veil_pii::PseudonymMap;
use veil_proto::gateway::v1::{
    MessageContext, MessageRole, RedactStreamCompleted, RedactStreamRequest, RedactStreamResponse,
    RedactedChunk, redact_stream_request, redact_stream_response,
};

use super::commands::{CommandSubject, acts_after_store};
use super::persist::{ATTEMPTS, Landing, Turn, new_placeholders, too_many_concurrent_turns};
use super::replays::{Claim, ReplayKey};
use super::stream_claims::{StreamScope, StreamTokens};
use super::{Call, MAX_TEXT_BYTES, PipelineApi, check_redacted_size};
use crate::engine;

/// A boxed response stream.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Most chunks one stream may send: a 64 KiB reply streamed token by token (about four
/// bytes each). Each chunk costs a pass over the held-back text whatever its size, so
/// the count is bounded as well as the bytes.
pub const MAX_CHUNKS: usize = 16_384;

/// Reassembles UTF-8 text from byte chunks that may split a character.
#[derive(Default)]
pub struct Utf8Joiner {
    carry: Vec<u8>,
    total: usize,
    chunks: usize,
}

impl Utf8Joiner {
    /// The complete characters of `carry + chunk`; an invalid sequence is an error.
    pub fn push(&mut self, chunk: &[u8]) -> Result<String, ServiceError> {
        self.total += chunk.len();
        self.chunks += 1;
        if self.total > MAX_TEXT_BYTES {
            return Err(ServiceError::invalid("chunk", "the stream exceeds 64 KiB"));
        }
        if self.chunks > MAX_CHUNKS {
            return Err(ServiceError::invalid(
                "chunk",
                "the stream exceeds 16384 chunks",
            ));
        }
        self.carry.extend_from_slice(chunk);
        let valid = match std::str::from_utf8(&self.carry) {
            Ok(_) => self.carry.len(),
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => return Err(ServiceError::invalid("chunk", "is not valid UTF-8")),
        };
        let rest = self.carry.split_off(valid);
        let text = String::from_utf8(std::mem::replace(&mut self.carry, rest))
            .map_err(|_| ServiceError::invalid("chunk", "is not valid UTF-8"))?;
        Ok(text)
    }

    /// Fails if the stream ended inside a character.
    pub fn finish(&self) -> Result<(), ServiceError> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::invalid(
                "chunk",
                "ends inside a UTF-8 sequence",
            ))
        }
    }
}

impl PipelineApi {
    /// Runs a redact stream: its start, then its chunks.
    pub(super) async fn redact_stream(
        &self,
        call: Call,
        mut input: Streaming<RedactStreamRequest>,
        sender: mpsc::Sender<Result<RedactStreamResponse, Status>>,
    ) -> Result<(), Status> {
        let first = input
            .message()
            .await?
            .and_then(|m| m.kind)
            .ok_or_else(|| ServiceError::invalid("start", "the first message must be start"))?;
        let redact_stream_request::Kind::Start(start) = first else {
            return Err(ServiceError::invalid("start", "the first message must be start").into());
        };
        let (context, role) = super::context::checked("start.context", start.context)?;
        let subject_ref = self.subjects.subject_ref(&call.tenant, &context.subject_id);
        let stream = StreamStart {
            call,
            context,
            role,
            subject_ref,
        };
        match ReplayKey::of(stream.call.tenant, &stream.context) {
            Some(key) => self.redact_keyed(key, &stream, input, sender).await,
            None => {
                let mut output = Output::new(sender);
                self.redact_started(&stream, &mut input, &mut output)
                    .await
                    .map(drop)
            }
        }
    }

    /// The rest of a started stream. Returns its whole text once its turn is written, or
    /// `None` when the caller went away before.
    pub(super) async fn redact_started(
        &self,
        stream: &StreamStart,
        input: &mut Streaming<RedactStreamRequest>,
        output: &mut Output<'_>,
    ) -> Result<Option<String>, Status> {
        let StreamStart {
            call,
            context,
            role,
            subject_ref,
        } = stream;
        let role = *role;
        // GDPR Art. 18: a restricted subject's text is not streamed to an LLM (the bot
        // falls back to ProcessMessage, which stores the turn and returns no text).
        self.lookups
            .ensure_unrestricted(call.tenant.as_uuid(), subject_ref)
            .await?;
        let policy = self.policies.get(&self.pool, call.tenant).await?;
        let consent = self
            .consent(
                call,
                subject_ref,
                &context.purposes,
                context.jurisdiction,
                &policy,
            )
            .await?;
        let scope = StreamScope {
            call,
            conversation_id: &context.conversation_id,
            subject_id: &context.subject_id,
            subject_ref,
            role,
            store_raw: policy.proto.store_raw_in_vault,
        };
        // Placeholders released so far are in `claimed` and in the conversation's rows.
        let mut claimed = PseudonymMap::default();
        let mut tokens = StreamTokens::default();
        let mut redactor = self.engine.stream(&policy.pii, claimed.clone());
        let mut joiner = Utf8Joiner::default();
        let mut original = String::new();
        let mut redacted = String::new();
        let mut sent_entities = 0usize;
        loop {
            let next = input.message().await?;
            let (text, done) = match next.and_then(|m| m.kind) {
                Some(redact_stream_request::Kind::Chunk(bytes)) => (joiner.push(&bytes)?, false),
                Some(redact_stream_request::Kind::Start(_)) => {
                    return Err(ServiceError::invalid("start", "may only come first").into());
                }
                Some(redact_stream_request::Kind::Finish(_)) | None => {
                    joiner.finish()?;
                    (String::new(), true)
                }
            };
            original.push_str(&text);
            // Only a push that releases text can hand out a placeholder. When it brings
            // values the stream has not released yet, it is redone under the placeholders
            // the conversation's rows give them (a value of an earlier turn keeps its
            // own, new ones are numbered after every placeholder in use), and the new
            // ones are claimed (tokenized, their rows written) before the text goes out.
            // When a turn took one of them first, that happens again.
            let before = (done || redactor.may_release(text.len())).then(|| redactor.clone());
            let mut released = release(&mut redactor, &text, done)?;
            let mut attempt = 1;
            while let Some(before) = &before {
                if new_placeholders(&claimed, redactor.pseudonyms()).is_empty() {
                    break;
                }
                let known = self
                    .known(&scope, &mut tokens, redactor.pseudonyms())
                    .await?;
                redactor = before.clone().with_pseudonyms(tokens.map(&known)?);
                released = release(&mut redactor, &text, done)?;
                if self
                    .claim(&scope, &known, &tokens, redactor.pseudonyms())
                    .await?
                {
                    claimed = redactor.pseudonyms().clone();
                    break;
                }
                if attempt == ATTEMPTS {
                    return Err(too_many_concurrent_turns().into());
                }
                attempt += 1;
            }
            if !released.is_empty() {
                redacted.push_str(&released);
                check_redacted_size(&redacted)?;
                let all = engine::entities_of(&redacted, redactor.entities(), &[], false);
                let fresh = all.into_iter().skip(sent_entities).collect::<Vec<_>>();
                sent_entities += fresh.len();
                let chunk = RedactedChunk {
                    text: released,
                    entities: fresh,
                };
                let response = RedactStreamResponse {
                    kind: Some(redact_stream_response::Kind::Chunk(chunk)),
                };
                if !output.send(response).await {
                    return Ok(None);
                }
            }
            if done {
                break;
            }
        }

        // The stream is complete and its placeholders are claimed: the turn.
        let subject = CommandSubject::of(context, subject_ref);
        let command = if role == MessageRole::User {
            self.privacy_command(call, &original, &subject, &policy)
                .await
        } else {
            None
        };
        let (privacy_command, command_event) = command.unzip();
        let settled = !acts_after_store(privacy_command.as_ref(), &policy);
        // The last response but for the turn's message id and index.
        let mut completed = RedactStreamCompleted {
            stored: false,
            message_id: String::new(),
            notices_due: Vec::new(),
            privacy_command,
            consent: consent.applied.clone(),
            effective_purposes: consent.effective.clone(),
            policy_version: policy.version,
            turn_index: 0,
            entity_count: i32::try_from(redactor.entities().len()).unwrap_or(i32::MAX),
        };
        let answer = self.stream_turn_answer(stream, output, &original, &completed, settled)?;
        let stored = self
            .persist(
                call,
                Turn {
                    conversation_id: &context.conversation_id,
                    subject_ref,
                    role,
                    redacted_text: &redacted,
                    entities: redactor.entities(),
                    new_placeholders: &[],
                    consent: &consent,
                    command: command_event,
                    policy_version: policy.version,
                    text_bytes: original.len(),
                    streamed: true,
                    // Checked when the stream began; its rows were claimed on the way.
                    assumed: Default::default(),
                    answer,
                },
            )
            .await?
            .ok_or_else(too_many_concurrent_turns)?;
        completed.land(stored);
        if let Some(command) = completed.privacy_command.as_mut() {
            self.erase_after_store(call, &subject, &policy, command)
                .await;
        }
        output
            .send(RedactStreamResponse {
                kind: Some(redact_stream_response::Kind::Completed(completed)),
            })
            .await;
        Ok(Some(original))
    }
}

/// A checked stream start.
pub(super) struct StreamStart {
    pub call: Call,
    pub context: MessageContext,
    pub role: MessageRole,
    pub subject_ref: SubjectRef,
}

/// Where a stream's responses go: to its caller and, for a keyed stream, into the answer
/// kept for its retries.
pub(super) struct Output<'c> {
    sender: mpsc::Sender<Result<RedactStreamResponse, Status>>,
    keeping: Option<Keeping<'c>>,
}

/// What a keyed stream keeps.
pub(super) struct Keeping<'c> {
    pub claim: &'c Claim,
    pub sent: Vec<RedactStreamResponse>,
    /// The turn kept the answer and nothing changed it after.
    pub settled: bool,
}

impl<'c> Output<'c> {
    pub fn new(sender: mpsc::Sender<Result<RedactStreamResponse, Status>>) -> Self {
        Self {
            sender,
            keeping: None,
        }
    }

    /// An output that also keeps what it sends, for the answer under `claim`.
    pub fn keyed(
        sender: mpsc::Sender<Result<RedactStreamResponse, Status>>,
        claim: &'c Claim,
    ) -> Self {
        Self {
            sender,
            keeping: Some(Keeping {
                claim,
                sent: Vec::new(),
                settled: false,
            }),
        }
    }

    /// Sends `response` (and keeps it when keeping); false when the caller went away.
    pub async fn send(&mut self, response: RedactStreamResponse) -> bool {
        if let Some(keeping) = &mut self.keeping {
            keeping.sent.push(response.clone());
        }
        self.sender.send(Ok(response)).await.is_ok()
    }

    /// What a keyed stream keeps.
    pub fn keeping(&mut self) -> Option<&mut Keeping<'c>> {
        self.keeping.as_mut()
    }
}

/// Feeds `text` to the redactor (and ends it when `done`); the text now safe to release.
fn release(
    redactor: &mut veil_pii::StreamRedactor,
    text: &str,
    done: bool,
) -> Result<String, ServiceError> {
    let failed = |e: veil_pii::AnonymizeError| ServiceError::FailedPrecondition(e.to_string());
    let mut released = redactor.push(text).map_err(failed)?;
    if done {
        released.push_str(&redactor.finish().map_err(failed)?);
    }
    Ok(released)
}

/// Runs `work` in its own task and streams what it sends; its error ends the stream.
pub fn spawn_stream<T, F>(
    work: impl FnOnce(mpsc::Sender<Result<T, Status>>) -> F,
) -> ResponseStream<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<(), Status>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(16);
    let errors = sender.clone();
    let task = work(sender);
    tokio::spawn(async move {
        if let Err(status) = task.await {
            let _ = errors.send(Err(status)).await;
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}

#[cfg(test)]
mod tests {
    use super::{MAX_CHUNKS, Utf8Joiner};

    #[test]
    fn characters_split_across_chunks_are_joined() {
        let bytes = "Grüße 👋".as_bytes();
        let mut joiner = Utf8Joiner::default();
        let mut text = String::new();
        for chunk in bytes.chunks(1) {
            text.push_str(&joiner.push(chunk).expect("valid so far"));
        }
        joiner.finish().expect("complete");
        assert_eq!(text, "Grüße 👋");
    }

    #[test]
    fn chunks_are_counted_even_when_empty() {
        let mut joiner = Utf8Joiner::default();
        for _ in 0..MAX_CHUNKS {
            assert_eq!(joiner.push(b"").expect("within bounds"), "");
        }
        let refused = joiner.push(b"a").expect_err("one chunk too many");
        assert!(refused.to_string().contains("16384 chunks"), "{refused}");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut joiner = Utf8Joiner::default();
        assert!(joiner.push(&[0xff, 0x41]).is_err());
        let mut joiner = Utf8Joiner::default();
        assert!(
            joiner
                .push(&[0xe2, 0x82])
                .expect("incomplete is fine")
                .is_empty()
        );
        assert!(joiner.finish().is_err());
    }
}
