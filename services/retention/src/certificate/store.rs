//! `deletion_certificates` rows.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// One stored certificate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateRow {
    pub certificate_id: Uuid,
    pub tenant_id: Uuid,
    pub request_id: Uuid,
    pub subject_ref: String,
    pub issued_at: OffsetDateTime,
    pub certificate_json: String,
    pub jws: String,
    pub key_id: String,
    pub public_key: Vec<u8>,
    pub sha256: String,
    pub anchor_event_id: Uuid,
    pub audit_leaf_index: Option<i64>,
}

const COLUMNS: &str = "certificate_id, tenant_id, request_id, subject_ref, issued_at, \
    certificate_json, jws, key_id, public_key, sha256, anchor_event_id, audit_leaf_index";

/// Stores a new certificate; false when the request already has one (a redelivered
/// completion), in which case nothing is written.
pub async fn insert(conn: &mut PgConnection, row: &CertificateRow) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO deletion_certificates (certificate_id, tenant_id, request_id, subject_ref,
             issued_at, certificate_json, jws, key_id, public_key, sha256, anchor_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (tenant_id, request_id) DO NOTHING",
    )
    .bind(row.certificate_id)
    .bind(row.tenant_id)
    .bind(row.request_id)
    .bind(&row.subject_ref)
    .bind(row.issued_at)
    .bind(&row.certificate_json)
    .bind(&row.jws)
    .bind(&row.key_id)
    .bind(&row.public_key)
    .bind(&row.sha256)
    .bind(row.anchor_event_id)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The certificate of a request.
pub async fn by_request(
    conn: &mut PgConnection,
    tenant: Uuid,
    request_id: Uuid,
) -> sqlx::Result<Option<CertificateRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deletion_certificates WHERE tenant_id = $1 AND request_id = $2"
    )))
    .bind(tenant)
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Remembers where audit appended the anchoring event (it never moves).
pub async fn set_leaf_index(
    conn: &mut PgConnection,
    certificate_id: Uuid,
    leaf_index: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE deletion_certificates SET audit_leaf_index = $2
         WHERE certificate_id = $1 AND audit_leaf_index IS NULL",
    )
    .bind(certificate_id)
    .bind(leaf_index)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
