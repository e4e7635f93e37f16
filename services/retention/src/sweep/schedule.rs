//! The scheduled sweeper: on start and before every scheduled round it resumes sweeps
//! left unfinished (crash, shutdown, outage); every `service.sweep_interval_secs` it
//! sweeps each tenant that has policies.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;

use super::lock::SweepLock;
use super::run::{self, system_context};
use super::store;
use crate::policies::store as policies;
use crate::state::Retention;

/// Runs until `shutdown`.
pub async fn run(state: Arc<Retention>, shutdown: CancellationToken) {
    let interval = state.settings.sweep_interval_secs;
    loop {
        if let Err(error) = resume_unfinished(&state, &shutdown).await {
            warn("resuming unfinished sweeps failed", error);
        }
        if interval == 0 {
            // No schedule: resuming on start was all there is to do.
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(interval)) => {}
        }
        if let Err(error) = sweep_all(&state, &shutdown).await {
            warn("scheduled sweep failed", error);
        }
    }
}

fn warn(what: &str, error: ServiceError) {
    let status = tonic::Status::from(error);
    tracing::warn!(error = %status.message(), "{what}");
}

/// Finishes every unfinished sweep whose tenant lock is free (a locked one is being
/// worked on by a live sweep here or in another replica).
pub async fn resume_unfinished(
    state: &Retention,
    shutdown: &CancellationToken,
) -> Result<(), ServiceError> {
    let unfinished = {
        let mut conn = state.pool.acquire().await?;
        store::unfinished(&mut conn).await?
    };
    for (sweep_id, tenant) in unfinished {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let tenant = TenantId::from_uuid(tenant);
        let Some(lock) = SweepLock::try_acquire(&state.pool, tenant).await? else {
            continue;
        };
        let outcome = async {
            let mut conn = state.pool.acquire().await?;
            // Someone may have finished it between the listing and the lock.
            let Some(started_at) = store::unfinished_start(&mut conn, sweep_id).await? else {
                return Ok(());
            };
            drop(conn);
            tracing::info!(%sweep_id, "resuming an unfinished sweep");
            let context = system_context(tenant, sweep_id);
            run::execute(
                state,
                sweep_id,
                tenant,
                started_at,
                &context,
                Some(shutdown),
            )
            .await?;
            Ok::<(), ServiceError>(())
        }
        .await;
        lock.release().await;
        outcome?;
    }
    Ok(())
}

/// One scheduled sweep of every tenant with policies; a busy tenant is skipped.
async fn sweep_all(state: &Retention, shutdown: &CancellationToken) -> Result<(), ServiceError> {
    let tenants = {
        let mut conn = state.pool.acquire().await?;
        policies::tenants_with_policies(&mut conn).await?
    };
    for tenant in tenants {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let order = super::Order {
            tenant: TenantId::from_uuid(tenant),
            dry_run: false,
            categories: Vec::new(),
            trigger: super::Trigger::Schedule,
        };
        match super::run(state, order, Some(shutdown)).await {
            Ok(_) | Err(ServiceError::FailedPrecondition(_)) => {}
            Err(error) => warn("a tenant's scheduled sweep failed", error),
        }
    }
    Ok(())
}
