//! Idempotent streams: a `RedactStream` whose context names an `idempotency_key` claims
//! it when it starts, by its context alone (the text is only known at its end). The
//! answer kept for retries is every response the stream sent, with a fingerprint of its
//! whole text. A retry with the key reads its text to the end and, when it is the first
//! one's, gets the same responses again (chunked as the first call's were) and writes
//! nothing; another text under the key is refused once its stream ends.

use prost::Message as _;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use veil_core::crypto::constant_time_eq;
use veil_core::error::ServiceError;
use veil_proto::gateway::v1::{
    RedactStreamCompleted, RedactStreamRequest, RedactStreamResponse, redact_stream_request,
    redact_stream_response,
};

use super::PipelineApi;
use super::commands::CommandSubject;
use super::persist::Landing;
use super::replays::{Claimed, ReplayKey, Replayed, key_reused};
use super::stream::{Output, StreamStart, Utf8Joiner};
use crate::store::TurnAnswer;

/// What a keyed stream leaves for its retries.
struct StreamAnswer {
    /// Of the stream's context and whole text ([`super::replays::Replays::fingerprint`]).
    text_fingerprint: Vec<u8>,
    responses: Vec<RedactStreamResponse>,
}

impl StreamAnswer {
    /// The fingerprint's length, then the fingerprint, then each response
    /// length-delimited.
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        prost::encoding::encode_varint(self.text_fingerprint.len() as u64, &mut bytes);
        bytes.extend_from_slice(&self.text_fingerprint);
        for response in &self.responses {
            // Writing into a Vec cannot run out of room.
            let _ = response.encode_length_delimited(&mut bytes);
        }
        bytes
    }

    fn decode(mut bytes: &[u8]) -> Result<Self, ServiceError> {
        let malformed =
            || ServiceError::internal(anyhow::anyhow!("a stored stream answer is malformed"));
        let length = prost::encoding::decode_varint(&mut bytes).map_err(|_| malformed())?;
        let length = usize::try_from(length).map_err(|_| malformed())?;
        if bytes.len() < length {
            return Err(malformed());
        }
        let text_fingerprint = bytes[..length].to_vec();
        bytes = &bytes[length..];
        let mut responses = Vec::new();
        while !bytes.is_empty() {
            let response = RedactStreamResponse::decode_length_delimited(&mut bytes)
                .map_err(|_| malformed())?;
            responses.push(response);
        }
        Ok(Self {
            text_fingerprint,
            responses,
        })
    }
}

