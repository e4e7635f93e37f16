//! SQL of rotations: new key versions, rewrap jobs and the batched rewraps themselves.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// `rewrap_jobs.level` of master rotations (tenant keys under the master key).
pub const MASTER: i16 = 1;
/// `rewrap_jobs.level` of tenant rotations (subject keys under the tenant KEK).
pub const TENANT: i16 = 2;

/// A rewrap job and its progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub level: i16,
    pub tenant_id: Option<Uuid>,
    pub target_version: i32,
    pub previous_version: i32,
    pub total: i64,
    pub done: i64,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// Starts a job, closing any unfinished one of the same scope (the new target covers it).
pub async fn create_job(
    tx: &mut PgConnection,
    level: i16,
    tenant: Option<Uuid>,
    target: i32,
    previous: i32,
    total: i64,
) -> sqlx::Result<JobRow> {
    sqlx::query(
        "UPDATE rewrap_jobs SET finished_at = now()
         WHERE level = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND finished_at IS NULL",
    )
    .bind(level)
    .bind(tenant)
    .execute(&mut *tx)
    .await?;
    sqlx::query_as(
        "INSERT INTO rewrap_jobs (level, tenant_id, target_version, previous_version, total)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, level, tenant_id, target_version, previous_version, total, done,
                   started_at, finished_at",
    )
    .bind(level)
    .bind(tenant)
    .bind(target)
    .bind(previous)
    .bind(total)
    .fetch_one(tx)
    .await
}

/// Unfinished jobs, oldest first.
pub async fn open_jobs(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(
        "SELECT id, level, tenant_id, target_version, previous_version, total, done,
                started_at, finished_at
         FROM rewrap_jobs WHERE finished_at IS NULL ORDER BY id",
    )
    .fetch_all(db)
    .await
}

/// The latest job of a scope.
pub async fn latest_job(
    db: impl PgExecutor<'_>,
    level: i16,
    tenant: Option<Uuid>,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(
        "SELECT id, level, tenant_id, target_version, previous_version, total, done,
                started_at, finished_at
         FROM rewrap_jobs WHERE level = $1 AND tenant_id IS NOT DISTINCT FROM $2
         ORDER BY id DESC LIMIT 1",
    )
    .bind(level)
    .bind(tenant)
    .fetch_optional(db)
    .await
}

/// Adds rewrapped keys to a job's progress.
pub async fn add_done(tx: &mut PgConnection, id: i64, count: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE rewrap_jobs SET done = done + $2 WHERE id = $1")
        .bind(id)
        .bind(count)
        .execute(tx)
        .await?;
    Ok(())
}

/// Marks a job finished; `None` if another worker already did.
pub async fn finish_job(tx: &mut PgConnection, id: i64) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(
        "UPDATE rewrap_jobs SET finished_at = now() WHERE id = $1 AND finished_at IS NULL
         RETURNING id, level, tenant_id, target_version, previous_version, total, done,
                   started_at, finished_at",
    )
    .bind(id)
    .fetch_optional(tx)
    .await
}

/// Demotes the tenant's active KEK to decrypt-only and returns its version; the row
/// lock makes concurrent rotations of one tenant take turns.
pub async fn demote_active_kek(tx: &mut PgConnection, tenant: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(
        "UPDATE tenant_keys SET state = 2
         WHERE tenant_id = $1 AND purpose = 'tenant_kek' AND state = 1
         RETURNING version",
    )
    .bind(tenant)
    .fetch_optional(tx)
    .await
}

/// Demotes the active master version to decrypt-only and returns it.
pub async fn demote_active_master(tx: &mut PgConnection) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("UPDATE master_keys SET state = 2 WHERE state = 1 RETURNING version")
        .fetch_optional(tx)
        .await
}

/// Records a new active master version.
pub async fn insert_master(
    tx: &mut PgConnection,
    version: i32,
    provider_key_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO master_keys (version, state, provider_key_id) VALUES ($1, 1, $2)
         ON CONFLICT (version) DO UPDATE SET state = 1, retired_at = NULL",
    )
    .bind(version)
    .bind(provider_key_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// Subject keys of a tenant not yet wrapped by `target`.
pub async fn count_stale_subject_keys(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    target: i32,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM subject_keys WHERE tenant_id = $1 AND kek_version <> $2",
    )
    .bind(tenant)
    .bind(target)
    .fetch_one(db)
    .await
}

