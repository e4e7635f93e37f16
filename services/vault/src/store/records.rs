//! SQL of encrypted records.

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// A record's metadata (never its value), with the KEK version of its data key (none
/// when that key was destroyed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecordMeta {
    pub record_id: Uuid,
    pub subject_ref: String,
    pub category: String,
    pub field: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub purpose_keys: Vec<String>,
    pub labels: Json<BTreeMap<String, String>>,
    pub kek_version: Option<i32>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

/// A record with its ciphertext and, when it still exists, the key that sealed it.
#[derive(Debug, sqlx::FromRow)]
pub struct SealedRecord {
    #[sqlx(flatten)]
    pub meta: RecordMeta,
    pub key_id: Uuid,
    pub sealed: Vec<u8>,
    pub kek_master_version: Option<i32>,
    pub kek_wrapped: Option<Vec<u8>>,
    pub wrapped: Option<Vec<u8>>,
}

/// What a new or replaced record stores.
pub struct RecordWrite<'a> {
    pub record_id: Uuid,
    pub subject_ref: &'a str,
    pub key_id: Uuid,
    pub category: &'a str,
    pub field: &'a str,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub purpose_keys: &'a [String],
    pub labels: &'a BTreeMap<String, String>,
    pub sealed: &'a [u8],
    pub expires_at: Option<OffsetDateTime>,
}

/// Inserts a new record, or replaces the record with the same id.
pub async fn upsert_record(
    tx: &mut PgConnection,
    tenant: Uuid,
    record: &RecordWrite<'_>,
) -> sqlx::Result<(OffsetDateTime, OffsetDateTime)> {
    sqlx::query_as(
        "INSERT INTO records (tenant_id, record_id, subject_ref, key_id, category, field,
                              content_type, size_bytes, purpose_keys, labels, sealed, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (tenant_id, record_id) DO UPDATE SET
             key_id = EXCLUDED.key_id, category = EXCLUDED.category, field = EXCLUDED.field,
             content_type = EXCLUDED.content_type, size_bytes = EXCLUDED.size_bytes,
             purpose_keys = EXCLUDED.purpose_keys, labels = EXCLUDED.labels,
             sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at, updated_at = now()
         RETURNING created_at, updated_at",
    )
    .bind(tenant)
    .bind(record.record_id)
    .bind(record.subject_ref)
    .bind(record.key_id)
    .bind(record.category)
    .bind(record.field)
    .bind(record.content_type)
    .bind(record.size_bytes)
    .bind(record.purpose_keys)
    .bind(Json(record.labels))
    .bind(record.sealed)
    .bind(record.expires_at)
    .fetch_one(tx)
    .await
}

/// The subject, key and category of an existing record, row-locked for replacement.
pub async fn lock_record(
    tx: &mut PgConnection,
    tenant: Uuid,
    record_id: Uuid,
) -> sqlx::Result<Option<(String, Uuid, String)>> {
    sqlx::query_as(
        "SELECT subject_ref, key_id, category FROM records
         WHERE tenant_id = $1 AND record_id = $2 FOR UPDATE",
    )
    .bind(tenant)
    .bind(record_id)
    .fetch_optional(tx)
    .await
}

/// A record with everything needed to open it, read in one statement so the data key
/// and the KEK version wrapping it are consistent even during a rewrap.
pub async fn sealed_record(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    record_id: Uuid,
) -> sqlx::Result<Option<SealedRecord>> {
    sqlx::query_as(
        "SELECT r.record_id, r.subject_ref, r.category, r.field, r.content_type, r.size_bytes,
                r.purpose_keys, r.labels, k.kek_version, r.created_at, r.updated_at,
                r.expires_at, r.key_id, r.sealed, t.master_version AS kek_master_version,
                t.wrapped AS kek_wrapped, k.wrapped
         FROM records r
         LEFT JOIN subject_keys k ON k.tenant_id = r.tenant_id
              AND k.subject_ref = r.subject_ref AND k.key_id = r.key_id
         LEFT JOIN tenant_keys t ON t.tenant_id = k.tenant_id AND t.purpose = 'tenant_kek'
              AND t.version = k.kek_version
         WHERE r.tenant_id = $1 AND r.record_id = $2",
    )
    .bind(tenant)
    .bind(record_id)
    .fetch_optional(db)
    .await
}

/// Deletes a record; returns its subject, key and category.
pub async fn delete_record(
    tx: &mut PgConnection,
    tenant: Uuid,
    record_id: Uuid,
) -> sqlx::Result<Option<(String, Uuid, String)>> {
    sqlx::query_as(
        "DELETE FROM records WHERE tenant_id = $1 AND record_id = $2
         RETURNING subject_ref, key_id, category",
    )
    .bind(tenant)
    .bind(record_id)
    .fetch_optional(tx)
    .await
}

/// Optional filters of a record listing.
pub struct ListFilter<'a> {
    pub subject_ref: Option<&'a str>,
    pub category: Option<&'a str>,
    pub field: Option<&'a str>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// Record metadata in record id (creation) order.
