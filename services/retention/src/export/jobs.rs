//! `export_jobs`: an access or portability request waiting until its data can be
//! collected from every service, then ready for download until it expires.

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;
use veil_core::error::{ErrorChain, ServiceError};
use veil_core::types::TenantId;
use veil_proto::common::v1::RequestState;

use super::collect;
use crate::requests::store::{self as requests, RequestRow};
use crate::state::Retention;

/// Jobs tried per driver pass.
const BATCH: i64 = 10;

/// A job's download state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub ready_at: Option<time::OffsetDateTime>,
    pub expired_at: Option<time::OffsetDateTime>,
}

/// Opens the job of a request (again: a reopened request keeps its job).
pub async fn open(conn: &mut PgConnection, row: &RequestRow) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO export_jobs (tenant_id, request_id, subject_ref) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(row.tenant.as_uuid())
    .bind(row.request_id)
    .bind(row.subject_ref.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The job of a request.
pub async fn load(
    conn: &mut PgConnection,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<Option<JobRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT ready_at, expired_at FROM export_jobs WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Tries the jobs not yet ready (each at most once per `saga_retry_secs`): when every
/// service answered, the job is ready and the request COMPLETED with export_ready.
pub async fn process_pending(state: &Retention) -> Result<(), ServiceError> {
    let retry = i64::try_from(state.settings.saga_retry_secs).unwrap_or(i64::MAX / 2);
    // Claimed by stamping last_try_at, so another replica skips them this round.
    let claimed: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE export_jobs SET last_try_at = now(), attempts = attempts + 1
         WHERE (tenant_id, request_id) IN (
             SELECT tenant_id, request_id FROM export_jobs
             WHERE ready_at IS NULL AND expired_at IS NULL
               AND (last_try_at IS NULL OR last_try_at < now() - make_interval(secs => $1))
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING tenant_id, request_id",
    )
    .bind(retry as f64)
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await?;
    for (tenant, request_id) in claimed {
        let tenant = TenantId::from_uuid(tenant);
        if let Err(error) = try_job(state, tenant, request_id).await {
            tracing::warn!(%request_id, error = %ErrorChain(&error), "export not yet collectable");
            sqlx::query(
                "UPDATE export_jobs SET error = $3 WHERE tenant_id = $1 AND request_id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(request_id)
            .bind(error_label(&error))
            .execute(&state.pool)
            .await?;
        }
    }
    Ok(())
}

/// A stored reason without details (no personal data, no peer messages).
fn error_label(error: &ServiceError) -> String {
    match error {
        ServiceError::Unavailable(message) => message.clone(),
        _ => "export collection failed".into(),
    }
}

async fn try_job(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<(), ServiceError> {
    let mut conn = state.pool.acquire().await?;
    let Some(row) = requests::load(&mut conn, tenant, request_id).await? else {
        return Ok(());
    };
    drop(conn);
    if row.state != RequestState::InProgress {
        // Cancelled or rejected meanwhile: nothing to prepare any more.
        expire(&state.pool, tenant, request_id).await?;
        return Ok(());
    }
    let collected =
        collect::collect(state, tenant, &row.subject_ref, &request_id.to_string()).await?;
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let Some(row) = requests::load_for_update(&mut tx, tenant, request_id).await? else {
        return Ok(());
    };
    if row.state != RequestState::InProgress {
        return Ok(());
    }
    sqlx::query(
        "UPDATE export_jobs SET ready_at = now(), sections = $3, error = ''
         WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(request_id)
    .bind(Json(collected.counts()))
    .execute(&mut *tx)
    .await?;
    requests::set_export_ready(&mut tx, tenant, request_id, true).await?;
    requests::transition(
        &mut tx,
        state,
        &row,
        RequestState::Completed,
        "export_ready",
        None,
    )
    .await?;
    tx.commit().await?;
    state.notify_relay();
    Ok(())
}

async fn expire(pool: &sqlx::PgPool, tenant: TenantId, request_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE export_jobs SET expired_at = now(), subject_ref = ''
         WHERE tenant_id = $1 AND request_id = $2 AND expired_at IS NULL",
    )
    .bind(tenant.as_uuid())
    .bind(request_id)
    .execute(pool)
    .await?;
    Ok(())
}
