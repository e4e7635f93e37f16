//! SQL of the erasure fences (see the 0004 migration): a shred's fence and lock. The
//! calls that may create a subject's data key check it in their key statements
//! (`keys::insert_subject_keys`, `keys::subject_keys_locked`, `tokens::insert_tokens_under_keys`).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a fence is kept: far longer than any call runs.
const FENCE_KEPT: time::Duration = time::Duration::DAY;

/// Takes the subject's lock for the shred's transaction (waiting for the Tokenize calls
/// that share it to commit), then leaves its fence, erased now by this replica's clock,
/// and drops fences older than [`FENCE_KEPT`].
pub async fn fence_subject(
    tx: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(subject_lock_key($1, $2))")
        .bind(tenant)
        .bind(subject_ref)
        .execute(&mut *tx)
        .await?;
    let now = OffsetDateTime::now_utc();
    sqlx::query(
        "WITH fence AS (INSERT INTO subject_erasures (tenant_id, subject_ref, erased_at)
                        VALUES ($1, $2, $3)
                        ON CONFLICT (tenant_id, subject_ref)
                        DO UPDATE SET erased_at = EXCLUDED.erased_at)
         DELETE FROM subject_erasures
         WHERE erased_at < $4 AND NOT (tenant_id = $1 AND subject_ref = $2)",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(now)
    .bind(now - FENCE_KEPT)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
