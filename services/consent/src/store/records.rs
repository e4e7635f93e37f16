//! Consent records (append-only), receipts and a subject's current state.

use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{CurrentRecord, SignalState, SubjectState};

const RECORD_COLUMNS: &str = "id, subject_ref, purpose_key, state, event_type, purpose_version, \
     legal_basis, pii_categories, recipient_keys, notice_id, notice_version, notice_sha256, \
     language, collection_method, retention_secs, jurisdiction, withdrawal_method, event_time, \
     valid_from, expires_at, receipt_id, supersedes_record_id, recorded_by, evidence, \
     controller_name, controller_contact, preference_conflict, erased_at, seq";

/// One consent record with its ISO/IEC TS 27560 fields.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecordRow {
    pub id: Uuid,
    pub subject_ref: String,
    pub purpose_key: String,
    pub state: i32,
    pub event_type: i32,
    pub purpose_version: i64,
    pub legal_basis: i32,
    pub pii_categories: Vec<String>,
    pub recipient_keys: Vec<String>,
    pub notice_id: Option<Uuid>,
    pub notice_version: i32,
    pub notice_sha256: String,
    pub language: String,
    pub collection_method: i32,
    pub retention_secs: Option<i64>,
    pub jurisdiction: i32,
    pub withdrawal_method: String,
    pub event_time: OffsetDateTime,
    pub valid_from: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub receipt_id: Option<Uuid>,
    pub supersedes_record_id: Option<Uuid>,
    pub recorded_by: Option<Json<serde_json::Value>>,
    pub evidence: Option<Json<serde_json::Value>>,
    pub controller_name: String,
    pub controller_contact: String,
    pub preference_conflict: bool,
    pub erased_at: Option<OffsetDateTime>,
    /// Insertion order; 0 before insertion.
    pub seq: i64,
}

/// Serializes writes for one subject so that "the latest record" is well defined.
pub async fn lock_subject(
    db: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("consent.subject:{tenant}:{subject_ref}"))
        .execute(db)
        .await?;
    Ok(())
}

/// Appends one record.
pub async fn insert(db: impl PgExecutor<'_>, tenant: Uuid, r: &RecordRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO consent_events (id, tenant_id, subject_ref, purpose_key, state, event_type,
             purpose_version, legal_basis, pii_categories, recipient_keys, notice_id,
             notice_version, notice_sha256, language, collection_method, retention_secs,
             jurisdiction, withdrawal_method, event_time, valid_from, expires_at, receipt_id,
             supersedes_record_id, recorded_by, evidence, controller_name, controller_contact,
             preference_conflict, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $19)",
    )
    .bind(r.id)
    .bind(tenant)
    .bind(&r.subject_ref)
    .bind(&r.purpose_key)
    .bind(r.state)
    .bind(r.event_type)
    .bind(r.purpose_version)
    .bind(r.legal_basis)
    .bind(&r.pii_categories)
    .bind(&r.recipient_keys)
    .bind(r.notice_id)
    .bind(r.notice_version)
    .bind(&r.notice_sha256)
    .bind(&r.language)
    .bind(r.collection_method)
    .bind(r.retention_secs)
    .bind(r.jurisdiction)
    .bind(&r.withdrawal_method)
    .bind(r.event_time)
    .bind(r.valid_from)
    .bind(r.expires_at)
    .bind(r.receipt_id)
    .bind(r.supersedes_record_id)
    .bind(&r.recorded_by)
    .bind(&r.evidence)
    .bind(&r.controller_name)
    .bind(&r.controller_contact)
    .bind(r.preference_conflict)
    .execute(db)
    .await?;
    Ok(())
}

