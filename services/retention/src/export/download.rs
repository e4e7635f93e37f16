//! `DownloadExport`: the export assembled now from the services, streamed in chunks of
//! at most 64 KiB with their offsets, the content type first and the sha256 last.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::types::Role;
use veil_proto::common::v1::RequestType;
use veil_proto::retention::v1::{DownloadExportRequest, DownloadExportResponse, ExportFormat};

use super::collect::collect;
use super::jobs;
use super::render::{self, ExportHeader};
use crate::requests::store as requests;
use crate::state::Retention;

/// Largest chunk of the file per response message.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The stream `DownloadExport` answers with.
pub type ExportStream = tonic::codegen::BoxStream<DownloadExportResponse>;

/// The RPC body; `grpc::requests` delegates here.
pub async fn download_export(
    state: &Retention,
    request: Request<DownloadExportRequest>,
) -> Result<Response<ExportStream>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(&[Role::Bot, Role::PrivacyOfficer])?;
    let tenant = principal.tenant()?;
    let caller = principal.principal_id.to_string();
    let bot_only = !principal.has_role(Role::PrivacyOfficer);
    let message = request.into_inner();
    let request_id = parse_request_id(&message.request_id)?;
    let format = ExportFormat::try_from(message.format)
        .map_err(|_| ServiceError::invalid("format", "is not a known export format"))?;
    let mut conn = state.pool.acquire().await.map_err(ServiceError::from)?;
    let row = requests::load(&mut conn, tenant, request_id)
        .await?
        // A bot sees only the requests it submitted.
        .filter(|row| !bot_only || row.submitted_by.principal_id == caller)
        .ok_or_else(|| ServiceError::NotFound("request".into()))?;
    let request_type = match row.request_type {
        RequestType::Access => "access",
        RequestType::Portability => "portability",
        _ => {
            return Err(ServiceError::FailedPrecondition(
                "only access and portability requests have an export".into(),
            )
            .into());
        }
    };
    let job = jobs::load(&mut conn, tenant, request_id).await?;
    drop(conn);
    match job {
        Some(job) if job.expired_at.is_some() => {
            return Err(ServiceError::FailedPrecondition(
                "the export has expired; submit a new request".into(),
            )
            .into());
        }
        Some(job) if job.ready_at.is_some() && row.export_ready => {}
        _ => {
            return Err(
                ServiceError::FailedPrecondition("the export is not ready yet".into()).into(),
            );
        }
    }
    let collected = collect(state, tenant, &row.subject_ref, &request_id.to_string()).await?;
    let header = ExportHeader {
        request_id: request_id.to_string(),
        request_type,
        tenant_id: tenant.to_string(),
        subject_ref: row.subject_ref.as_str().to_string(),
        locale: row.locale.clone(),
        generated_at: OffsetDateTime::now_utc(),
    };
    let document = render::document(&header, &collected);
    let (bytes, content_type) = match format {
        ExportFormat::Html => (render::html(&header, &document), "text/html; charset=utf-8"),
        ExportFormat::Json | ExportFormat::Unspecified => {
            (render::json_bytes(&document), "application/json")
        }
    };
    let chunks = chunk(&bytes, content_type);
    Ok(Response::new(Box::pin(tokio_stream::iter(
        chunks.into_iter().map(Ok),
    ))))
}

fn parse_request_id(text: &str) -> Result<Uuid, ServiceError> {
    if text.is_empty() {
        return Err(ServiceError::invalid("request_id", "is required"));
    }
    Uuid::parse_str(text).map_err(|_| ServiceError::invalid("request_id", "must be a UUID"))
}

/// Cuts the file into responses: content type on the first, sha256 and `last` on the
/// final one (an empty file is one empty last chunk).
pub fn chunk(bytes: &[u8], content_type: &str) -> Vec<DownloadExportResponse> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(CHUNK_BYTES).collect()
    };
    let total = pieces.len();
    let mut offset = 0_i64;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let response = DownloadExportResponse {
                data: piece.to_vec(),
                content_type: if i == 0 {
                    content_type.to_string()
                } else {
                    String::new()
                },
                offset,
                sha256: if i + 1 == total {
                    sha256.clone()
                } else {
                    String::new()
                },
                last: i + 1 == total,
            };
            offset += i64::try_from(piece.len()).unwrap_or(i64::MAX);
            response
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chunks_reassemble_with_offsets_type_first_and_hash_last() {
        let bytes: Vec<u8> = (0..(CHUNK_BYTES * 2 + 10))
            .map(|i| (i % 251) as u8)
            .collect();
        let chunks = chunk(&bytes, "application/json");
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].content_type, "application/json");
        assert!(chunks[1].content_type.is_empty() && chunks[2].content_type.is_empty());
        assert!(chunks.iter().all(|c| c.data.len() <= CHUNK_BYTES));
        assert!(chunks[..2].iter().all(|c| !c.last && c.sha256.is_empty()));
        assert!(chunks[2].last);
        assert_eq!(chunks[2].sha256, hex::encode(Sha256::digest(&bytes)));
        let mut joined = Vec::new();
        for c in &chunks {
            assert_eq!(c.offset, joined.len() as i64);
            joined.extend_from_slice(&c.data);
        }
        assert_eq!(joined, bytes);
    }

    #[test]
    fn an_empty_file_is_one_last_chunk() {
        let chunks = chunk(&[], "text/html; charset=utf-8");
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].last && chunks[0].data.is_empty());
        assert_eq!(chunks[0].content_type, "text/html; charset=utf-8");
    }
}
