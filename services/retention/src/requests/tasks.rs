//! Background work of the request workflow.
//!
//! - The overdue check (every `overdue_check_secs`) marks open requests past their due
//!   date once and emits `retention.request_overdue` for each, in the same transaction.
//! - The resume task (woken by `saga_wake` — a hold was released — and every
//!   `saga_retry_secs`) re-checks ON_HOLD requests: when no hold blocks them any more
//!   they go to the saga; it also retries direct executions (restriction, objection,
//!   opt-outs, rectification) whose peer calls failed.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_core::app::Foundation;
use veil_core::convert::timestamp;
use veil_core::error::{ErrorChain, ServiceError};
use veil_core::types::TenantId;
use veil_proto::common::v1::RequestState;
use veil_proto::events::v1::RetentionRequestOverdue;
use veil_proto::events::v1::event::Payload;

use super::execute::{self, Started};
use super::store::{self, COLUMNS, DbRow};
use crate::state::Retention;

/// Requests handled per transaction by each task.
const BATCH: i64 = 100;

/// Registers the overdue check and the resume task.
pub fn spawn(foundation: &mut Foundation, state: Arc<Retention>) {
    let overdue_state = state.clone();
    let every = Duration::from_secs(state.settings.overdue_check_secs);
    foundation.spawn_every("retention overdue check", every, move || {
        let state = overdue_state.clone();
        async move {
            if let Err(error) = mark_overdue(&state).await {
                tracing::warn!(error = %ErrorChain(&error), "overdue check failed");
            }
        }
    });
    foundation.spawn_task("retention request resume", move |token| {
        resume_loop(state, token)
    });
}

async fn resume_loop(state: Arc<Retention>, token: CancellationToken) {
    let interval = Duration::from_secs(state.settings.saga_retry_secs);
    loop {
        // Registered before the pass, so a release committed during it is not missed.
        let woken = state.saga_wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if let Err(error) = resume_held(&state).await {
            tracing::warn!(error = %ErrorChain(&error), "resuming held requests failed");
        }
        if let Err(error) = retry_direct(&state).await {
            tracing::warn!(error = %ErrorChain(&error), "retrying request execution failed");
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
            _ = &mut woken => {}
        }
    }
}

/// Marks every open request past its due date as overdue (once) and emits
/// `request_overdue` for each; returns how many it marked.
pub async fn mark_overdue(state: &Retention) -> Result<usize, ServiceError> {
    let mut total = 0;
    loop {
        let mut tx = veil_core::db::begin(&state.pool).await?;
        let sql = format!(
            "UPDATE requests SET overdue = true, overdue_at = now(), updated_at = now() \
             WHERE (tenant_id, request_id) IN ( \
                SELECT tenant_id, request_id FROM requests \
                WHERE state IN (1, 2, 3, 7, 8) AND NOT overdue AND due_at < now() \
                LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING {COLUMNS}"
        );
        let rows: Vec<DbRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
        let rows = store::convert(rows)?;
        for row in &rows {
            let payload = Payload::RetentionRequestOverdue(RetentionRequestOverdue {
                request_id: row.request_id.to_string(),
                request_type: row.request_type as i32,
                state: row.state as i32,
                due_at: Some(timestamp(row.due_at)),
            });
            let context = row.context(Some(store::service_actor(row.tenant)));
            state.emit(&mut tx, &context, payload).await?;
        }
        tx.commit().await?;
        total += rows.len();
        if !rows.is_empty() {
            state.notify_relay();
        }
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < BATCH {
            return Ok(total);
        }
    }
}

/// Moves ON_HOLD requests no hold blocks any more into their saga; returns how many
/// resumed.
pub async fn resume_held(state: &Retention) -> Result<usize, ServiceError> {
    let held: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT tenant_id, request_id FROM requests WHERE state = 7 \
         ORDER BY updated_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await?;
    let mut resumed = 0;
    for (tenant, request_id) in held {
        let tenant = TenantId::from_uuid(tenant);
        match resume_one(state, tenant, request_id).await {
            Ok(true) => resumed += 1,
            Ok(false) => {}
            Err(error) => tracing::warn!(
                %request_id,
                error = %ErrorChain(&error),
                "resuming a held request failed"
            ),
        }
    }
    if resumed > 0 {
        state.saga_wake.notify_waiters();
    }
    Ok(resumed)
}

async fn resume_one(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<bool, ServiceError> {
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let Some(row) = store::load_for_update(&mut tx, tenant, request_id).await? else {
        return Ok(false);
    };
    if row.state != RequestState::OnHold {
        return Ok(false);
    }
    let (_, started) = execute::start(&mut tx, state, &row).await?;
    tx.commit().await?;
    state.notify_relay();
    Ok(started == Started::Saga)
}

/// Retries IN_PROGRESS requests without a saga whose last attempt is older than
/// `saga_retry_secs`; returns how many it tried.
pub async fn retry_direct(state: &Retention) -> Result<usize, ServiceError> {
    let retry = time::Duration::seconds(
        i64::try_from(state.settings.saga_retry_secs).unwrap_or(i64::MAX / 2),
    );
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT tenant_id, request_id FROM requests \
         WHERE state = 3 AND request_type IN (4, 5, 6, 7, 8) AND updated_at < $1 \
         ORDER BY updated_at LIMIT $2",
    )
    .bind(OffsetDateTime::now_utc() - retry)
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await?;
    let count = due.len();
    for (tenant, request_id) in due {
        if let Err(error) =
            execute::run_direct(state, TenantId::from_uuid(tenant), request_id).await
        {
            tracing::warn!(%request_id, error = %ErrorChain(&error), "request execution retry failed");
        }
    }
    Ok(count)
}
