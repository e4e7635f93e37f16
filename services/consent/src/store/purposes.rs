//! Purposes, recipients and the tenant's controller settings.

use sqlx::PgExecutor;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::PurposeDef;

const PURPOSE_COLUMNS: &str = "key, name, description, legal_basis, data_categories, \
     retention_secs, consent_required, defaults, withdrawal_method, recipient_keys, \
     opted_out_by, consent_validity_secs, archived, version, created_at, updated_at";

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The key was new.
    Created,
    /// An existing purpose changed; its version was bumped.
    Changed,
    /// The stored purpose already had these values.
    Unchanged,
}

/// What a tenant defines a bounded number of, by key.
#[derive(Debug, Clone, Copy)]
pub enum Bounded {
    Purposes,
    Recipients,
}

/// Whether the tenant may write a row of `kind` under `key`: it exists already, or the
/// tenant has fewer than `limit` of them.
pub async fn fits(
    db: impl PgExecutor<'_>,
    kind: Bounded,
    tenant: Uuid,
    key: &str,
    limit: i64,
) -> sqlx::Result<bool> {
    let table = match kind {
        Bounded::Purposes => "purposes",
        Bounded::Recipients => "recipients",
    };
    let (count, exists): (i64, bool) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), coalesce(bool_or(key = $2), false) FROM {table} WHERE tenant_id = $1"
    )))
    .bind(tenant)
    .bind(key)
    .fetch_one(db)
    .await?;
    Ok(exists || count < limit)
}

/// Inserts or updates a purpose; only a real change bumps the version.
pub async fn upsert_purpose(
    db: &mut sqlx::PgConnection,
    tenant: Uuid,
    p: &PurposeDef,
) -> sqlx::Result<(PurposeDef, Upserted)> {
    let written: Option<(bool,)> = sqlx::query_as(
        "INSERT INTO purposes (tenant_id, key, name, description, legal_basis, data_categories,
             retention_secs, consent_required, defaults, withdrawal_method, recipient_keys,
             opted_out_by, consent_validity_secs, archived)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (tenant_id, key) DO UPDATE SET
             name = EXCLUDED.name, description = EXCLUDED.description,
             legal_basis = EXCLUDED.legal_basis, data_categories = EXCLUDED.data_categories,
             retention_secs = EXCLUDED.retention_secs,
             consent_required = EXCLUDED.consent_required, defaults = EXCLUDED.defaults,
             withdrawal_method = EXCLUDED.withdrawal_method,
             recipient_keys = EXCLUDED.recipient_keys, opted_out_by = EXCLUDED.opted_out_by,
             consent_validity_secs = EXCLUDED.consent_validity_secs,
             archived = EXCLUDED.archived,
             version = purposes.version + 1, updated_at = now()
         WHERE (purposes.name, purposes.description, purposes.legal_basis,
                purposes.data_categories, purposes.retention_secs, purposes.consent_required,
                purposes.defaults, purposes.withdrawal_method, purposes.recipient_keys,
                purposes.opted_out_by, purposes.consent_validity_secs, purposes.archived)
               IS DISTINCT FROM
               (EXCLUDED.name, EXCLUDED.description, EXCLUDED.legal_basis,
                EXCLUDED.data_categories, EXCLUDED.retention_secs, EXCLUDED.consent_required,
                EXCLUDED.defaults, EXCLUDED.withdrawal_method, EXCLUDED.recipient_keys,
                EXCLUDED.opted_out_by, EXCLUDED.consent_validity_secs, EXCLUDED.archived)
         RETURNING (xmax = 0)",
    )
    .bind(tenant)
    .bind(&p.key)
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.legal_basis)
    .bind(&p.data_categories)
    .bind(p.retention_secs)
    .bind(p.consent_required)
    .bind(Json(&p.defaults))
    .bind(&p.withdrawal_method)
    .bind(&p.recipient_keys)
    .bind(&p.opted_out_by)
    .bind(p.consent_validity_secs)
    .bind(p.archived)
    .fetch_optional(&mut *db)
    .await?;
    let outcome = match written {
        Some((true,)) => Upserted::Created,
        Some((false,)) => Upserted::Changed,
        None => Upserted::Unchanged,
    };
    let stored = purposes_by_key(&mut *db, tenant, std::slice::from_ref(&p.key))
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok((stored, outcome))
}

