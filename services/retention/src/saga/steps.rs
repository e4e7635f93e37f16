//! `saga_steps`: which services still owe an erasure for a request, and what the others
//! reported.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// One service's part of one request's erasure.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepRow {
    pub service: String,
    pub done: bool,
    pub counts: Json<BTreeMap<String, i64>>,
    pub completed_at: Option<OffsetDateTime>,
    pub error: String,
}

/// A request with steps whose erasure_requested is due again.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaleRequest {
    pub tenant_id: Uuid,
    pub request_id: Uuid,
}

/// Opens a step per service; steps that exist already are left as they are.
pub async fn open(
    conn: &mut PgConnection,
    tenant: Uuid,
    request_id: Uuid,
    services: &[&str],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO saga_steps (tenant_id, request_id, service)
         SELECT $1, $2, unnest($3::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(request_id)
    .bind(services)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a service's answer; false when the step is unknown or was already done (a
/// redelivery or a retried request answered twice), so nothing changes.
pub async fn complete(
    conn: &mut PgConnection,
    tenant: Uuid,
    request_id: Uuid,
    service: &str,
    counts: &BTreeMap<String, i64>,
    completed_at: OffsetDateTime,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE saga_steps SET done = true, counts = $4, completed_at = $5, error = ''
         WHERE tenant_id = $1 AND request_id = $2 AND service = $3 AND NOT done",
    )
    .bind(tenant)
    .bind(request_id)
    .bind(service)
    .bind(Json(counts))
    .bind(completed_at)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Every step of a request, locked so concurrent answers finish the saga once.
pub async fn lock_all(
    conn: &mut PgConnection,
    tenant: Uuid,
    request_id: Uuid,
) -> sqlx::Result<Vec<StepRow>> {
    sqlx::query_as(
        "SELECT service, done, counts, completed_at, error FROM saga_steps
         WHERE tenant_id = $1 AND request_id = $2 ORDER BY service FOR UPDATE",
    )
    .bind(tenant)
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await
}

/// Every step of a request (for progress reports).
pub async fn all(
    conn: &mut PgConnection,
    tenant: Uuid,
    request_id: Uuid,
) -> sqlx::Result<Vec<StepRow>> {
    sqlx::query_as(
        "SELECT service, done, counts, completed_at, error FROM saga_steps
         WHERE tenant_id = $1 AND request_id = $2 ORDER BY service",
    )
    .bind(tenant)
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await
}

/// Requests with an unanswered step last asked before `before`; locked (skipping rows
/// another replica is retrying) until the caller's transaction ends.
pub async fn stale(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> sqlx::Result<Vec<StaleRequest>> {
    sqlx::query_as(
        "SELECT DISTINCT tenant_id, request_id FROM (
             SELECT tenant_id, request_id FROM saga_steps
             WHERE NOT done AND last_requested_at < $1
             ORDER BY last_requested_at LIMIT $2
             FOR UPDATE SKIP LOCKED) s",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Marks the unanswered steps of a request as asked again now.
pub async fn mark_requested(
    conn: &mut PgConnection,
    tenant: Uuid,
    request_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE saga_steps SET last_requested_at = now(), attempts = attempts + 1
         WHERE tenant_id = $1 AND request_id = $2 AND NOT done",
    )
    .bind(tenant)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Drops the unanswered steps of a request that was closed meanwhile (nothing more to
/// ask for).
pub async fn abandon(conn: &mut PgConnection, tenant: Uuid, request_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM saga_steps WHERE tenant_id = $1 AND request_id = $2 AND NOT done")
        .bind(tenant)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
