//! Tenant privacy policies: versioned rows of JSON in `privacy_policies` (one per
//! version, the newest is current), their validation, and the mapping to the engine.

mod doc;
mod pii;
mod validate;

use sqlx::{PgConnection, PgExecutor};
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::{Actor, Operator};
use veil_proto::gateway::v1::PrivacyPolicy;

pub use doc::{DocError, from_json, to_json};
pub use pii::to_pii_policy;
pub use validate::{changed_fields, validate};

/// A tenant's policy as stored; version 0 is the built-in default (nothing stored yet).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    /// 1, 2, ... for stored versions; 0 for the default.
    pub version: i64,
    /// The policy, with `version`, `updated_at` and `updated_by` filled in.
    pub proto: PrivacyPolicy,
}

/// The policy of a tenant that never set one: every built-in type, pseudonymized
/// placeholders, originals kept in the vault (so restore and access requests work) and
/// privacy commands detected but confirmed by the bot before acting.
pub fn default_policy() -> PrivacyPolicy {
    PrivacyPolicy {
        version: 0,
        default_operator: Operator::Pseudonymize as i32,
        score_threshold: veil_pii::DEFAULT_THRESHOLD,
        store_raw_in_vault: true,
        detect_privacy_commands: true,
        ..Default::default()
    }
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    version: i64,
    policy: serde_json::Value,
    updated_by: serde_json::Value,
    created_at: time::OffsetDateTime,
}

fn actor_to_json(actor: &Actor) -> serde_json::Value {
    serde_json::json!({
        "kind": actor.kind,
        "principal_id": actor.principal_id,
        "roles": actor.roles,
        "tenant_id": actor.tenant_id,
    })
}

fn actor_from_json(value: &serde_json::Value) -> Actor {
    let int = |key: &str| {
        value[key]
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0)
    };
    Actor {
        kind: int("kind"),
        principal_id: value["principal_id"].as_str().unwrap_or("").to_string(),
        roles: value["roles"]
            .as_array()
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.as_i64().and_then(|v| i32::try_from(v).ok()))
                    .collect()
            })
            .unwrap_or_default(),
        tenant_id: value["tenant_id"].as_str().unwrap_or("").to_string(),
    }
}

impl TryFrom<PolicyRow> for StoredPolicy {
    type Error = ServiceError;

    fn try_from(row: PolicyRow) -> Result<Self, ServiceError> {
        let mut proto = from_json(row.policy).map_err(ServiceError::internal)?;
        proto.version = row.version;
        proto.updated_at = Some(timestamp(row.created_at));
        proto.updated_by = Some(actor_from_json(&row.updated_by));
        Ok(StoredPolicy {
            version: row.version,
            proto,
        })
    }
}

/// Version `version` of the tenant's policy (0: the current one, or the default).
pub async fn policy_version(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    version: i64,
) -> Result<Option<StoredPolicy>, ServiceError> {
    stored(policy_row(db, tenant, version).await?, version)
}

async fn policy_row(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    version: i64,
) -> sqlx::Result<Option<PolicyRow>> {
    sqlx::query_as(
        "SELECT version, policy, updated_by, created_at FROM privacy_policies
         WHERE tenant_id = $1 AND ($2 = 0 OR version = $2)
         ORDER BY version DESC LIMIT 1",
    )
    .bind(tenant.as_uuid())
    .bind(version)
    .fetch_optional(db)
    .await
}

/// The policy of a read row; the default when no current one was set.
fn stored(row: Option<PolicyRow>, version: i64) -> Result<Option<StoredPolicy>, ServiceError> {
    match row {
        Some(row) => Ok(Some(row.try_into()?)),
        None if version == 0 => Ok(Some(StoredPolicy {
            version: 0,
            proto: default_policy(),
        })),
        None => Ok(None),
    }
}

/// The tenant's current policy (the default until one is set); for the message
/// pipeline, so read again when the first read found its connection lost.
pub async fn current_policy(
    pool: &sqlx::PgPool,
    tenant: TenantId,
) -> Result<StoredPolicy, ServiceError> {
    let row = veil_core::db::retry_if_lost(|| policy_row(pool, tenant, 0)).await?;
    stored(row, 0)?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("current policy query empty")))
}

/// Why a new version was not stored.
#[derive(Debug)]
pub enum SetOutcome {
    /// Stored: the previous and the new policy.
    Stored {
        /// What was current before (version 0 for the default).
        previous: Box<StoredPolicy>,
        /// The new version.
        current: Box<StoredPolicy>,
    },
    /// `expected_version` was given and is not the current version.
    VersionMismatch {
        /// The current version.
        current: i64,
    },
}

/// Stores `policy` as the tenant's next version. Locks the tenant row, so concurrent
/// writers of one tenant queue up instead of colliding on the version number.
pub async fn store_next(
    conn: &mut PgConnection,
    tenant: TenantId,
    policy: &PrivacyPolicy,
    expected_version: i64,
    actor: &Actor,
) -> Result<SetOutcome, ServiceError> {
    sqlx::query("SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE")
        .bind(tenant.as_uuid())
        .execute(&mut *conn)
        .await?;
    let previous = policy_version(&mut *conn, tenant, 0)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("current policy query empty")))?;
    if expected_version != 0 && expected_version != previous.version {
        return Ok(SetOutcome::VersionMismatch {
            current: previous.version,
        });
    }
    let row: PolicyRow = sqlx::query_as(
        "INSERT INTO privacy_policies (tenant_id, version, policy, updated_by)
         VALUES ($1, $2, $3, $4)
         RETURNING version, policy, updated_by, created_at",
    )
    .bind(tenant.as_uuid())
    .bind(previous.version + 1)
    .bind(to_json(policy))
    .bind(actor_to_json(actor))
    .fetch_one(&mut *conn)
    .await?;
    Ok(SetOutcome::Stored {
        previous: Box::new(previous),
        current: Box::new(row.try_into()?),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_default_policy_is_valid_and_compiles() {
        validate(&default_policy()).unwrap();
        let engine = to_pii_policy(&default_policy()).unwrap();
        assert_eq!(
            engine.spec().default_operator,
            veil_pii::Operator::Pseudonymize
        );
    }

    #[test]
    fn actors_round_trip_through_json() {
        let actor = Actor {
            kind: 1,
            principal_id: "abc".into(),
            roles: vec![5, 6],
            tenant_id: "t".into(),
        };
        assert_eq!(actor_from_json(&actor_to_json(&actor)), actor);
    }
}
