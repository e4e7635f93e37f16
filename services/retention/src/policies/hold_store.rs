//! Legal holds in the retention schema (the active-hold checks live in [`crate::holds`]).

use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::Actor;
use veil_proto::retention::v1::LegalHold;

use crate::holds::ACTIVE;

/// A stored hold.
#[derive(Debug, Clone, FromRow)]
pub struct HoldRow {
    pub hold_id: Uuid,
    pub subject_ref: Option<String>,
    pub reason: String,
    pub case_reference: String,
    pub placed_at: OffsetDateTime,
    pub placed_by_kind: i32,
    pub placed_by_id: String,
    pub placed_by_roles: Vec<i32>,
    pub expires_at: Option<OffsetDateTime>,
    pub released_at: Option<OffsetDateTime>,
    pub released_by_kind: i32,
    pub released_by_id: String,
    pub released_by_roles: Vec<i32>,
    pub release_reason: String,
}

const COLUMNS: &str = "hold_id, subject_ref, reason, case_reference, placed_at, placed_by_kind, \
                       placed_by_id, placed_by_roles, expires_at, released_at, released_by_kind, \
                       released_by_id, released_by_roles, release_reason";

impl HoldRow {
    /// The subject ref of a subject hold; `None` for a tenant-wide one.
    pub fn subject(&self) -> Option<SubjectRef> {
        self.subject_ref.as_deref().and_then(|r| r.parse().ok())
    }

    /// The proto form.
    pub fn to_proto(&self, tenant: TenantId) -> LegalHold {
        let actor = |kind: i32, id: &str, roles: &[i32]| Actor {
            kind,
            principal_id: id.to_string(),
            roles: roles.to_vec(),
            tenant_id: tenant.to_string(),
        };
        LegalHold {
            hold_id: self.hold_id.to_string(),
            subject_ref: self.subject_ref.clone().unwrap_or_default(),
            reason: self.reason.clone(),
            case_reference: self.case_reference.clone(),
            placed_at: Some(timestamp(self.placed_at)),
            placed_by: Some(actor(
                self.placed_by_kind,
                &self.placed_by_id,
                &self.placed_by_roles,
            )),
            expires_at: self.expires_at.map(timestamp),
            released_at: self.released_at.map(timestamp),
            released_by: self.released_at.map(|_| {
                actor(
                    self.released_by_kind,
                    &self.released_by_id,
                    &self.released_by_roles,
                )
            }),
            release_reason: self.release_reason.clone(),
        }
    }
}

/// A hold to place.
pub struct NewHold<'a> {
    pub subject: Option<&'a SubjectRef>,
    pub reason: &'a str,
    pub case_reference: &'a str,
    pub expires_at: Option<OffsetDateTime>,
}

/// Inserts a hold.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    hold: &NewHold<'_>,
    actor: &Actor,
) -> Result<HoldRow, ServiceError> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO legal_holds (hold_id, tenant_id, subject_ref, reason, case_reference,
                                  expires_at, placed_by_kind, placed_by_id, placed_by_roles)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(tenant.as_uuid())
    .bind(hold.subject.map(SubjectRef::as_str))
    .bind(hold.reason)
    .bind(hold.case_reference)
    .bind(hold.expires_at)
    .bind(actor.kind)
    .bind(&actor.principal_id)
    .bind(&actor.roles)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row)
}

/// A hold, locked for the rest of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    tenant: TenantId,
    hold_id: Uuid,
) -> Result<Option<HoldRow>, ServiceError> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM legal_holds WHERE tenant_id = $1 AND hold_id = $2 FOR UPDATE"
    )))
    .bind(tenant.as_uuid())
    .bind(hold_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row)
}

/// Marks a hold released.
pub async fn release(
    conn: &mut PgConnection,
    tenant: TenantId,
    hold_id: Uuid,
    reason: &str,
    actor: &Actor,
) -> Result<HoldRow, ServiceError> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE legal_holds SET released_at = now(), release_reason = $3,
                released_by_kind = $4, released_by_id = $5, released_by_roles = $6
         WHERE tenant_id = $1 AND hold_id = $2
         RETURNING {COLUMNS}"
    )))
    .bind(tenant.as_uuid())
    .bind(hold_id)
    .bind(reason)
    .bind(actor.kind)
    .bind(&actor.principal_id)
    .bind(&actor.roles)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row)
}

/// What ListHolds asks for.
pub struct HoldFilter<'a> {
    /// Only this subject's holds; `None` for every subject and tenant-wide holds.
    pub subject: Option<&'a SubjectRef>,
    pub include_released: bool,
    /// (placed_at, hold_id) of the last row of the previous page.
    pub after: Option<(OffsetDateTime, Uuid)>,
    pub limit: i64,
}

/// One page of holds, newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: TenantId,
    filter: &HoldFilter<'_>,
) -> Result<Vec<HoldRow>, ServiceError> {
    // Without include_released only holds in force are listed (expired ones no longer are).
    let active = if filter.include_released {
        "TRUE".to_string()
    } else {
        ACTIVE.to_string()
    };
    let (after_at, after_id) = match filter.after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM legal_holds
         WHERE tenant_id = $1 AND ($2::text IS NULL OR subject_ref = $2) AND {active}
           AND ($3::timestamptz IS NULL OR (placed_at, hold_id) < ($3, $4))
         ORDER BY placed_at DESC, hold_id DESC
         LIMIT $5"
    )))
    .bind(tenant.as_uuid())
    .bind(filter.subject.map(SubjectRef::as_str))
    .bind(after_at)
    .bind(after_id)
    .bind(filter.limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}
