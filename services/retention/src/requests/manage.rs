//! Reading, listing, extending and closing requests.

use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::{Actor, RequestState, RequestType};

use super::store::{self, COLUMNS, DbRow, RequestRow};
use crate::state::Retention;

/// The request, if `tenant` has it and (for bots) `only_submitted_by` submitted it;
/// a bot asking for someone else's request gets NOT_FOUND, as if it did not exist.
pub async fn get(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
    only_submitted_by: Option<&str>,
) -> Result<veil_proto::retention::v1::DataSubjectRequest, ServiceError> {
    let mut conn = state.pool.acquire().await?;
    let row = store::load(&mut conn, tenant, request_id)
        .await?
        .filter(|r| only_submitted_by.is_none_or(|p| r.submitted_by.principal_id == p))
        .ok_or_else(|| ServiceError::NotFound("request".into()))?;
    super::convert::to_full_proto(&mut conn, &row).await
}

/// ListRequests filters, validated.
#[derive(Debug, Default)]
pub struct Filter {
    pub states: Vec<RequestState>,
    pub request_types: Vec<RequestType>,
    pub overdue_only: bool,
    pub subject: Option<SubjectRef>,
    pub due_from: Option<OffsetDateTime>,
    pub due_to: Option<OffsetDateTime>,
    /// Request id of the last item of the previous page (newest first).
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// One page of requests, newest first, and whether more follow.
pub async fn list(
    state: &Retention,
    tenant: TenantId,
    filter: &Filter,
) -> Result<(Vec<RequestRow>, bool), ServiceError> {
    let states: Vec<i16> = filter
        .states
        .iter()
        .filter_map(|s| i16::try_from(*s as i32).ok())
        .collect();
    let types: Vec<i16> = filter
        .request_types
        .iter()
        .filter_map(|t| i16::try_from(*t as i32).ok())
        .collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 \
           AND (cardinality($2::smallint[]) = 0 OR state = ANY($2)) \
           AND (cardinality($3::smallint[]) = 0 OR request_type = ANY($3)) \
           AND (NOT $4 OR overdue OR (state IN (1, 2, 3, 7, 8) AND due_at < now())) \
           AND ($5::text IS NULL OR subject_ref = $5) \
           AND ($6::timestamptz IS NULL OR due_at >= $6) \
           AND ($7::timestamptz IS NULL OR due_at < $7) \
           AND ($8::uuid IS NULL OR request_id < $8) \
         ORDER BY request_id DESC LIMIT $9"
    );
    let rows: Vec<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(&states)
        .bind(&types)
        .bind(filter.overdue_only)
        .bind(filter.subject.as_ref().map(|s| s.to_string()))
        .bind(filter.due_from)
        .bind(filter.due_to)
        .bind(filter.after)
        .bind(filter.limit + 1)
        .fetch_all(&state.pool)
        .await?;
    let mut rows = store::convert(rows)?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > filter.limit;
    rows.truncate(usize::try_from(filter.limit).unwrap_or(0));
    Ok((rows, more))
}

/// Extends the deadline of an open request.
pub async fn extend(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
    by: time::Duration,
    reason: &str,
    actor: Actor,
) -> Result<veil_proto::retention::v1::DataSubjectRequest, ServiceError> {
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let row = store::load_for_update(&mut tx, tenant, request_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("request".into()))?;
    let extended = super::extensions::extend(&mut tx, state, &row, by, reason, actor).await?;
    let proto = super::convert::to_full_proto(&mut tx, &extended).await?;
    tx.commit().await?;
    state.notify_relay();
    Ok(proto)
}

/// How a request is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The subject withdrew it.
    Cancelled,
    /// Refused (unverifiable, manifestly unfounded or excessive).
    Rejected,
}

/// Cancels or rejects an open request with `reason`.
pub async fn close(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
    closing: Closing,
    reason: &str,
    actor: Actor,
    only_submitted_by: Option<&str>,
) -> Result<veil_proto::retention::v1::DataSubjectRequest, ServiceError> {
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let row = store::load_for_update(&mut tx, tenant, request_id)
        .await?
        .filter(|r| only_submitted_by.is_none_or(|p| r.submitted_by.principal_id == p))
        .ok_or_else(|| ServiceError::NotFound("request".into()))?;
    if !row.is_open() {
        return Err(ServiceError::FailedPrecondition(format!(
            "request {request_id} is already closed"
        )));
    }
    let (to, code, default_reason) = match closing {
        Closing::Cancelled => (
            RequestState::Cancelled,
            "cancelled",
            "withdrawn by the data subject",
        ),
        Closing::Rejected => (RequestState::Rejected, "rejected", ""),
    };
    let reason = if reason.is_empty() {
        default_reason
    } else {
        reason
    };
    let closed = store::transition_by(&mut tx, state, &row, to, code, Some(reason), actor).await?;
    let proto = super::convert::to_full_proto(&mut tx, &closed).await?;
    tx.commit().await?;
    state.notify_relay();
    Ok(proto)
}
