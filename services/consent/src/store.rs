//! SQL of the consent schema.

use sqlx::PgExecutor;
use uuid::Uuid;

/// A purpose row.
#[derive(Debug, sqlx::FromRow)]
pub struct PurposeRow {
    pub key: String,
    pub name: String,
    pub description: String,
    pub legal_basis: i32,
    pub consent_required: bool,
    pub version: i64,
}

/// Inserts or updates a purpose; returns the stored row and whether it was new.
pub async fn upsert_purpose(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    purpose: &PurposeRow,
) -> sqlx::Result<(PurposeRow, bool)> {
    let row: (String, String, String, i32, bool, i64, bool) = sqlx::query_as(
        "INSERT INTO purposes (tenant_id, key, name, description, legal_basis, consent_required)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, key) DO UPDATE SET
             name = EXCLUDED.name, description = EXCLUDED.description,
             legal_basis = EXCLUDED.legal_basis, consent_required = EXCLUDED.consent_required,
             version = purposes.version + 1, updated_at = now()
         RETURNING key, name, description, legal_basis, consent_required, version,
                   (xmax = 0) AS created",
    )
    .bind(tenant)
    .bind(&purpose.key)
    .bind(&purpose.name)
    .bind(&purpose.description)
    .bind(purpose.legal_basis)
    .bind(purpose.consent_required)
    .fetch_one(db)
    .await?;
    Ok((
        PurposeRow {
            key: row.0,
            name: row.1,
            description: row.2,
            legal_basis: row.3,
            consent_required: row.4,
            version: row.5,
        },
        row.6,
    ))
}

/// Purposes of `tenant` with the given keys.
pub async fn purposes_by_key(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    keys: &[String],
) -> sqlx::Result<Vec<PurposeRow>> {
    sqlx::query_as(
        "SELECT key, name, description, legal_basis, consent_required, version
         FROM purposes WHERE tenant_id = $1 AND key = ANY($2)",
    )
    .bind(tenant)
    .bind(keys)
    .fetch_all(db)
    .await
}

/// The latest consent event per purpose for one subject: (purpose key, record id, state).
pub async fn latest_states(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
    keys: &[String],
) -> sqlx::Result<Vec<(String, Uuid, i32)>> {
    sqlx::query_as(
        "SELECT DISTINCT ON (purpose_key) purpose_key, id, state
         FROM consent_events
         WHERE tenant_id = $1 AND subject_ref = $2 AND purpose_key = ANY($3)
         ORDER BY purpose_key, created_at DESC, id DESC",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(keys)
    .fetch_all(db)
    .await
}