/// Tenant keys not yet wrapped by master version `target`.
pub async fn count_stale_tenant_keys(db: impl PgExecutor<'_>, target: i32) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM tenant_keys WHERE master_version <> $1 AND state <> 3")
        .bind(target)
        .fetch_one(db)
        .await
}

/// A subject key to rewrap, with the KEK that wraps it now.
#[derive(Debug, sqlx::FromRow)]
pub struct StaleSubjectKey {
    pub subject_ref: String,
    pub kek_version: i32,
    pub wrapped: Vec<u8>,
    pub kek_master_version: i32,
    pub kek_wrapped: Vec<u8>,
}

/// Up to `limit` subject keys not wrapped by `target`, locked for this transaction;
/// rows locked by writers are skipped and picked up by a later batch.
pub async fn lock_stale_subject_keys(
    tx: &mut PgConnection,
    tenant: Uuid,
    target: i32,
    limit: i64,
) -> sqlx::Result<Vec<StaleSubjectKey>> {
    sqlx::query_as(
        "SELECT k.subject_ref, k.kek_version, k.wrapped,
                t.master_version AS kek_master_version, t.wrapped AS kek_wrapped
         FROM subject_keys k
         JOIN tenant_keys t ON t.tenant_id = k.tenant_id AND t.purpose = 'tenant_kek'
                           AND t.version = k.kek_version
         WHERE k.tenant_id = $1 AND k.kek_version <> $2
         LIMIT $3
         FOR NO KEY UPDATE OF k SKIP LOCKED",
    )
    .bind(tenant)
    .bind(target)
    .bind(limit)
    .fetch_all(tx)
    .await
}

/// Stores rewrapped subject keys.
pub async fn set_subject_wraps(
    tx: &mut PgConnection,
    tenant: Uuid,
    target: i32,
    subject_refs: &[String],
    wrapped: &[Vec<u8>],
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE subject_keys k SET kek_version = $2, wrapped = u.wrapped
         FROM UNNEST($3::text[], $4::bytea[]) AS u(subject_ref, wrapped)
         WHERE k.tenant_id = $1 AND k.subject_ref = u.subject_ref",
    )
    .bind(tenant)
    .bind(target)
    .bind(subject_refs)
    .bind(wrapped)
    .execute(tx)
    .await?;
    Ok(())
}

/// Retires the tenant's decrypt-only KEKs once nothing is wrapped by them: the row stays
/// for `KeyStatus`, the wrapped material is erased.
pub async fn retire_tenant_keks(
    tx: &mut PgConnection,
    tenant: Uuid,
    target: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE tenant_keys SET state = 3, retired_at = now(), wrapped = '\\x'::bytea
         WHERE tenant_id = $1 AND purpose = 'tenant_kek' AND version <> $2 AND state = 2",
    )
    .bind(tenant)
    .bind(target)
    .execute(tx)
    .await?;
    Ok(())
}

/// A tenant key to rewrap under a new master version.
#[derive(Debug, sqlx::FromRow)]
pub struct StaleTenantKey {
    pub tenant_id: Uuid,
    pub purpose: String,
    pub version: i32,
    pub master_version: i32,
    pub wrapped: Vec<u8>,
}

/// Up to `limit` tenant keys not wrapped by master `target`, locked (skipping locked).
pub async fn lock_stale_tenant_keys(
    tx: &mut PgConnection,
    target: i32,
    limit: i64,
) -> sqlx::Result<Vec<StaleTenantKey>> {
    sqlx::query_as(
        "SELECT tenant_id, purpose, version, master_version, wrapped FROM tenant_keys
         WHERE master_version <> $1 AND state <> 3
         LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED",
    )
    .bind(target)
    .bind(limit)
    .fetch_all(tx)
    .await
}

/// Stores one rewrapped tenant key.
pub async fn set_tenant_wrap(
    tx: &mut PgConnection,
    key: &StaleTenantKey,
    target: i32,
    wrapped: &[u8],
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE tenant_keys SET master_version = $4, wrapped = $5
         WHERE tenant_id = $1 AND purpose = $2 AND version = $3",
    )
    .bind(key.tenant_id)
    .bind(&key.purpose)
    .bind(key.version)
    .bind(target)
    .bind(wrapped)
    .execute(tx)
    .await?;
    Ok(())
}

/// Retires decrypt-only master versions once no tenant key uses them.
pub async fn retire_masters(tx: &mut PgConnection, target: i32) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE master_keys SET state = 3, retired_at = now() WHERE version <> $1 AND state = 2",
    )
    .bind(target)
    .execute(tx)
    .await?;
    Ok(())
}
