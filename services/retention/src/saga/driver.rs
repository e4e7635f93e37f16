//! The saga driver: every `saga_retry_secs`, or when woken, it asks again for erasures
//! that have not been answered, and checks pending exports.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use veil_core::app::Foundation;
use veil_core::error::{ErrorChain, ServiceError};
use veil_core::types::TenantId;
use veil_proto::common::v1::RequestState;

use super::{ERASING_SERVICES, request_erasure, steps};
use crate::certificate::service_label;
use crate::requests::store as requests;
use crate::state::Retention;

/// Requests retried per transaction.
const RETRY_BATCH: i64 = 100;

/// Registers the driver task.
pub fn spawn(foundation: &mut Foundation, state: Arc<Retention>) {
    foundation.spawn_task("retention saga driver", move |token| run(state, token));
}

async fn run(state: Arc<Retention>, token: CancellationToken) {
    let interval = Duration::from_secs(state.settings.saga_retry_secs);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
            _ = state.saga_wake.notified() => {}
        }
        if let Err(error) = tick(&state).await {
            tracing::warn!(error = %ErrorChain(&error), "saga driver tick failed");
        }
    }
}

/// One pass: erasure retries, then pending exports.
pub async fn tick(state: &Retention) -> Result<(), ServiceError> {
    while retry_erasures(state).await? == RETRY_BATCH as usize {}
    crate::export::jobs::process_pending(state).await?;
    Ok(())
}

/// Re-emits erasure_requested for one batch of requests whose services have not all
/// answered within `saga_retry_secs`; returns how many requests it looked at.
async fn retry_erasures(state: &Retention) -> Result<usize, ServiceError> {
    let retry = time::Duration::seconds(
        i64::try_from(state.settings.saga_retry_secs).unwrap_or(i64::MAX / 2),
    );
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let stale = steps::stale(&mut tx, OffsetDateTime::now_utc() - retry, RETRY_BATCH).await?;
    let count = stale.len();
    for item in stale {
        let tenant = TenantId::from_uuid(item.tenant_id);
        let row = requests::load(&mut tx, tenant, item.request_id).await?;
        let Some(row) = row.filter(|r| r.state == RequestState::InProgress) else {
            steps::abandon(&mut tx, item.tenant_id, item.request_id).await?;
            continue;
        };
        let pending: Vec<_> = steps::all(&mut tx, item.tenant_id, item.request_id)
            .await?
            .into_iter()
            .filter(|step| !step.done)
            .map(|step| step.service)
            .collect();
        let missing: Vec<_> = ERASING_SERVICES
            .into_iter()
            .filter(|s| pending.iter().any(|p| p == service_label(*s)))
            .collect();
        request_erasure(&mut tx, state, &row, &missing).await?;
        steps::mark_requested(&mut tx, item.tenant_id, item.request_id).await?;
        tracing::info!(
            request_id = %item.request_id,
            services = missing.len(),
            "erasure asked again"
        );
    }
    tx.commit().await?;
    if count > 0 {
        state.notify_relay();
    }
    Ok(count)
}
