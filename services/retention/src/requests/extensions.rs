//! Deadline extensions (GDPR Art. 12(3), CCPA §1798.130(a)(2)): each one is recorded
//! with its reason and actor, and the due date never passes the legal maximum.

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_proto::common::v1::Actor;
use veil_proto::events::v1::RetentionRequestStateChanged;
use veil_proto::events::v1::event::Payload;
use veil_proto::retention::v1::Extension;

use super::due::{self, ExtendError};
use super::store::{self, RequestRow};
use crate::state::Retention;

/// The recorded extensions of a request, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    row: &RequestRow,
) -> Result<Vec<Extension>, ServiceError> {
    let rows: Vec<(i64, String, OffsetDateTime, i16, String, Vec<i16>)> = sqlx::query_as(
        "SELECT extended_by_secs, reason, extended_at, actor_kind, actor_id, actor_roles \
         FROM request_extensions WHERE tenant_id = $1 AND request_id = $2 ORDER BY seq",
    )
    .bind(row.tenant.as_uuid())
    .bind(row.request_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(secs, reason, at, kind, id, roles)| Extension {
            extended_by: Some(prost_types::Duration {
                seconds: secs,
                nanos: 0,
            }),
            reason,
            extended_at: Some(timestamp(at)),
            actor: Some(Actor {
                kind: i32::from(kind),
                principal_id: id,
                roles: roles.into_iter().map(i32::from).collect(),
                tenant_id: row.tenant.to_string(),
            }),
        })
        .collect())
}

/// Extends the (locked, open) request `row` by `by` with `reason`, records the extension
/// and emits `request_state_changed` with reason code `extended` (same state, new due
/// date). FAILED_PRECONDITION past the legal maximum or once the deadline has passed.
pub async fn extend(
    conn: &mut PgConnection,
    state: &Retention,
    row: &RequestRow,
    by: Duration,
    reason: &str,
    actor: Actor,
) -> Result<RequestRow, ServiceError> {
    if !row.is_open() {
        return Err(ServiceError::FailedPrecondition(format!(
            "request {} is closed",
            row.request_id
        )));
    }
    if row.due_at <= OffsetDateTime::now_utc() {
        return Err(ServiceError::FailedPrecondition(format!(
            "request {} is past its due date; an extension must be made before it",
            row.request_id
        )));
    }
    let due_at = match due::extend(row.due_at, row.max_due_at, by) {
        Ok(due_at) => due_at,
        Err(ExtendError::NotPositive) => {
            return Err(ServiceError::invalid("extend_by", "must be positive"));
        }
        Err(ExtendError::BeyondMaximum) => {
            return Err(ServiceError::FailedPrecondition(format!(
                "extending request {} would pass the legal maximum due date {}",
                row.request_id,
                super::convert::rfc3339(row.max_due_at)
            )));
        }
    };
    let roles: Vec<i16> = actor
        .roles
        .iter()
        .filter_map(|r| i16::try_from(*r).ok())
        .collect();
    sqlx::query(
        "INSERT INTO request_extensions (tenant_id, request_id, seq, extended_by_secs, reason, \
            actor_kind, actor_id, actor_roles) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7 \
         FROM request_extensions WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(row.tenant.as_uuid())
    .bind(row.request_id)
    .bind(by.whole_seconds())
    .bind(reason)
    .bind(i16::try_from(actor.kind).unwrap_or(0))
    .bind(&actor.principal_id)
    .bind(&roles)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE requests SET due_at = $3, updated_at = now() WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(row.tenant.as_uuid())
    .bind(row.request_id)
    .bind(due_at)
    .execute(&mut *conn)
    .await?;
    let payload = Payload::RetentionRequestStateChanged(RetentionRequestStateChanged {
        request_id: row.request_id.to_string(),
        request_type: row.request_type as i32,
        from_state: row.state as i32,
        to_state: row.state as i32,
        reason_code: "extended".into(),
        due_at: Some(timestamp(due_at)),
    });
    state.emit(conn, &row.context(Some(actor)), payload).await?;
    store::load(conn, row.tenant, row.request_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("request".into()))
}
