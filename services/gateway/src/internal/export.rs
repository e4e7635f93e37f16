//! `ExportSubject`: a subject's transcript turns for an access or portability request,
//! as JSON Lines in section "transcripts" (schema in docs/exports.md): each turn with its
//! redacted text and the text restored for the subject through the vault, by the same
//! code that serves `RestoreText`.
//!
//! Turns are read in pages ordered by conversation and turn, each conversation's
//! originals revealed once; chunks hold complete lines and stay under [`CHUNK_BYTES`]
//! unless a single line is larger.

use std::pin::Pin;

use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::ExportChunk;
use veil_proto::gateway::v1::{ExportSubjectResponse, MessageRole};

use crate::clients::Clients;
use crate::restore::Restorer;

/// Section name of the gateway's part of an export.
pub const SECTION: &str = "transcripts";
/// Bytes a chunk stays under (unless one line alone is larger).
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Turns read per query.
const PAGE: i64 = 500;

/// The response stream.
pub type ExportStream = Pin<Box<dyn Stream<Item = Result<ExportSubjectResponse, Status>> + Send>>;

/// One line of the export.
#[derive(Debug, Serialize)]
pub struct TurnLine<'a> {
    pub conversation_id: &'a str,
    pub turn_index: i64,
    pub message_id: String,
    /// `user`, `assistant` or `agent`.
    pub role: &'static str,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub redacted_text: &'a str,
    /// Placeholders of this subject replaced by their originals; placeholders whose
    /// original is gone (erased in the vault) stay as they are.
    pub restored_text: &'a str,
}

fn role_name(role: i32) -> &'static str {
    match MessageRole::try_from(role) {
        Ok(MessageRole::User) => "user",
        Ok(MessageRole::Assistant) => "assistant",
        Ok(MessageRole::Agent) => "agent",
        _ => "unspecified",
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    conversation_id: String,
    turn_index: i64,
    message_id: uuid::Uuid,
    role: i32,
    redacted_text: String,
    created_at: time::OffsetDateTime,
}

/// The subject's turns after (`conversation`, `turn`) in export order.
async fn page(
    pool: &PgPool,
    tenant: uuid::Uuid,
    subject_ref: &str,
    after: &(String, i64),
) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as(
        "SELECT conversation_id, turn_index, message_id, role, redacted_text, created_at
         FROM transcript_messages
         WHERE tenant_id = $1 AND subject_ref = $2 AND (conversation_id, turn_index) > ($3, $4)
         ORDER BY conversation_id, turn_index
         LIMIT $5",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(&after.0)
    .bind(after.1)
    .bind(PAGE)
    .fetch_all(pool)
    .await
}

/// Accumulates lines into chunks.
struct Chunker {
    buffer: Vec<u8>,
    sequence: i64,
}

impl Chunker {
    /// Adds a line; returns a full chunk to send first when the line would not fit.
    fn push(&mut self, line: &[u8]) -> Option<ExportChunk> {
        let full = (!self.buffer.is_empty() && self.buffer.len() + line.len() + 1 > CHUNK_BYTES)
            .then(|| self.take(false));
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
        full
    }

    fn take(&mut self, last: bool) -> ExportChunk {
        let chunk = ExportChunk {
            section: SECTION.to_string(),
            sequence: self.sequence,
            json_lines: std::mem::take(&mut self.buffer),
            last,
        };
        self.sequence += 1;
        chunk
    }
}

/// Everything an export needs, moved into its task.
pub struct Export {
    pub pool: PgPool,
    pub clients: Clients,
    pub service: Principal,
    pub tenant: TenantId,
    pub subject: SubjectRef,
}

type Sender = mpsc::Sender<Result<ExportSubjectResponse, Status>>;

impl Export {
    /// Streams the export from its own task; a failure ends the stream with its status.
    pub fn spawn(self) -> ExportStream {
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(status) = self.run(&sender).await {
                // The receiver may be gone (the caller hung up); nothing left to tell.
                let _ = sender.send(Err(status)).await;
            }
        });
        Box::pin(ReceiverStream::new(receiver))
    }

    async fn run(&self, sender: &Sender) -> Result<(), Status> {
        let tenant = self.tenant.as_uuid();
        let mut chunker = Chunker {
            buffer: Vec::new(),
            sequence: 0,
        };
        let mut after = (String::new(), -1);
        let mut restorer: Option<(String, Restorer)> = None;
        loop {
            let rows = page(&self.pool, tenant, self.subject.as_str(), &after)
                .await
                .map_err(ServiceError::from)?;
            let Some(last) = rows.last() else { break };
            after = (last.conversation_id.clone(), last.turn_index);
            let full_page = i64::try_from(rows.len()).unwrap_or(i64::MAX) == PAGE;
            for row in &rows {
                let current = restorer
                    .as_ref()
                    .is_some_and(|(conversation, _)| *conversation == row.conversation_id);
                if !current {
                    let loaded = Restorer::load(
                        &self.pool,
                        &self.clients,
                        &self.service,
                        (self.tenant, &row.conversation_id, self.subject.as_str()),
                        true,
                    )
                    .await?;
                    restorer = Some((row.conversation_id.clone(), loaded));
                }
                let restored = match &restorer {
                    Some((_, r)) => r.restore(&row.redacted_text)?.0,
                    None => row.redacted_text.clone(),
                };
                let line = TurnLine {
                    conversation_id: &row.conversation_id,
                    turn_index: row.turn_index,
                    message_id: row.message_id.to_string(),
                    role: role_name(row.role),
                    created_at: rfc3339(row.created_at),
                    redacted_text: &row.redacted_text,
                    restored_text: &restored,
                };
                let line = serde_json::to_vec(&line).map_err(ServiceError::internal)?;
                if let Some(chunk) = chunker.push(&line) {
                    send(sender, chunk).await?;
                }
            }
            if !full_page {
                break;
            }
        }
        send(sender, chunker.take(true)).await
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn send(sender: &Sender, chunk: ExportChunk) -> Result<(), Status> {
    sender
        .send(Ok(ExportSubjectResponse { chunk: Some(chunk) }))
        .await
        .map_err(|_| Status::cancelled("export receiver closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_complete_lines_and_stay_under_the_bound() {
        let mut chunker = Chunker {
            buffer: Vec::new(),
            sequence: 0,
        };
        let line = vec![b'x'; 100 * 1024];
        assert!(chunker.push(&line).is_none());
        assert!(chunker.push(&line).is_none());
        let full = chunker.push(&line).expect("third line does not fit");
        assert_eq!(full.sequence, 0);
        assert_eq!(full.json_lines.len(), 2 * (100 * 1024 + 1));
        assert!(!full.last);
        let last = chunker.take(true);
        assert_eq!((last.sequence, last.last), (1, true));
        assert_eq!(last.json_lines.len(), 100 * 1024 + 1);
    }

    #[test]
    fn an_empty_export_is_one_last_chunk() {
        let mut chunker = Chunker {
            buffer: Vec::new(),
            sequence: 0,
        };
        let chunk = chunker.take(true);
        assert!(chunk.last && chunk.json_lines.is_empty() && chunk.sequence == 0);
    }
}
