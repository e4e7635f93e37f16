//! Legal holds: the one place every destructive path (sweeps, DSR erasure, admin deletes)
//! asks whether a subject's data may go.
//!
//! A hold is active while it is neither released nor past its `expires_at`. An expired
//! hold needs no release: it simply stops counting, and the saga's retry tick notices.

use sqlx::PgConnection;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};

/// An active hold that blocks destruction of a subject's data.
#[derive(Debug, Clone)]
pub struct BlockingHold {
    pub hold_id: String,
    /// Empty for a tenant-wide hold.
    pub subject_ref: String,
    pub reason: String,
}

/// SQL condition of an active hold (alias-free, evaluated at statement time).
pub(crate) const ACTIVE: &str =
    "released_at IS NULL AND (expires_at IS NULL OR expires_at > now())";

/// The first active hold over `subject` (or over the whole tenant), if any. Tenant-wide
/// holds come first, then the oldest subject hold, so the answer is stable.
pub async fn blocking_hold(
    conn: &mut PgConnection,
    tenant: TenantId,
    subject: &SubjectRef,
) -> Result<Option<BlockingHold>, ServiceError> {
    let row: Option<(Uuid, Option<String>, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT hold_id, subject_ref, reason FROM legal_holds
             WHERE tenant_id = $1 AND (subject_ref IS NULL OR subject_ref = $2) AND {ACTIVE}
             ORDER BY subject_ref NULLS FIRST, placed_at, hold_id
             LIMIT 1"
    )))
    .bind(tenant.as_uuid())
    .bind(subject.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(hold_id, subject_ref, reason)| BlockingHold {
        hold_id: hold_id.to_string(),
        subject_ref: subject_ref.unwrap_or_default(),
        reason,
    }))
}

/// The first active tenant-wide hold, if any: it stops the tenant's sweeps.
pub async fn tenant_hold(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Option<BlockingHold>, ServiceError> {
    let row: Option<(Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT hold_id, reason FROM legal_holds
         WHERE tenant_id = $1 AND subject_ref IS NULL AND {ACTIVE}
         ORDER BY placed_at, hold_id
         LIMIT 1"
    )))
    .bind(tenant.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(hold_id, reason)| BlockingHold {
        hold_id: hold_id.to_string(),
        subject_ref: String::new(),
        reason,
    }))
}

/// Every subject under an active hold in `tenant`, for a sweep's `held_subject_refs`.
pub async fn held_subject_refs(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Vec<String>, ServiceError> {
    let refs = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT subject_ref FROM legal_holds
         WHERE tenant_id = $1 AND subject_ref IS NOT NULL AND {ACTIVE}
         ORDER BY subject_ref"
    )))
    .bind(tenant.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    Ok(refs)
}