impl PipelineApi {
    /// A stream with an idempotency key: processed and kept under a fresh claim, or the
    /// kept answer replayed.
    pub(super) async fn redact_keyed(
        &self,
        key: ReplayKey,
        stream: &StreamStart,
        mut input: Streaming<RedactStreamRequest>,
        sender: mpsc::Sender<Result<RedactStreamResponse, Status>>,
    ) -> Result<(), Status> {
        let tenant = &stream.call.tenant;
        let fingerprint = self.replays.stream_fingerprint(tenant, &stream.context);
        let claim = match self
            .replays
            .claim(key, &stream.subject_ref, &fingerprint)
            .await?
        {
            Claimed::Replay(replayed) => {
                return self.replay_stream(stream, input, sender, replayed).await;
            }
            Claimed::Fresh(claim) => claim,
        };
        let mut output = Output::keyed(sender, &claim);
        let result = self.redact_started(stream, &mut input, &mut output).await;
        let kept = output
            .keeping()
            .map(|k| (std::mem::take(&mut k.sent), k.settled));
        // A stream its caller left before its turn was written has no answer to keep.
        let recorded = match (&result, kept) {
            // Kept with the turn.
            (Ok(Some(_)), Some((_, true))) => Ok(()),
            (Ok(Some(text)), Some((responses, false))) => {
                let answer = StreamAnswer {
                    text_fingerprint: self.replays.fingerprint(tenant, &stream.context, text),
                    responses,
                };
                self.replays.answer(&claim, &answer.encode()).await
            }
            _ => self.replays.release(&claim).await,
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, "the idempotent stream's answer was not recorded");
        }
        result.map(drop)
    }

    /// A keyed stream's answer for its turn's statement to keep: what it sent, then
    /// `completed` (but for the turn's message id and index); `None` without a key.
    pub(super) fn stream_turn_answer(
        &self,
        stream: &StreamStart,
        output: &mut Output<'_>,
        text: &str,
        completed: &RedactStreamCompleted,
        settled: bool,
    ) -> Result<Option<TurnAnswer>, ServiceError> {
        let Some(keeping) = output.keeping() else {
            return Ok(None);
        };
        keeping.settled = settled;
        let mut responses = keeping.sent.clone();
        responses.push(RedactStreamResponse {
            kind: Some(redact_stream_response::Kind::Completed(completed.clone())),
        });
        let answer = StreamAnswer {
            text_fingerprint: self
                .replays
                .fingerprint(&stream.call.tenant, &stream.context, text),
            responses,
        };
        self.replays
            .turn_answer(keeping.claim, &answer.encode(), settled)
            .map(Some)
    }

    /// Replays a kept answer to a retry that sends the first call's text again.
    async fn replay_stream(
        &self,
        stream: &StreamStart,
        mut input: Streaming<RedactStreamRequest>,
        sender: mpsc::Sender<Result<RedactStreamResponse, Status>>,
        replayed: Replayed,
    ) -> Result<(), Status> {
        let mut answer = StreamAnswer::decode(&replayed.answer)?;
        let mut joiner = Utf8Joiner::default();
        let mut text = String::new();
        loop {
            match input.message().await?.and_then(|m| m.kind) {
                Some(redact_stream_request::Kind::Chunk(bytes)) => {
                    text.push_str(&joiner.push(&bytes)?);
                }
                Some(redact_stream_request::Kind::Start(_)) => {
                    return Err(ServiceError::invalid("start", "may only come first").into());
                }
                Some(redact_stream_request::Kind::Finish(_)) | None => {
                    joiner.finish()?;
                    break;
                }
            }
        }
        let fingerprint = self
            .replays
            .fingerprint(&stream.call.tenant, &stream.context, &text);
        if !constant_time_eq(&fingerprint, &answer.text_fingerprint) {
            return Err(key_reused().into());
        }
        // The retry is the first call's stream: what its turn left undone is done now.
        let last = answer.responses.last_mut().and_then(|r| r.kind.as_mut());
        if let Some(redact_stream_response::Kind::Completed(completed)) = last {
            if let Some(turn) = replayed.turn {
                completed.land(turn);
            }
            if replayed.unfinished.is_some() {
                let subject = CommandSubject::of(&stream.context, &stream.subject_ref);
                let command = completed.privacy_command.as_mut();
                self.finish_after_store(&stream.call, &subject, command)
                    .await;
            }
        }
        if let Some(claim) = replayed.unfinished
            && let Err(error) = self.replays.answer(&claim, &answer.encode()).await
        {
            tracing::warn!(%error, "the idempotent stream's answer was not recorded");
        }
        for response in answer.responses {
            if sender.send(Ok(response)).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use veil_proto::gateway::v1::RedactedChunk;

    use super::*;

    #[test]
    fn an_answer_reads_back_as_it_was_kept() {
        let chunk = |text: &str| RedactStreamResponse {
            kind: Some(redact_stream_response::Kind::Chunk(RedactedChunk {
                text: text.into(),
                entities: Vec::new(),
            })),
        };
        let completed = RedactStreamResponse {
            kind: Some(redact_stream_response::Kind::Completed(
                RedactStreamCompleted {
                    message_id: "m-1".into(),
                    turn_index: 3,
                    ..Default::default()
                },
            )),
        };
        let answer = StreamAnswer {
            text_fingerprint: vec![7; 32],
            responses: vec![chunk("Hello "), chunk(""), chunk("<PERSON_1>"), completed],
        };
        let decoded = StreamAnswer::decode(&answer.encode()).unwrap();
        assert_eq!(decoded.text_fingerprint, answer.text_fingerprint);
        assert_eq!(decoded.responses, answer.responses);

        let encoded = answer.encode();
        for cut in [0, 1, 20, encoded.len() - 1] {
            assert!(
                StreamAnswer::decode(&encoded[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
