//! Policies in the retention schema.

use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::Actor;
use veil_proto::retention::v1::RetentionPolicy;

use super::rules::PolicySpec;

/// A stored policy.
#[derive(Debug, Clone, FromRow)]
pub struct PolicyRow {
    pub policy_id: Uuid,
    pub category: i32,
    pub purpose_key: String,
    pub period_secs: i64,
    pub action: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub actor_kind: i32,
    pub actor_id: String,
    pub actor_roles: Vec<i32>,
}

impl PolicyRow {
    /// The proto form.
    pub fn to_proto(&self, tenant: TenantId) -> RetentionPolicy {
        RetentionPolicy {
            policy_id: self.policy_id.to_string(),
            category: self.category,
            purpose_key: self.purpose_key.clone(),
            period: Some(prost_types::Duration {
                seconds: self.period_secs,
                nanos: 0,
            }),
            action: self.action,
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
            updated_by: Some(Actor {
                kind: self.actor_kind,
                principal_id: self.actor_id.clone(),
                roles: self.actor_roles.clone(),
                tenant_id: tenant.to_string(),
            }),
        }
    }
}

const COLUMNS: &str = "policy_id, category, purpose_key, period_secs, action, created_at, \
                       updated_at, actor_kind, actor_id, actor_roles";

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Changed,
    Unchanged,
}

/// Creates or replaces the policy of (tenant, category, purpose_key); an identical
/// policy is left as it is (no new `updated_at`, no event).
pub async fn upsert(
    conn: &mut PgConnection,
    tenant: TenantId,
    spec: &PolicySpec,
    actor: &Actor,
) -> Result<(PolicyRow, Upserted), ServiceError> {
    let written: Option<(Uuid, bool)> = sqlx::query_as(
        "INSERT INTO policies (policy_id, tenant_id, category, purpose_key, period_secs, action,
                               actor_kind, actor_id, actor_roles)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, category, purpose_key) DO UPDATE
             SET period_secs = EXCLUDED.period_secs, action = EXCLUDED.action,
                 updated_at = now(), actor_kind = EXCLUDED.actor_kind,
                 actor_id = EXCLUDED.actor_id, actor_roles = EXCLUDED.actor_roles
             WHERE policies.period_secs <> EXCLUDED.period_secs
                OR policies.action <> EXCLUDED.action
         RETURNING policy_id, (xmax = 0) AS created",
    )
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(spec.category as i32)
    .bind(&spec.purpose_key)
    .bind(spec.period_secs)
    .bind(spec.action as i32)
    .bind(actor.kind)
    .bind(&actor.principal_id)
    .bind(&actor.roles)
    .fetch_optional(&mut *conn)
    .await?;
    let outcome = match written {
        Some((_, true)) => Upserted::Created,
        Some((_, false)) => Upserted::Changed,
        None => Upserted::Unchanged,
    };
    let row: PolicyRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies
         WHERE tenant_id = $1 AND category = $2 AND purpose_key = $3"
    )))
    .bind(tenant.as_uuid())
    .bind(spec.category as i32)
    .bind(&spec.purpose_key)
    .fetch_one(&mut *conn)
    .await?;
    Ok((row, outcome))
}

/// One page of policies ordered by (category, purpose_key), after `after` if given.
pub async fn list(
    conn: &mut PgConnection,
    tenant: TenantId,
    category: Option<i32>,
    after: Option<(i32, &str)>,
    limit: i64,
) -> Result<Vec<PolicyRow>, ServiceError> {
    let (after_category, after_purpose) = after.unwrap_or((-1, ""));
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies
         WHERE tenant_id = $1 AND ($2::int IS NULL OR category = $2)
           AND (category, purpose_key) > ($3, $4)
         ORDER BY category, purpose_key
         LIMIT $5"
    )))
    .bind(tenant.as_uuid())
    .bind(category)
    .bind(after_category)
    .bind(after_purpose)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Every policy of a tenant, for a sweep.
pub async fn all(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Vec<PolicyRow>, ServiceError> {
    list(conn, tenant, None, None, i64::MAX).await
}

/// Deletes a policy; returns it as it was.
pub async fn delete(
    conn: &mut PgConnection,
    tenant: TenantId,
    policy_id: Uuid,
) -> Result<Option<PolicyRow>, ServiceError> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM policies WHERE tenant_id = $1 AND policy_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(tenant.as_uuid())
    .bind(policy_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row)
}

/// Tenants with at least one policy: the scheduled sweeper's work list.
pub async fn tenants_with_policies(conn: &mut PgConnection) -> Result<Vec<Uuid>, ServiceError> {
    let tenants = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM policies ORDER BY tenant_id")
        .fetch_all(&mut *conn)
        .await?;
    Ok(tenants)
}
