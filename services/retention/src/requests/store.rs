//! The `requests` table: loading, inserting and moving data-subject requests.
//!
//! Every state change goes through [`transition`], which checks the move against
//! [`super::machine`], writes it and emits `retention.request_state_changed` in the
//! caller's transaction.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::{Actor, ActorKind, Jurisdiction, RequestState, RequestType};
use veil_proto::events::v1::RetentionRequestStateChanged;
use veil_proto::events::v1::event::Payload;

use super::machine;
use crate::state::Retention;

/// Columns every query selects, in [`DbRow`] order. Queries splice in only this
/// constant; every value is a bind parameter, hence `AssertSqlSafe`.
pub(crate) const COLUMNS: &str = "tenant_id, request_id, subject_ref, request_type, state, \
    channel, jurisdiction, locale, purpose_keys, received_at, verified_at, due_at, \
    max_due_at, ack_due_at, acknowledged_at, completed_at, closing_reason, hold_id, \
    certificate_id, export_ready, overdue, overdue_at, submitted_kind, submitted_by, \
    submitted_roles, idempotency_key, code_hash, code_expires_at, code_attempts, \
    code_max_attempts, subject_token, correction_fields, correction_tokens, minimized_at";

/// One data-subject request as stored.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub request_id: Uuid,
    pub tenant: TenantId,
    /// The subject; after minimization a random value that links to nobody.
    pub subject_ref: SubjectRef,
    pub request_type: RequestType,
    pub state: RequestState,
    /// `veil.retention.v1.RequestChannel` value.
    pub channel: i32,
    pub jurisdiction: Jurisdiction,
    pub locale: String,
    pub purpose_keys: Vec<String>,
    pub received_at: OffsetDateTime,
    pub verified_at: Option<OffsetDateTime>,
    /// Current deadline, extensions included.
    pub due_at: OffsetDateTime,
    /// The latest the deadline may be extended to.
    pub max_due_at: OffsetDateTime,
    /// CCPA acknowledgement deadline (10 business days).
    pub ack_due_at: Option<OffsetDateTime>,
    pub acknowledged_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
    pub closing_reason: String,
    /// The legal hold that blocks the request while it is ON_HOLD.
    pub hold_id: Option<String>,
    pub certificate_id: Option<String>,
    pub export_ready: bool,
    pub overdue: bool,
    pub overdue_at: Option<OffsetDateTime>,
    /// Who submitted it.
    pub submitted_by: Actor,
    pub idempotency_key: Option<String>,
    pub code_hash: Option<Vec<u8>>,
    pub code_expires_at: Option<OffsetDateTime>,
    pub code_attempts: i32,
    pub code_max_attempts: i32,
    /// Vault token of the external subject id (only for types whose peers need it).
    pub subject_token: Option<String>,
    /// Rectification: the field each correction names (a key or a vault token).
    pub correction_fields: Vec<String>,
    /// Rectification: vault tokens of the corrected values, same order.
    pub correction_tokens: Vec<String>,
    pub minimized_at: Option<OffsetDateTime>,
}

impl RequestRow {
    /// Whether the request is still open (not completed, rejected or cancelled).
    pub fn is_open(&self) -> bool {
        machine::is_open(self.state)
    }

    /// The event context of a change to this request.
    pub fn context(&self, actor: Option<Actor>) -> EventContext {
        EventContext {
            tenant: Some(self.tenant),
            subject_ref: Some(self.subject_ref.clone()),
            actor,
            request_id: self.request_id.to_string(),
        }
    }
}

