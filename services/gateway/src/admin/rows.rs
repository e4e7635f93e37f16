//! SQL of the admin API's reads and the revocation, and the rows → proto mapping.

use sqlx::PgExecutor;
use uuid::Uuid;
use veil_core::convert::{role_to_proto, timestamp};
use veil_core::types::Role;
use veil_proto::gateway::v1::{ApiKey, Tenant, TenantState};

/// A tenant with its state.
#[derive(Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub state: i32,
    pub default_jurisdiction: i32,
    pub default_locale: String,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Tenant {
            tenant_id: row.tenant_id.to_string(),
            name: row.name,
            slug: row.slug,
            state: TenantState::try_from(row.state).unwrap_or_default() as i32,
            default_jurisdiction: row.default_jurisdiction,
            default_locale: row.default_locale,
            created_at: Some(timestamp(row.created_at)),
            updated_at: Some(timestamp(row.updated_at)),
        }
    }
}

// Macros rather than consts: sqlx only takes static SQL, which `concat!` keeps.
macro_rules! tenant_columns {
    () => {
        "tenant_id, name, slug, state, default_jurisdiction, default_locale, created_at, updated_at"
    };
}

/// One tenant.
pub async fn tenant(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<Option<TenantRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        tenant_columns!(),
        " FROM tenants WHERE tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_optional(db)
    .await
}

/// Up to `limit` tenants after `after` in id (= creation, UUIDv7) order.
pub async fn tenants(
    db: impl PgExecutor<'_>,
    after: Option<Uuid>,
    slug_prefix: &str,
    include_suspended: bool,
    limit: i64,
) -> sqlx::Result<Vec<TenantRow>> {
    sqlx::query_as(concat!(
        "SELECT ",
        tenant_columns!(),
        " FROM tenants
         WHERE ($1::uuid IS NULL OR tenant_id > $1)
           AND starts_with(slug, $2)
           AND ($3 OR state <> 2)
         ORDER BY tenant_id LIMIT $4"
    ))
    .bind(after)
    .bind(slug_prefix)
    .bind(include_suspended)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// An API key's metadata.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyMeta {
    pub key_id: String,
    pub tenant_id: Uuid,
    pub name: String,
    pub roles: Vec<String>,
    pub created_at: time::OffsetDateTime,
    pub expires_at: Option<time::OffsetDateTime>,
    pub revoked_at: Option<time::OffsetDateTime>,
}

impl From<KeyMeta> for ApiKey {
    fn from(row: KeyMeta) -> Self {
        ApiKey {
            prefix: format!("veil_{}", row.key_id),
            key_id: row.key_id,
            tenant_id: row.tenant_id.to_string(),
            name: row.name,
            roles: row
                .roles
                .iter()
                .filter_map(|r| r.parse::<Role>().ok())
                .map(|r| role_to_proto(r) as i32)
                .collect(),
            created_at: Some(timestamp(row.created_at)),
            expires_at: row.expires_at.map(timestamp),
            revoked_at: row.revoked_at.map(timestamp),
            ..Default::default()
        }
    }
}

macro_rules! key_columns {
    () => {
        "key_id, tenant_id, name, roles, created_at, expires_at, revoked_at"
    };
}

/// Up to `limit` keys of a tenant after the cursor `(created_at, key_id)`.
pub async fn keys(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    after: Option<(time::OffsetDateTime, String)>,
    include_revoked: bool,
    limit: i64,
) -> sqlx::Result<Vec<KeyMeta>> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys
         WHERE tenant_id = $1 AND ($2 OR revoked_at IS NULL)
           AND ($3::timestamptz IS NULL OR (created_at, key_id) > ($3, $4))
         ORDER BY created_at, key_id LIMIT $5"
    ))
    .bind(tenant)
    .bind(include_revoked)
    .bind(after_at)
    .bind(after_id.unwrap_or_default())
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Revokes a key of `tenant`; `None` if the tenant has no such key. `Ok((meta, true))`
/// when this call revoked it, `false` when it was revoked already.
pub async fn revoke(
    db: &mut sqlx::PgConnection,
    tenant: Uuid,
    key_id: &str,
    reason: &str,
) -> sqlx::Result<Option<(KeyMeta, bool)>> {
    let revoked: Option<KeyMeta> = sqlx::query_as(concat!(
        "UPDATE api_keys SET revoked_at = now(), revoke_reason = $3
         WHERE tenant_id = $1 AND key_id = $2 AND revoked_at IS NULL
         RETURNING ",
        key_columns!()
    ))
    .bind(tenant)
    .bind(key_id)
    .bind(reason)
    .fetch_optional(&mut *db)
    .await?;
    if let Some(meta) = revoked {
        return Ok(Some((meta, true)));
    }
    let existing: Option<KeyMeta> = sqlx::query_as(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE tenant_id = $1 AND key_id = $2"
    ))
    .bind(tenant)
    .bind(key_id)
    .fetch_optional(&mut *db)
    .await?;
    Ok(existing.map(|meta| (meta, false)))
}
