//! `RestoreStream`: placeholders in a streamed LLM reply back to the originals, for the
//! same conversation and subject. A placeholder cut by a chunk boundary is held back
//! until it is complete, and each original is revealed only when the reply names it.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use veil_core::error::ServiceError;
use veil_core::subjects::validate_subject_id;
use veil_proto::gateway::v1::{
    RestoreStreamCompleted, RestoreStreamRequest, RestoreStreamResponse, restore_stream_request,
    restore_stream_response,
};

use super::stream::Utf8Joiner;
use super::{Call, PipelineApi, validate_conversation_id};
use crate::restore::RevealAsNamed;

type Sender = mpsc::Sender<Result<RestoreStreamResponse, Status>>;

impl PipelineApi {
    /// Runs a restore stream: placeholders back to originals for the same subject.
    pub(super) async fn restore_stream(
        &self,
        call: Call,
        mut input: Streaming<RestoreStreamRequest>,
        sender: Sender,
    ) -> Result<(), Status> {
        let first = input.message().await?.and_then(|m| m.kind);
        let Some(restore_stream_request::Kind::Start(start)) = first else {
            return Err(ServiceError::invalid("start", "the first message must be start").into());
        };
        validate_conversation_id("start.conversation_id", &start.conversation_id)?;
        validate_subject_id("start.subject_id", &start.subject_id)?;
        let subject_ref = self.subjects.subject_ref(&call.tenant, &start.subject_id);
        // GDPR Art. 18: originals are not put back while the subject is restricted.
        self.lookups
            .ensure_unrestricted(call.tenant.as_uuid(), &subject_ref)
            .await?;
        let scope = (
            call.tenant,
            start.conversation_id.as_str(),
            subject_ref.as_str(),
        );
        let mut known = RevealAsNamed::load(&self.pool, scope).await?;
        let mut cutter = veil_pii::StreamCutter::new(known.longest_placeholder());
        let service = call.service();
        let mut joiner = Utf8Joiner::default();
        let mut original = String::new();
        loop {
            let next = input.message().await?;
            let piece = match next.and_then(|m| m.kind) {
                Some(restore_stream_request::Kind::Chunk(bytes)) => {
                    let text = joiner.push(&bytes)?;
                    original.push_str(&text);
                    cutter.push(&text)
                }
                Some(restore_stream_request::Kind::Start(_)) => {
                    return Err(ServiceError::invalid("start", "may only come first").into());
                }
                Some(restore_stream_request::Kind::Finish(_)) | None => {
                    joiner.finish()?;
                    break;
                }
            };
            let restored = known
                .restore(&self.clients, &service, subject_ref.as_str(), &piece)
                .await?;
            if send_restored(&sender, restored).await.is_err() {
                return Ok(());
            }
        }
        let rest = cutter.finish();
        let restored = known
            .restore(&self.clients, &service, subject_ref.as_str(), &rest)
            .await?;
        if send_restored(&sender, restored).await.is_err() {
            return Ok(());
        }
        let (counts, unknown) = known.restorer().counts(&original);
        let counts: HashMap<String, i64> = counts.into_iter().collect();
        let completed = RestoreStreamCompleted {
            restored_count: i32::try_from(counts.values().sum::<i64>()).unwrap_or(i32::MAX),
            unknown_placeholders: unknown,
        };
        let _ = sender
            .send(Ok(RestoreStreamResponse {
                kind: Some(restore_stream_response::Kind::Completed(completed)),
            }))
            .await;
        Ok(())
    }
}

/// Sends a restored chunk unless it is empty; an error when the caller has gone.
async fn send_restored(
    sender: &Sender,
    text: String,
) -> Result<(), mpsc::error::SendError<Result<RestoreStreamResponse, Status>>> {
    if text.is_empty() {
        return Ok(());
    }
    sender
        .send(Ok(RestoreStreamResponse {
            kind: Some(restore_stream_response::Kind::Chunk(text)),
        }))
        .await
}
