//! SQL of the key hierarchy: master key versions, tenant keys and subject data keys.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// `tenant_keys.purpose` of the key-encryption key.
pub const KEK: &str = "tenant_kek";
/// `tenant_keys.purpose` of the token key.
pub const TOKEN_KEY: &str = "token_key";

/// `state` values, as `veil.vault.v1.KeyState`.
pub const ACTIVE: i16 = 1;
/// Decrypts only, until its rewrap completes.
pub const DECRYPT_ONLY: i16 = 2;
/// Nothing left wrapped by it.
pub const RETIRED: i16 = 3;

/// One version of a master key or tenant key, for `KeyStatus`.
#[derive(Debug, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i32,
    pub state: i16,
    pub provider_key_id: String,
    pub master_version: i32,
    pub created_at: time::OffsetDateTime,
    pub retired_at: Option<time::OffsetDateTime>,
}

/// A wrapped tenant key (KEK or token key).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantKeyRow {
    pub version: i32,
    pub master_version: i32,
    pub wrapped: Vec<u8>,
}

/// A subject data key with the KEK version that wraps it, read in the same statement so
/// a concurrent rewrap can never leave the two inconsistent.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubjectKeyRow {
    pub subject_ref: String,
    pub key_id: Uuid,
    pub kek_version: i32,
    pub wrapped: Vec<u8>,
    pub kek_master_version: i32,
    pub kek_wrapped: Vec<u8>,
}

/// The active master version, share-locked so a rotation waits for this transaction.
pub async fn active_master_locked(tx: &mut PgConnection) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("SELECT version FROM master_keys WHERE state = 1 FOR SHARE")
        .fetch_optional(tx)
        .await
}

/// The active master version.
pub async fn active_master(db: impl PgExecutor<'_>) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("SELECT version FROM master_keys WHERE state = 1")
        .fetch_optional(db)
        .await
}

