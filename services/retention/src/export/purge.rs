//! Retention of exports (DATA_CATEGORY_EXPORT), called by the sweeper: an export ready
//! before the cutoff expires. Its contents were never stored, so expiring means the
//! request's export can no longer be downloaded and the job forgets its subject.

use std::collections::HashMap;

use sqlx::PgConnection;
use uuid::Uuid;
use veil_core::convert::from_timestamp;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::{PurgeCriteria, PurgeOutcome};

use crate::requests::store as requests;
use crate::state::Retention;

/// Jobs handled per call when the criteria set no batch limit.
const DEFAULT_BATCH: i64 = 5000;

/// Expires exports that became ready before `criteria.cutoff`; subjects in
/// `held_subject_refs` are skipped and counted. Every action expires (there is nothing
/// to anonymize or shred: only the job row exists).
pub async fn purge(
    conn: &mut PgConnection,
    _state: &Retention,
    tenant: TenantId,
    criteria: &PurgeCriteria,
) -> Result<PurgeOutcome, ServiceError> {
    let cutoff = criteria
        .cutoff
        .as_ref()
        .and_then(from_timestamp)
        .ok_or_else(|| ServiceError::invalid("criteria.cutoff", "is required"))?;
    let limit = match criteria.batch_limit {
        n if n > 0 => i64::from(n),
        _ => DEFAULT_BATCH,
    };
    let candidates: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT request_id, subject_ref FROM export_jobs
         WHERE tenant_id = $1 AND expired_at IS NULL AND ready_at < $2
         ORDER BY ready_at, request_id LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(tenant.as_uuid())
    .bind(cutoff)
    .bind(limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    let more_remaining = i64::try_from(candidates.len()).unwrap_or(i64::MAX) > limit;
    let mut held_skipped = 0_i64;
    let mut expire = Vec::new();
    for (request_id, subject) in candidates
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        if criteria.held_subject_refs.contains(&subject) {
            held_skipped += 1;
        } else {
            expire.push(request_id);
        }
    }
    let count = i64::try_from(expire.len()).unwrap_or(i64::MAX);
    if !criteria.dry_run && !expire.is_empty() {
        sqlx::query(
            "UPDATE export_jobs SET expired_at = now(), subject_ref = ''
             WHERE tenant_id = $1 AND request_id = ANY($2)",
        )
        .bind(tenant.as_uuid())
        .bind(&expire)
        .execute(&mut *conn)
        .await?;
        for request_id in &expire {
            requests::set_export_ready(conn, tenant, *request_id, false).await?;
        }
    }
    Ok(PurgeOutcome {
        counts: HashMap::from([("exports".to_string(), count)]),
        held_skipped,
        more_remaining,
        dry_run: criteria.dry_run,
    })
}
