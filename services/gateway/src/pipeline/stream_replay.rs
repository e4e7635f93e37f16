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
use veil_proto::gateway::v1::{RedactStreamRequest, RedactStreamResponse, redact_stream_request};

use super::PipelineApi;
use super::replays::{Claimed, ReplayKey, key_reused};
use super::stream::{Output, StreamStart, Utf8Joiner};

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
            Claimed::Replay(answer) => {
                return self.replay_stream(stream, input, sender, &answer).await;
            }
            Claimed::Fresh(claim) => claim,
        };
        let mut output = Output::keeping(sender);
        let result = self.redact_started(stream, &mut input, &mut output).await;
        // A stream its caller left before its turn was written has no answer to keep.
        let recorded = match &result {
            Ok(Some(text)) => {
                let answer = StreamAnswer {
                    text_fingerprint: self.replays.fingerprint(tenant, &stream.context, text),
                    responses: output.kept(),
                };
                self.replays.answer(&claim, &answer.encode()).await
            }
            Ok(None) | Err(_) => self.replays.release(&claim).await,
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, "the idempotent stream's answer was not recorded");
        }
        result.map(drop)
    }

    /// Replays a kept answer to a retry that sends the first call's text again.
    async fn replay_stream(
        &self,
        stream: &StreamStart,
        mut input: Streaming<RedactStreamRequest>,
        sender: mpsc::Sender<Result<RedactStreamResponse, Status>>,
        answer: &[u8],
    ) -> Result<(), Status> {
        let answer = StreamAnswer::decode(answer)?;
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

    use veil_proto::gateway::v1::{RedactStreamCompleted, RedactedChunk, redact_stream_response};

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