/// The raw columns; converted into [`RequestRow`] once read.
#[derive(sqlx::FromRow)]
pub(crate) struct DbRow {
    tenant_id: Uuid,
    request_id: Uuid,
    subject_ref: String,
    request_type: i16,
    state: i16,
    channel: i16,
    jurisdiction: i16,
    locale: String,
    purpose_keys: Vec<String>,
    received_at: OffsetDateTime,
    verified_at: Option<OffsetDateTime>,
    due_at: OffsetDateTime,
    max_due_at: OffsetDateTime,
    ack_due_at: Option<OffsetDateTime>,
    acknowledged_at: Option<OffsetDateTime>,
    completed_at: Option<OffsetDateTime>,
    closing_reason: String,
    hold_id: Option<String>,
    certificate_id: Option<String>,
    export_ready: bool,
    overdue: bool,
    overdue_at: Option<OffsetDateTime>,
    submitted_kind: i16,
    submitted_by: String,
    submitted_roles: Vec<i16>,
    idempotency_key: Option<String>,
    code_hash: Option<Vec<u8>>,
    code_expires_at: Option<OffsetDateTime>,
    code_attempts: i32,
    code_max_attempts: i32,
    subject_token: Option<String>,
    correction_fields: Vec<String>,
    correction_tokens: Vec<String>,
    minimized_at: Option<OffsetDateTime>,
}

impl TryFrom<DbRow> for RequestRow {
    type Error = ServiceError;

    fn try_from(r: DbRow) -> Result<Self, ServiceError> {
        let corrupt = |what: &str| {
            ServiceError::internal(anyhow::anyhow!("requests row has an invalid {what}"))
        };
        Ok(Self {
            request_id: r.request_id,
            tenant: TenantId::from_uuid(r.tenant_id),
            subject_ref: r.subject_ref.parse().map_err(|_| corrupt("subject_ref"))?,
            request_type: RequestType::try_from(i32::from(r.request_type))
                .map_err(|_| corrupt("request_type"))?,
            state: RequestState::try_from(i32::from(r.state)).map_err(|_| corrupt("state"))?,
            channel: i32::from(r.channel),
            jurisdiction: Jurisdiction::try_from(i32::from(r.jurisdiction))
                .unwrap_or(Jurisdiction::Other),
            locale: r.locale,
            purpose_keys: r.purpose_keys,
            received_at: r.received_at,
            verified_at: r.verified_at,
            due_at: r.due_at,
            max_due_at: r.max_due_at,
            ack_due_at: r.ack_due_at,
            acknowledged_at: r.acknowledged_at,
            completed_at: r.completed_at,
            closing_reason: r.closing_reason,
            hold_id: r.hold_id,
            certificate_id: r.certificate_id,
            export_ready: r.export_ready,
            overdue: r.overdue,
            overdue_at: r.overdue_at,
            submitted_by: Actor {
                kind: i32::from(r.submitted_kind),
                principal_id: r.submitted_by,
                roles: r.submitted_roles.into_iter().map(i32::from).collect(),
                tenant_id: r.tenant_id.to_string(),
            },
            idempotency_key: r.idempotency_key,
            code_hash: r.code_hash,
            code_expires_at: r.code_expires_at,
            code_attempts: r.code_attempts,
            code_max_attempts: r.code_max_attempts,
            subject_token: r.subject_token,
            correction_fields: r.correction_fields,
            correction_tokens: r.correction_tokens,
            minimized_at: r.minimized_at,
        })
    }
}

/// Converts fetched rows.
pub(crate) fn convert(rows: Vec<DbRow>) -> Result<Vec<RequestRow>, ServiceError> {
    rows.into_iter().map(RequestRow::try_from).collect()
}

/// A request to insert.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub request_id: Uuid,
    pub tenant: TenantId,
    pub subject_ref: SubjectRef,
    pub request_type: RequestType,
    /// RECEIVED, or VERIFIED when the caller's identity assertion was honoured.
    pub state: RequestState,
    pub channel: i32,
    pub jurisdiction: Jurisdiction,
    pub locale: String,
    pub purpose_keys: Vec<String>,
    pub received_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
    pub max_due_at: OffsetDateTime,
    pub ack_due_at: Option<OffsetDateTime>,
    pub submitted_by: Actor,
    pub idempotency_key: Option<String>,
    pub code_hash: Option<Vec<u8>>,
    pub code_expires_at: Option<OffsetDateTime>,
    pub code_max_attempts: i32,
    pub subject_token: Option<String>,
    pub correction_fields: Vec<String>,
    pub correction_tokens: Vec<String>,
}

