//! `Export`: the caller's entries as JSON Lines, in chunks.

use tonic::{Request, Response, Status};
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_proto::audit::v1::{ExportRequest, ExportResponse};

use super::scope::{READERS, tenant_scope};
use super::{AuditApi, ExportStream, entry_to_proto};
use crate::export::JsonLines;
use crate::store::{self, EntryFilter, tree};

/// Entries per streamed message.
const CHUNK: u64 = 500;

struct Cursor {
    pool: sqlx::PgPool,
    lines: JsonLines,
    tenant: Option<uuid::Uuid>,
    /// Next leaf index to read.
    next: u64,
    /// First index not exported (the log's end when the export started).
    end: u64,
    remaining: u64,
}

pub(super) async fn export(
    api: &AuditApi,
    request: Request<ExportRequest>,
) -> Result<Response<ExportStream>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(READERS)?;
    let tenant = tenant_scope(principal)?;
    let request = request.into_inner();
    let end = tree::size(&api.pool).await.map_err(ServiceError::from)?;
    let cursor = Cursor {
        pool: api.pool.clone(),
        lines: JsonLines::new().map_err(ServiceError::internal)?,
        tenant,
        next: request.from_leaf_index,
        end,
        remaining: if request.limit == 0 {
            u64::MAX
        } else {
            request.limit
        },
    };
    let stream = futures::stream::try_unfold(cursor, |mut cursor| async move {
        if cursor.remaining == 0 || cursor.next >= cursor.end {
            return Ok(None);
        }
        let filter = EntryFilter {
            tenant: cursor.tenant,
            after: tree::to_i64(cursor.next) - 1,
            limit: tree::to_i64(CHUNK.min(cursor.remaining)),
            ..EntryFilter::default()
        };
        let rows = store::query(&cursor.pool, &filter)
            .await
            .map_err(|e| Status::from(ServiceError::from(e)))?;
        let mut json_lines = Vec::new();
        let mut last = None;
        for row in rows {
            let idx = u64::try_from(row.idx).unwrap_or_default();
            if idx >= cursor.end {
                break;
            }
            last = Some(idx);
            cursor
                .lines
                .write_entry(&mut json_lines, &entry_to_proto(row))
                .map_err(|e| Status::from(ServiceError::internal(e)))?;
            cursor.remaining -= 1;
        }
        let Some(last) = last else {
            return Ok(None);
        };
        cursor.next = last + 1;
        let response = ExportResponse {
            json_lines,
            next_leaf_index: cursor.next,
        };
        Ok(Some((response, cursor)))
    });
    Ok(Response::new(Box::pin(stream)))
}
