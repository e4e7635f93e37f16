//! Retention sweeps: each policy's expired data purged through the service that owns it.
//!
//! - [`plan`]: one step per policy with its cutoff (pure).
//! - [`run`]: dry runs, and real runs recorded step by step so they resume after a crash
//!   without doing or announcing anything twice.
//! - [`schedule`]: the scheduled sweeper and the resumption of unfinished sweeps.

mod lock;
mod owners;
pub mod plan;
mod run;
mod schedule;
mod store;

use std::sync::Arc;

use veil_core::app::Foundation;
use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::DataCategory;
use veil_proto::retention::v1::RunSweepResponse;

use crate::state::Retention;
use lock::SweepLock;

/// A sweep to run.
pub struct Order {
    pub tenant: TenantId,
    pub dry_run: bool,
    /// Empty means every category with a policy.
    pub categories: Vec<DataCategory>,
    pub trigger: Trigger,
}

/// Who asked for a sweep.
pub enum Trigger {
    /// RunSweep; events carry the caller.
    Manual(EventContext),
    /// The schedule; events carry the retention service as a system actor.
    Schedule,
}

impl Trigger {
    fn label(&self) -> &'static str {
        match self {
            Trigger::Manual(_) => "manual",
            Trigger::Schedule => "schedule",
        }
    }
}

/// Starts the scheduled sweeper (and the resumption of unfinished sweeps) with the
/// service.
pub fn spawn(foundation: &mut Foundation, state: Arc<Retention>) {
    foundation.spawn_task("sweeper", move |shutdown| schedule::run(state, shutdown));
}

/// Runs a sweep in a task of its own, so a caller that goes away does not stop it
/// halfway (an unfinished real sweep would otherwise wait for the next resumption).
pub async fn run_detached(
    state: Arc<Retention>,
    order: Order,
) -> Result<RunSweepResponse, ServiceError> {
    tokio::spawn(async move { run(&state, order, None).await })
        .await
        .map_err(ServiceError::internal)?
}

/// Runs a sweep now. A real sweep needs the tenant's sweep lock: FAILED_PRECONDITION
/// while another sweep of the tenant runs.
pub async fn run(
    state: &Retention,
    order: Order,
    shutdown: Option<&tokio_util::sync::CancellationToken>,
) -> Result<RunSweepResponse, ServiceError> {
    if order.dry_run {
        return run::dry_run(state, order.tenant, run::planner(&order.categories)).await;
    }
    let Some(lock) = SweepLock::try_acquire(&state.pool, order.tenant).await? else {
        return Err(ServiceError::FailedPrecondition(
            "a sweep of this tenant is running; try again when it has finished".into(),
        ));
    };
    let outcome = async {
        let (sweep_id, started_at) = run::create(
            state,
            order.tenant,
            order.trigger.label(),
            run::planner(&order.categories),
        )
        .await?;
        let context = match &order.trigger {
            Trigger::Manual(context) => context.clone(),
            Trigger::Schedule => run::system_context(order.tenant, sweep_id),
        };
        run::execute(
            state,
            sweep_id,
            order.tenant,
            started_at,
            &context,
            shutdown,
        )
        .await?
        .ok_or_else(|| {
            ServiceError::Unavailable(
                "the service is shutting down; the sweep resumes when it starts again".into(),
            )
        })
    }
    .await;
    lock.release().await;
    outcome
}