/// Inserts `new`; `Ok(None)` when an open request of the same subject and type or a
/// request with the same idempotency key already exists (the caller then loads it).
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewRequest,
) -> Result<Option<RequestRow>, ServiceError> {
    let verified_at = (new.state == RequestState::Verified).then_some(new.received_at);
    let roles: Vec<i16> = new
        .submitted_by
        .roles
        .iter()
        .filter_map(|r| i16::try_from(*r).ok())
        .collect();
    let sql = format!(
        "INSERT INTO requests (tenant_id, request_id, subject_ref, request_type, state, \
            channel, jurisdiction, locale, purpose_keys, received_at, verified_at, due_at, \
            max_due_at, ack_due_at, acknowledged_at, submitted_kind, submitted_by, submitted_roles, \
            idempotency_key, code_hash, code_expires_at, code_max_attempts, subject_token, \
            correction_fields, correction_tokens) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
            CASE WHEN $14::timestamptz IS NULL THEN NULL ELSE $10 END, $15, $16, \
            $17, $18, $19, $20, $21, $22, $23, $24) \
         ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    );
    let row: Option<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(new.tenant.as_uuid())
        .bind(new.request_id)
        .bind(new.subject_ref.as_str())
        .bind(small(new.request_type as i32))
        .bind(small(new.state as i32))
        .bind(small(new.channel))
        .bind(small(new.jurisdiction as i32))
        .bind(&new.locale)
        .bind(&new.purpose_keys)
        .bind(new.received_at)
        .bind(verified_at)
        .bind(new.due_at)
        .bind(new.max_due_at)
        .bind(new.ack_due_at)
        .bind(small(new.submitted_by.kind))
        .bind(&new.submitted_by.principal_id)
        .bind(&roles)
        .bind(&new.idempotency_key)
        .bind(&new.code_hash)
        .bind(new.code_expires_at)
        .bind(new.code_max_attempts)
        .bind(&new.subject_token)
        .bind(&new.correction_fields)
        .bind(&new.correction_tokens)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(RequestRow::try_from).transpose()
}

fn small(value: i32) -> i16 {
    i16::try_from(value).unwrap_or(0)
}

/// The request, if it exists in `tenant`.
pub async fn load(
    conn: &mut PgConnection,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<Option<RequestRow>, ServiceError> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND request_id = $2");
    let row: Option<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(request_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(RequestRow::try_from).transpose()
}

/// The request, locked until the end of the caller's transaction.
pub async fn load_for_update(
    conn: &mut PgConnection,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<Option<RequestRow>, ServiceError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND request_id = $2 FOR UPDATE"
    );
    let row: Option<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(request_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(RequestRow::try_from).transpose()
}

/// The open request of `subject` with `request_type`, if any (duplicate detection).
pub async fn find_open(
    conn: &mut PgConnection,
    tenant: TenantId,
    subject: &SubjectRef,
    request_type: RequestType,
) -> Result<Option<RequestRow>, ServiceError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND subject_ref = $2 \
         AND request_type = $3 AND state IN (1, 2, 3, 7, 8) FOR UPDATE"
    );
    let row: Option<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(subject.as_str())
        .bind(small(request_type as i32))
        .fetch_optional(&mut *conn)
        .await?;
    row.map(RequestRow::try_from).transpose()
}

/// The request submitted with `key`, if any.
pub async fn find_by_idempotency_key(
    conn: &mut PgConnection,
    tenant: TenantId,
    key: &str,
) -> Result<Option<RequestRow>, ServiceError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND idempotency_key = $2 FOR UPDATE"
    );
    let row: Option<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_uuid())
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(RequestRow::try_from).transpose()
}

