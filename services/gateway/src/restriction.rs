//! Restriction of processing (GDPR Art. 18): a restricted subject's turns are still
//! stored, but the pipeline returns no redacted text for them, applies no purpose, and
//! refuses to restore originals. The mark lives in `subject_restrictions` and is read by
//! primary key on every call (batched with the per-message reads, see
//! `pipeline::lookups`), so it holds on every replica as soon as it is committed.

use sqlx::PgExecutor;
use uuid::Uuid;
use veil_core::error::ServiceError;

/// What the pipeline answers while a subject is restricted.
pub const RESTRICTED: &str = "processing restricted";

/// Restricts (`true`) or lifts the restriction of (`false`) a subject; returns whether
/// the subject was restricted before. Idempotent: restricting twice keeps the first mark.
pub async fn set(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
    request_id: &str,
    restricted: bool,
) -> Result<bool, ServiceError> {
    // One statement either way: the CTE reports whether a row existed before the change.
    let was_restricted = if restricted {
        sqlx::query_scalar(
            "WITH before AS (SELECT 1 FROM subject_restrictions
                             WHERE tenant_id = $1 AND subject_ref = $2),
                  mark AS (INSERT INTO subject_restrictions (tenant_id, subject_ref, request_id)
                           VALUES ($1, $2, $3)
                           ON CONFLICT (tenant_id, subject_ref) DO NOTHING)
             SELECT EXISTS (SELECT 1 FROM before)",
        )
        .bind(tenant)
        .bind(subject_ref)
        .bind(request_id)
        .fetch_one(db)
        .await?
    } else {
        sqlx::query_scalar(
            "WITH lifted AS (DELETE FROM subject_restrictions
                             WHERE tenant_id = $1 AND subject_ref = $2
                             RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM lifted)",
        )
        .bind(tenant)
        .bind(subject_ref)
        .fetch_one(db)
        .await?
    };
    Ok(was_restricted)
}