/// Records a master version as active (the first one, at start-up).
pub async fn insert_active_master(
    db: impl PgExecutor<'_>,
    version: i32,
    provider_key_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO master_keys (version, state, provider_key_id) VALUES ($1, 1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(version)
    .bind(provider_key_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Master versions still wrapping some tenant key.
pub async fn master_versions_in_use(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar("SELECT DISTINCT master_version FROM tenant_keys WHERE state <> 3")
        .fetch_all(db)
        .await
}

/// Every master version, newest first.
pub async fn master_versions(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as(
        "SELECT version, state, provider_key_id, 0 AS master_version, created_at, retired_at
         FROM master_keys ORDER BY version DESC",
    )
    .fetch_all(db)
    .await
}

/// Every KEK version of a tenant, newest first.
pub async fn tenant_versions(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as(
        "SELECT version, state, '' AS provider_key_id, master_version, created_at, retired_at
         FROM tenant_keys WHERE tenant_id = $1 AND purpose = 'tenant_kek'
         ORDER BY version DESC",
    )
    .bind(tenant)
    .fetch_all(db)
    .await
}

/// Purposes for which the tenant has an active key.
pub async fn active_tenant_purposes(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT purpose FROM tenant_keys WHERE tenant_id = $1 AND state = 1")
        .bind(tenant)
        .fetch_all(db)
        .await
}

/// The tenant's active key of `purpose`.
pub async fn active_tenant_key(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    purpose: &str,
) -> sqlx::Result<Option<TenantKeyRow>> {
    sqlx::query_as(
        "SELECT version, master_version, wrapped FROM tenant_keys
         WHERE tenant_id = $1 AND purpose = $2 AND state = 1",
    )
    .bind(tenant)
    .bind(purpose)
    .fetch_optional(db)
    .await
}

/// The tenant's active KEK, share-locked: a rotation (which demotes it) waits until the
/// subject keys this transaction wraps under it are committed, so its rewrap sees them.
pub async fn active_kek_locked(
    tx: &mut PgConnection,
    tenant: Uuid,
) -> sqlx::Result<Option<TenantKeyRow>> {
    sqlx::query_as(
        "SELECT version, master_version, wrapped FROM tenant_keys
         WHERE tenant_id = $1 AND purpose = 'tenant_kek' AND state = 1 FOR SHARE",
    )
    .bind(tenant)
    .fetch_optional(tx)
    .await
}

/// Stores a new tenant key version; false if it exists already.
pub async fn insert_tenant_key(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    purpose: &str,
    version: i32,
    master_version: i32,
    wrapped: &[u8],
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO tenant_keys (tenant_id, purpose, version, state, master_version, wrapped)
         VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(purpose)
    .bind(version)
    .bind(master_version)
    .bind(wrapped)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The statement of [`subject_keys_locked`] ($1 tenant, $2 subject refs, $3 since),
/// public so a test can check its plan: it runs on every Tokenize that misses the key
/// cache. Each subject is looked up by the full primary key in a LATERAL subquery: with
/// `subject_ref = ANY($2)` a generic plan made while the table was small (stale
/// statistics) scanned every key of the tenant and filtered. So is its fence.
pub const SUBJECT_KEYS_LOCKED_SQL: &str =
    "SELECT k.subject_ref, k.key_id, k.kek_version, k.wrapped,
        t.master_version AS kek_master_version, t.wrapped AS kek_wrapped
 FROM UNNEST($2::text[]) AS s(subject_ref)
 JOIN LATERAL (SELECT * FROM subject_keys
               WHERE tenant_id = $1 AND subject_ref = s.subject_ref
               FOR KEY SHARE) k ON true
 JOIN tenant_keys t ON t.tenant_id = k.tenant_id AND t.purpose = 'tenant_kek'
                   AND t.version = k.kek_version
 WHERE NOT EXISTS (SELECT 1 FROM subject_erasures e
                   WHERE e.tenant_id = $1 AND e.subject_ref = s.subject_ref
                     AND e.erased_at > $3)";

/// Data keys of `subjects` with their KEKs, key-share locked so a concurrent shred waits
/// for this transaction (nothing is written under a key being destroyed). A subject
/// shredded after `since` has none here, whatever key it got since: the caller's attempt
/// to create it one is refused (see [`insert_subject_keys`]).
pub async fn subject_keys_locked(
    tx: &mut PgConnection,
    tenant: Uuid,
    subjects: &[String],
    since: OffsetDateTime,
) -> sqlx::Result<Vec<SubjectKeyRow>> {
    sqlx::query_as(SUBJECT_KEYS_LOCKED_SQL)
        .bind(tenant)
        .bind(subjects)
        .bind(since)
        .fetch_all(tx)
        .await
}

/// Data key of one subject with its KEK, without locking (reads).
pub async fn subject_key(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<Option<SubjectKeyRow>> {
    sqlx::query_as(
        "SELECT k.subject_ref, k.key_id, k.kek_version, k.wrapped,
                t.master_version AS kek_master_version, t.wrapped AS kek_wrapped
         FROM subject_keys k
         JOIN tenant_keys t ON t.tenant_id = k.tenant_id AND t.purpose = 'tenant_kek'
                           AND t.version = k.kek_version
         WHERE k.tenant_id = $1 AND k.subject_ref = $2",
    )
    .bind(tenant)
    .bind(subject_ref)
    .fetch_optional(db)
    .await
}

/// Counts one more record for the subject (none when a replaced record already used
/// this key) and returns its key, row-locked until the transaction ends. The KEK is read
/// by a second statement: this one may have waited for a rewrap batch, and its snapshot
/// would not see a KEK version created meanwhile.
pub async fn bump_subject_key(
    tx: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
    replaced_key: Option<Uuid>,
) -> sqlx::Result<Option<SubjectKeyRow>> {
    let bumped: Option<(Uuid, i32, Vec<u8>)> = sqlx::query_as(
        "UPDATE subject_keys
         SET record_count = record_count
             + CASE WHEN key_id IS NOT DISTINCT FROM $3 THEN 0 ELSE 1 END
         WHERE tenant_id = $1 AND subject_ref = $2
         RETURNING key_id, kek_version, wrapped",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(replaced_key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((key_id, kek_version, wrapped)) = bumped else {
        return Ok(None);
    };
    // The row lock keeps this KEK version referenced, so it cannot be retired before
    // the transaction ends.
    let kek: (i32, Vec<u8>) = sqlx::query_as(
        "SELECT master_version, wrapped FROM tenant_keys
         WHERE tenant_id = $1 AND purpose = 'tenant_kek' AND version = $2",
    )
    .bind(tenant)
    .bind(kek_version)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Some(SubjectKeyRow {
        subject_ref: subject_ref.to_string(),
        key_id,
        kek_version,
        wrapped,
        kek_master_version: kek.0,
        kek_wrapped: kek.1,
    }))
}

/// A new subject data key row.
pub struct NewSubjectKey<'a> {
    pub subject_ref: &'a str,
    pub key_id: Uuid,
    pub kek_version: i32,
    pub wrapped: &'a [u8],
    pub record_count: i64,
}

/// Inserts subject keys (one statement), skipping subjects that got one concurrently;
/// returns the subject refs inserted, or `None`, inserting nothing, when one of the
/// subjects was shredded after `since`. The subjects' erasure locks are shared for the
/// transaction first (the `erased_since` function of the 0004 migration), so a shred in
/// progress deletes a key inserted before it, and one inserted after it is refused.
pub async fn insert_subject_keys(
    tx: &mut PgConnection,
    tenant: Uuid,
    keys: &[NewSubjectKey<'_>],
    since: OffsetDateTime,
) -> sqlx::Result<Option<Vec<String>>> {
    let subjects: Vec<&str> = keys.iter().map(|k| k.subject_ref).collect();
    let ids: Vec<Uuid> = keys.iter().map(|k| k.key_id).collect();
    let kek_versions: Vec<i32> = keys.iter().map(|k| k.kek_version).collect();
    let wrapped: Vec<&[u8]> = keys.iter().map(|k| k.wrapped).collect();
    let counts: Vec<i64> = keys.iter().map(|k| k.record_count).collect();
    let (erased, inserted): (bool, Vec<String>) = sqlx::query_as(
        "WITH fence AS (SELECT cardinality(erased_since($1, $2, $7)) > 0 AS erased),
              inserted AS (
             INSERT INTO subject_keys (tenant_id, subject_ref, key_id, kek_version, wrapped,
                                       record_count)
             SELECT $1, u.* FROM UNNEST($2::text[], $3::uuid[], $4::int[], $5::bytea[],
                                        $6::int8[]) AS u, fence
             WHERE NOT fence.erased
             ON CONFLICT (tenant_id, subject_ref) DO NOTHING
             RETURNING subject_ref)
         SELECT (SELECT erased FROM fence), ARRAY(SELECT subject_ref FROM inserted)",
    )
    .bind(tenant)
    .bind(&subjects)
    .bind(&ids)
    .bind(&kek_versions)
    .bind(&wrapped)
    .bind(&counts)
    .bind(since)
    .fetch_one(tx)
    .await?;
    Ok((!erased).then_some(inserted))
}

/// Destroys a subject's data key; returns its id and how many records it encrypted.
pub async fn delete_subject_key(
    tx: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<Option<(Uuid, i64)>> {
    sqlx::query_as(
        "DELETE FROM subject_keys WHERE tenant_id = $1 AND subject_ref = $2
         RETURNING key_id, record_count",
    )
    .bind(tenant)
    .bind(subject_ref)
    .fetch_optional(tx)
    .await
}

/// Lowers the record count of the key that sealed a deleted record (if it still exists).
pub async fn release_record(
    tx: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
    key_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE subject_keys SET record_count = greatest(record_count - 1, 0)
         WHERE tenant_id = $1 AND subject_ref = $2 AND key_id = $3",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(key_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// A tenant's KEK of one version (any state).
pub async fn tenant_key_version(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    version: i32,
) -> sqlx::Result<Option<TenantKeyRow>> {
    sqlx::query_as(
        "SELECT version, master_version, wrapped FROM tenant_keys
         WHERE tenant_id = $1 AND purpose = 'tenant_kek' AND version = $2 AND state <> 3",
    )
    .bind(tenant)
    .bind(version)
    .fetch_optional(db)
    .await
}