pub async fn list_records(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    filter: &ListFilter<'_>,
) -> sqlx::Result<Vec<RecordMeta>> {
    sqlx::query_as(
        "SELECT r.record_id, r.subject_ref, r.category, r.field, r.content_type, r.size_bytes,
                r.purpose_keys, r.labels, k.kek_version, r.created_at, r.updated_at,
                r.expires_at
         FROM records r
         LEFT JOIN subject_keys k ON k.tenant_id = r.tenant_id
              AND k.subject_ref = r.subject_ref AND k.key_id = r.key_id
         WHERE r.tenant_id = $1
           AND ($2::text IS NULL OR r.subject_ref = $2)
           AND ($3::text IS NULL OR r.category = $3)
           AND ($4::text IS NULL OR r.field = $4)
           AND ($5::uuid IS NULL OR r.record_id > $5)
         ORDER BY r.record_id
         LIMIT $6",
    )
    .bind(tenant)
    .bind(filter.subject_ref)
    .bind(filter.category)
    .bind(filter.field)
    .bind(filter.after)
    .bind(filter.limit)
    .fetch_all(db)
    .await
}

/// One page of a subject's records sealed under `key_id`, for export.
pub async fn subject_page(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
    key_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<(RecordMetaLite, Vec<u8>)>> {
    let rows: Vec<ExportRow> = sqlx::query_as(
        "SELECT record_id, category, field, content_type, created_at, sealed
         FROM records
         WHERE tenant_id = $1 AND subject_ref = $2 AND key_id = $3
           AND ($4::uuid IS NULL OR record_id > $4)
         ORDER BY record_id LIMIT $5",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(key_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                RecordMetaLite {
                    record_id: row.record_id,
                    category: row.category,
                    field: row.field,
                    content_type: row.content_type,
                    created_at: row.created_at,
                },
                row.sealed,
            )
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    record_id: Uuid,
    category: String,
    field: String,
    content_type: String,
    created_at: OffsetDateTime,
    sealed: Vec<u8>,
}

/// What an export line says about a record besides its value.
#[derive(Debug, Clone)]
pub struct RecordMetaLite {
    pub record_id: Uuid,
    pub category: String,
    pub field: String,
    pub content_type: String,
    pub created_at: OffsetDateTime,
}

/// Whether the subject has any record (readable or not).
pub async fn subject_has_records(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM records WHERE tenant_id = $1 AND subject_ref = $2)",
    )
    .bind(tenant)
    .bind(subject_ref)
    .fetch_one(db)
    .await
}

/// Which records a purge call covers.
pub struct PurgeScope<'a> {
    /// Records without their own expiry created before this are expired.
    pub cutoff: OffsetDateTime,
    /// Only records collected for this purpose; empty means all.
    pub purpose_key: &'a str,
    /// Subjects under a legal hold.
    pub held: &'a [String],
    /// Most records handled.
    pub limit: i64,
}

/// Expired records of held subjects (skipped).
pub async fn count_held(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    scope: &PurgeScope<'_>,
) -> sqlx::Result<i64> {
    if scope.held.is_empty() {
        return Ok(0);
    }
    sqlx::query_scalar(
        "SELECT count(*) FROM records
         WHERE tenant_id = $1
           AND CASE WHEN expires_at IS NOT NULL THEN expires_at <= now() ELSE created_at < $2 END
           AND ($3 = '' OR $3 = ANY(purpose_keys))
           AND subject_ref = ANY($4)",
    )
    .bind(tenant)
    .bind(scope.cutoff)
    .bind(scope.purpose_key)
    .bind(scope.held)
    .fetch_one(db)
    .await
}

/// Expired records outside held subjects.
pub async fn count_expired(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    scope: &PurgeScope<'_>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM records
         WHERE tenant_id = $1
           AND CASE WHEN expires_at IS NOT NULL THEN expires_at <= now() ELSE created_at < $2 END
           AND ($3 = '' OR $3 = ANY(purpose_keys))
           AND NOT (subject_ref = ANY($4))",
    )
    .bind(tenant)
    .bind(scope.cutoff)
    .bind(scope.purpose_key)
    .bind(scope.held)
    .fetch_one(db)
    .await
}

/// Deletes up to `limit` expired records outside held subjects and lowers their keys'
/// record counts; returns how many were deleted.
pub async fn purge_expired(
    tx: &mut PgConnection,
    tenant: Uuid,
    scope: &PurgeScope<'_>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "WITH victims AS (
             SELECT record_id FROM records
             WHERE tenant_id = $1
               AND CASE WHEN expires_at IS NOT NULL THEN expires_at <= now()
                        ELSE created_at < $2 END
               AND ($3 = '' OR $3 = ANY(purpose_keys))
               AND NOT (subject_ref = ANY($4))
             ORDER BY record_id LIMIT $5
             FOR UPDATE SKIP LOCKED),
         gone AS (
             DELETE FROM records r USING victims v
             WHERE r.tenant_id = $1 AND r.record_id = v.record_id
             RETURNING r.subject_ref, r.key_id),
         per_key AS (
             SELECT subject_ref, key_id, count(*) AS n FROM gone GROUP BY subject_ref, key_id),
         released AS (
             UPDATE subject_keys k SET record_count = greatest(k.record_count - p.n, 0)
             FROM per_key p
             WHERE k.tenant_id = $1 AND k.subject_ref = p.subject_ref AND k.key_id = p.key_id
             RETURNING 1)
         SELECT count(*) FROM gone",
    )
    .bind(tenant)
    .bind(scope.cutoff)
    .bind(scope.purpose_key)
    .bind(scope.held)
    .bind(scope.limit)
    .fetch_one(tx)
    .await
}
