//! Erasure fences, for the services whose calls in flight could put an erased subject's
//! data back (gateway turns, vault data keys). Such a service's schema has a
//! `subject_erasures` table (tenant, subject ref, when it was erased) and a
//! `subject_lock_key(tenant, subject)` function naming the subject's advisory lock (see
//! the gateway's migration 0009 and the vault's 0004). The erasure fences the subject
//! here; the service's writes share the lock and refuse calls begun before the fence.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a fence is kept: far longer than any call runs.
const FENCE_KEPT: time::Duration = time::Duration::DAY;

/// Takes the subject's lock for the erasure's transaction (waiting for the writes that
/// share it to commit), then leaves its fence, erased now by this replica's clock, and
/// drops fences older than [`FENCE_KEPT`]. Call it before the erasure's deletes: their
/// statements then see every write committed before.
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