/// What `CheckConsent` needs about a subject: the latest record per purpose and the
/// latest value of each preference signal.
pub async fn subject_state(
    db: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<SubjectState> {
    let records: Vec<(
        Uuid,
        String,
        i32,
        OffsetDateTime,
        Option<OffsetDateTime>,
        i32,
    )> = sqlx::query_as(
        "SELECT DISTINCT ON (purpose_key)
                    id, purpose_key, state, event_time, expires_at, notice_version
             FROM consent_events WHERE tenant_id = $1 AND subject_ref = $2
             ORDER BY purpose_key, seq DESC",
    )
    .bind(tenant)
    .bind(subject_ref)
    .fetch_all(&mut *db)
    .await?;
    let signals: Vec<(i32, bool, OffsetDateTime)> = sqlx::query_as(
        "SELECT DISTINCT ON (signal) signal, enabled, observed_at
         FROM preference_signals WHERE tenant_id = $1 AND subject_ref = $2
         ORDER BY signal, observed_at DESC, seq DESC",
    )
    .bind(tenant)
    .bind(subject_ref)
    .fetch_all(&mut *db)
    .await?;
    Ok(SubjectState {
        records: records
            .into_iter()
            .map(
                |(record_id, purpose_key, state, event_time, expires_at, notice_version)| {
                    CurrentRecord {
                        record_id,
                        purpose_key,
                        state,
                        event_time,
                        expires_at,
                        notice_version,
                    }
                },
            )
            .collect(),
        signals: signals
            .into_iter()
            .map(|(signal, enabled, observed_at)| SignalState {
                signal,
                enabled,
                observed_at,
            })
            .collect(),
    })
}

/// Records of `tenant` with the given ids, each with whether it is still the latest for
/// its subject and purpose.
pub async fn by_ids(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<(RecordRow, bool)>> {
    let rows: Vec<RecordWithLatest> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS}, NOT EXISTS (
             SELECT 1 FROM consent_events n WHERE n.tenant_id = e.tenant_id
               AND n.subject_ref = e.subject_ref AND n.purpose_key = e.purpose_key
               AND n.seq > e.seq) AS is_latest
         FROM consent_events e WHERE tenant_id = $1 AND id = ANY($2) ORDER BY seq"
    )))
    .bind(tenant)
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.record, r.is_latest)).collect())
}

#[derive(sqlx::FromRow)]
struct RecordWithLatest {
    #[sqlx(flatten)]
    record: RecordRow,
    is_latest: bool,
}

/// Records created by one receipt, in purpose order.
pub async fn by_receipt(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    receipt_id: Uuid,
) -> sqlx::Result<Vec<RecordRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS} FROM consent_events
         WHERE tenant_id = $1 AND receipt_id = $2 ORDER BY seq"
    )))
    .bind(tenant)
    .bind(receipt_id)
    .fetch_all(db)
    .await
}

/// A subject's records newest first, optionally for one purpose, with `seq` below
/// `before` (a page cursor), at most `limit`.
pub async fn history(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
    purpose_key: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<RecordRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS} FROM consent_events
         WHERE tenant_id = $1 AND subject_ref = $2 AND ($3::text IS NULL OR purpose_key = $3)
           AND ($4::bigint IS NULL OR seq < $4)
         ORDER BY seq DESC LIMIT $5"
    )))
    .bind(tenant)
    .bind(subject_ref)
    .bind(purpose_key)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A stored receipt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReceiptRow {
    pub id: Uuid,
    pub subject_ref: String,
    pub key_id: String,
    pub jws: Option<String>,
    pub jws_sha256: String,
    pub issued_at: OffsetDateTime,
    pub idempotency_key: Option<String>,
    pub request_sha256: Option<String>,
    pub erased_at: Option<OffsetDateTime>,
}

/// Stores a receipt (before the records that name it).
pub async fn insert_receipt(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    r: &ReceiptRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO receipts (id, tenant_id, subject_ref, key_id, jws, jws_sha256, issued_at,
             idempotency_key, request_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.id)
    .bind(tenant)
    .bind(&r.subject_ref)
    .bind(&r.key_id)
    .bind(&r.jws)
    .bind(&r.jws_sha256)
    .bind(r.issued_at)
    .bind(&r.idempotency_key)
    .bind(&r.request_sha256)
    .execute(db)
    .await?;
    Ok(())
}

/// The receipt an earlier call with `idempotency_key` produced.
pub async fn receipt_by_idempotency(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    idempotency_key: &str,
) -> sqlx::Result<Option<ReceiptRow>> {
    sqlx::query_as(
        "SELECT id, subject_ref, key_id, jws, jws_sha256, issued_at, idempotency_key,
                request_sha256, erased_at
         FROM receipts WHERE tenant_id = $1 AND idempotency_key = $2",
    )
    .bind(tenant)
    .bind(idempotency_key)
    .fetch_optional(db)
    .await
}

/// One receipt of `tenant`.
pub async fn receipt_by_id(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<ReceiptRow>> {
    sqlx::query_as(
        "SELECT id, subject_ref, key_id, jws, jws_sha256, issued_at, idempotency_key,
                request_sha256, erased_at
         FROM receipts WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Every receipt of a subject, oldest first (exports).
pub async fn receipts_of(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
) -> sqlx::Result<Vec<ReceiptRow>> {
    sqlx::query_as(
        "SELECT id, subject_ref, key_id, jws, jws_sha256, issued_at, idempotency_key,
                request_sha256, erased_at
         FROM receipts WHERE tenant_id = $1 AND subject_ref = $2 ORDER BY issued_at, id",
    )
    .bind(tenant)
    .bind(subject_ref)
    .fetch_all(db)
    .await
}