/// Writes the built-in `model_training` purpose unless the tenant has one, so records can
/// reference it.
pub async fn ensure_builtin(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<()> {
    let p = PurposeDef::builtin_model_training();
    sqlx::query(
        "INSERT INTO purposes (tenant_id, key, name, description, legal_basis, data_categories,
             consent_required, withdrawal_method, opted_out_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, key) DO NOTHING",
    )
    .bind(tenant)
    .bind(&p.key)
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.legal_basis)
    .bind(&p.data_categories)
    .bind(p.consent_required)
    .bind(&p.withdrawal_method)
    .bind(&p.opted_out_by)
    .execute(db)
    .await?;
    Ok(())
}

/// Purposes of `tenant` with the given keys (stored ones only).
pub async fn purposes_by_key(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    keys: &[String],
) -> sqlx::Result<Vec<PurposeDef>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PURPOSE_COLUMNS} FROM purposes WHERE tenant_id = $1 AND key = ANY($2)"
    )))
    .bind(tenant)
    .bind(keys)
    .fetch_all(db)
    .await
}

/// Every stored purpose of `tenant`, by key.
pub async fn all_purposes(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<Vec<PurposeDef>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PURPOSE_COLUMNS} FROM purposes WHERE tenant_id = $1 ORDER BY key"
    )))
    .bind(tenant)
    .fetch_all(db)
    .await
}

/// A recipient as stored; `purpose_keys` is derived from the purposes naming it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecipientRow {
    pub key: String,
    pub name: String,
    pub kind: i32,
    pub country: String,
    pub transfer_mechanism: String,
    pub description: String,
    pub url: String,
    pub data_sharing_terms: String,
    pub updated_at: OffsetDateTime,
    pub purpose_keys: Vec<String>,
}

/// Inserts or updates a recipient; returns whether it was new.
pub async fn upsert_recipient(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    r: &RecipientRow,
) -> sqlx::Result<bool> {
    let (created,): (bool,) = sqlx::query_as(
        "INSERT INTO recipients (tenant_id, key, name, kind, country, transfer_mechanism,
             description, url, data_sharing_terms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, key) DO UPDATE SET
             name = EXCLUDED.name, kind = EXCLUDED.kind, country = EXCLUDED.country,
             transfer_mechanism = EXCLUDED.transfer_mechanism,
             description = EXCLUDED.description, url = EXCLUDED.url,
             data_sharing_terms = EXCLUDED.data_sharing_terms, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(tenant)
    .bind(&r.key)
    .bind(&r.name)
    .bind(r.kind)
    .bind(&r.country)
    .bind(&r.transfer_mechanism)
    .bind(&r.description)
    .bind(&r.url)
    .bind(&r.data_sharing_terms)
    .fetch_one(db)
    .await?;
    Ok(created)
}

/// Recipients of `tenant` with keys after `after`, by key, at most `limit`.
pub async fn list_recipients(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    keys: Option<&[String]>,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<RecipientRow>> {
    sqlx::query_as(
        "SELECT r.key, r.name, r.kind, r.country, r.transfer_mechanism, r.description, r.url,
                r.data_sharing_terms, r.updated_at,
                COALESCE(ARRAY(SELECT p.key FROM purposes p
                               WHERE p.tenant_id = r.tenant_id AND r.key = ANY(p.recipient_keys)
                               ORDER BY p.key), '{}') AS purpose_keys
         FROM recipients r
         WHERE r.tenant_id = $1 AND ($2::text[] IS NULL OR r.key = ANY($2)) AND r.key > $3
         ORDER BY r.key LIMIT $4",
    )
    .bind(tenant)
    .bind(keys)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Keys among `keys` that are not recipients of `tenant`.
pub async fn missing_recipients(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    keys: &[String],
) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT k FROM unnest($2::text[]) AS k
         WHERE NOT EXISTS (SELECT 1 FROM recipients WHERE tenant_id = $1 AND key = k)",
    )
    .bind(tenant)
    .bind(keys)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

/// The tenant's controller settings.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct ControllerRow {
    pub name: String,
    pub contact: String,
    pub default_locale: String,
    pub default_jurisdiction: i32,
}

/// Reads the controller settings; defaults when never set.
pub async fn controller(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<ControllerRow> {
    Ok(sqlx::query_as(
        "SELECT name, contact, default_locale, default_jurisdiction
         FROM controllers WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(db)
    .await?
    .unwrap_or_default())
}

/// Writes the controller settings.
pub async fn set_controller(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    c: &ControllerRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO controllers (tenant_id, name, contact, default_locale, default_jurisdiction)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name,
             contact = EXCLUDED.contact, default_locale = EXCLUDED.default_locale,
             default_jurisdiction = EXCLUDED.default_jurisdiction, updated_at = now()",
    )
    .bind(tenant)
    .bind(&c.name)
    .bind(&c.contact)
    .bind(&c.default_locale)
    .bind(c.default_jurisdiction)
    .execute(db)
    .await?;
    Ok(())
}