/// The service itself as the actor of automatic changes (saga steps, hold releases,
/// overdue checks).
pub fn service_actor(tenant: TenantId) -> Actor {
    Actor {
        kind: ActorKind::Service as i32,
        principal_id: crate::NAME.to_string(),
        roles: vec![veil_proto::common::v1::Role::Service as i32],
        tenant_id: tenant.to_string(),
    }
}

/// Moves `row` to `to` as the service itself; see [`transition_by`].
pub async fn transition(
    conn: &mut PgConnection,
    state: &Retention,
    row: &RequestRow,
    to: RequestState,
    reason_code: &str,
    closing_reason: Option<&str>,
) -> Result<RequestRow, ServiceError> {
    transition_by(
        conn,
        state,
        row,
        to,
        reason_code,
        closing_reason,
        service_actor(row.tenant),
    )
    .await
}

/// Moves `row` to `to` if the state machine allows it and nobody moved it meanwhile,
/// stamps verified/completed times, and emits `request_state_changed` with
/// `reason_code`. `closing_reason` replaces the recorded reason when given. Leaving
/// ON_HOLD clears the hold id.
pub async fn transition_by(
    conn: &mut PgConnection,
    state: &Retention,
    row: &RequestRow,
    to: RequestState,
    reason_code: &str,
    closing_reason: Option<&str>,
    actor: Actor,
) -> Result<RequestRow, ServiceError> {
    if !machine::allowed(row.state, to) {
        return Err(ServiceError::FailedPrecondition(format!(
            "request {} cannot move from {} to {}",
            row.request_id,
            machine::label(row.state),
            machine::label(to)
        )));
    }
    let sql = format!(
        "UPDATE requests SET state = $3, \
            verified_at = CASE WHEN $3 = 2 AND verified_at IS NULL THEN now() ELSE verified_at END, \
            completed_at = CASE WHEN $3 IN (4, 5, 6, 9) THEN now() ELSE completed_at END, \
            closing_reason = COALESCE($5, closing_reason), \
            hold_id = CASE WHEN $3 = 7 THEN hold_id ELSE NULL END, \
            code_hash = CASE WHEN $3 = 1 THEN code_hash ELSE NULL END, \
            updated_at = now() \
         WHERE tenant_id = $1 AND request_id = $2 AND state = $4 RETURNING {COLUMNS}"
    );
    let updated: Option<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(row.tenant.as_uuid())
        .bind(row.request_id)
        .bind(small(to as i32))
        .bind(small(row.state as i32))
        .bind(closing_reason)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(updated) = updated else {
        return Err(ServiceError::FailedPrecondition(format!(
            "request {} changed concurrently; retry",
            row.request_id
        )));
    };
    let updated = RequestRow::try_from(updated)?;
    let payload = Payload::RetentionRequestStateChanged(RetentionRequestStateChanged {
        request_id: row.request_id.to_string(),
        request_type: row.request_type as i32,
        from_state: row.state as i32,
        to_state: to as i32,
        reason_code: reason_code.to_string(),
        due_at: Some(timestamp(updated.due_at)),
    });
    state
        .emit(conn, &updated.context(Some(actor)), payload)
        .await?;
    Ok(updated)
}

/// Records the hold that blocks an ON_HOLD request, and names it in the closing reason.
pub async fn set_hold(
    conn: &mut PgConnection,
    row: &RequestRow,
    hold_id: &str,
    reason: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE requests SET hold_id = $3, closing_reason = $4, updated_at = now() \
         WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(row.tenant.as_uuid())
    .bind(row.request_id)
    .bind(hold_id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks the request's export as ready (or not) for download.
pub async fn set_export_ready(
    conn: &mut PgConnection,
    tenant: TenantId,
    request_id: Uuid,
    ready: bool,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE requests SET export_ready = $3, updated_at = now() \
         WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(request_id)
    .bind(ready)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the deletion certificate of the request.
pub async fn set_certificate(
    conn: &mut PgConnection,
    tenant: TenantId,
    request_id: Uuid,
    certificate_id: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE requests SET certificate_id = $3, updated_at = now() \
         WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(request_id)
    .bind(certificate_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
