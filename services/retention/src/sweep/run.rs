//! Running a sweep: a dry run asks every owner to count once; a real run records its
//! plan, then works through the steps batch by batch, recording each batch, and closes
//! each step together with its `retention_purge_completed` event.

use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::{
    Actor, ActorKind, PurgeCriteria, PurgeOutcome, RetentionAction, VeilService,
};
use veil_proto::events::v1::RetentionPurgeCompleted;
use veil_proto::events::v1::event::Payload;
use veil_proto::retention::v1::{RunSweepResponse, SweepResult};

use super::owners;
use super::plan::{Step, plan};
use super::store::{self, StepRow};
use crate::holds;
use crate::policies::store as policies;
use crate::state::Retention;

/// Items a dry run asks each owner to count: the most any owner handles per call, so
/// the dry run covers what several real batches would.
const DRY_RUN_BATCH: i32 = 10_000;

/// Batches one step may take in one sweep; the next sweep goes on from there.
const MAX_BATCHES: i32 = 10_000;

/// The event context of sweeps nobody asked for (schedule, resumption).
pub fn system_context(tenant: TenantId, sweep_id: Uuid) -> EventContext {
    EventContext {
        tenant: Some(tenant),
        subject_ref: None,
        actor: Some(Actor {
            kind: ActorKind::System as i32,
            principal_id: crate::NAME.into(),
            roles: Vec::new(),
            tenant_id: String::new(),
        }),
        request_id: sweep_id.to_string(),
    }
}

/// What every call of a step asks; the caller adds holds, mode, batch size and sweep id.
fn criteria(
    category: i32,
    purpose_key: &str,
    action: i32,
    cutoff: OffsetDateTime,
) -> PurgeCriteria {
    PurgeCriteria {
        category,
        purpose_key: purpose_key.to_string(),
        cutoff: Some(timestamp(cutoff)),
        action,
        ..Default::default()
    }
}

/// One batch (or one count) at the step's owner, and the transaction its bookkeeping
/// goes in: for retention's own data the batch's transaction itself (so both commit
/// together); otherwise one opened after the remote call, so no connection idles in a
/// transaction while another service works. A failed local batch is rolled back.
async fn batch(
    state: &Retention,
    tenant: TenantId,
    service: VeilService,
    criteria: PurgeCriteria,
) -> Result<(Result<PurgeOutcome, String>, Transaction<'static, Postgres>), ServiceError> {
    let outcome = match service {
        VeilService::Retention => {
            let mut tx = veil_core::db::begin(&state.pool).await?;
            match owners::local(&mut tx, state, tenant, &criteria).await {
                Ok(outcome) => return Ok((Ok(outcome), tx)),
                Err(error) => {
                    tx.rollback().await?;
                    Err(owners::describe(&error.into()))
                }
            }
        }
        VeilService::Audit => Ok(owners::audit_kept(criteria.dry_run)),
        _ => owners::remote(state, tenant, service, criteria)
            .await
            .map_err(|status| owners::describe(&status)),
    };
    Ok((outcome, veil_core::db::begin(&state.pool).await?))
}

/// A dry run: every policy's owner counts once; nothing is recorded or emitted.
pub async fn dry_run(
    state: &Retention,
    tenant: TenantId,
    steps_of: impl FnOnce(&[policies::PolicyRow]) -> Vec<Step>,
) -> Result<RunSweepResponse, ServiceError> {
    let sweep_id = Uuid::now_v7();
    let started_at = OffsetDateTime::now_utc();
    let mut conn = state.pool.acquire().await?;
    if holds::tenant_hold(&mut conn, tenant).await?.is_some() {
        return Ok(response(sweep_id, true, Vec::new(), true, started_at));
    }
    let held = holds::held_subject_refs(&mut conn, tenant).await?;
    let steps = steps_of(&policies::all(&mut conn, tenant).await?);
    drop(conn);
    let mut results = Vec::with_capacity(steps.len());
    for step in &steps {
        let criteria = PurgeCriteria {
            held_subject_refs: held.clone(),
            dry_run: true,
            batch_limit: DRY_RUN_BATCH,
            sweep_id: sweep_id.to_string(),
            ..criteria(
                step.category as i32,
                &step.purpose_key,
                step.action as i32,
                step.cutoff,
            )
        };
        // Rolled back: a dry run must not even keep the row locks of retention's own
        // purges.
        let (counted, tx) = batch(state, tenant, step.service, criteria).await?;
        tx.rollback().await?;
        let (outcome, error) = match counted {
            Ok(outcome) => (Some(outcome), String::new()),
            Err(error) => (None, error),
        };
        results.push(SweepResult {
            service: step.service as i32,
            category: step.category as i32,
            purpose_key: step.purpose_key.clone(),
            action: step.action as i32,
            cutoff: Some(timestamp(step.cutoff)),
            outcome,
            error,
        });
    }
    Ok(response(sweep_id, true, results, false, started_at))
}

fn response(
    sweep_id: Uuid,
    dry_run: bool,
    results: Vec<SweepResult>,
    blocked_by_hold: bool,
    started_at: OffsetDateTime,
) -> RunSweepResponse {
    RunSweepResponse {
        sweep_id: sweep_id.to_string(),
        dry_run,
        results,
        blocked_by_hold,
        started_at: Some(timestamp(started_at)),
        finished_at: Some(timestamp(OffsetDateTime::now_utc())),
    }
}

/// Records a new real sweep of `tenant` over `steps`; returns its id and start.
pub async fn create(
    state: &Retention,
    tenant: TenantId,
    trigger: &str,
    steps_of: impl FnOnce(&[policies::PolicyRow]) -> Vec<Step>,
) -> Result<(Uuid, OffsetDateTime), ServiceError> {
    let sweep_id = Uuid::now_v7();
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let steps = steps_of(&policies::all(&mut tx, tenant).await?);
    let started_at = store::create(&mut tx, sweep_id, tenant, trigger, &steps).await?;
    tx.commit().await?;
    Ok((sweep_id, started_at))
}

/// The steps of a sweep at `now` over `categories` (all when empty).
pub fn planner(
    categories: &[veil_proto::common::v1::DataCategory],
) -> impl FnOnce(&[policies::PolicyRow]) -> Vec<Step> + '_ {
    move |rows| plan(rows, categories, OffsetDateTime::now_utc())
}

/// Works through the unfinished steps of a recorded sweep; the caller holds the
/// tenant's sweep lock. `None` when `shutdown` interrupted it (it stays unfinished and
/// is resumed later).
pub async fn execute(
    state: &Retention,
    sweep_id: Uuid,
    tenant: TenantId,
    started_at: OffsetDateTime,
    context: &EventContext,
    shutdown: Option<&CancellationToken>,
) -> Result<Option<RunSweepResponse>, ServiceError> {
    let mut conn = state.pool.acquire().await?;
    if holds::tenant_hold(&mut conn, tenant).await?.is_some() {
        store::finish(&mut conn, sweep_id, true).await?;
        return Ok(Some(response(
            sweep_id,
            false,
            Vec::new(),
            true,
            started_at,
        )));
    }
    let held = holds::held_subject_refs(&mut conn, tenant).await?;
    let mut steps = store::steps(&mut conn, sweep_id).await?;
    drop(conn);
    for step in steps.iter_mut().filter(|s| !s.done) {
        if !run_step(state, sweep_id, tenant, step, &held, context, shutdown).await? {
            return Ok(None);
        }
    }
    let mut conn = state.pool.acquire().await?;
    store::finish(&mut conn, sweep_id, false).await?;
    let results = steps.iter().map(StepRow::result).collect();
    Ok(Some(response(sweep_id, false, results, false, started_at)))
}

/// Runs one step's batches until its owner has nothing more; false when interrupted.
async fn run_step(
    state: &Retention,
    sweep_id: Uuid,
    tenant: TenantId,
    step: &mut StepRow,
    held: &[String],
    context: &EventContext,
    shutdown: Option<&CancellationToken>,
) -> Result<bool, ServiceError> {
    let service = VeilService::try_from(step.service).unwrap_or(VeilService::Unspecified);
    loop {
        if shutdown.is_some_and(CancellationToken::is_cancelled) {
            return Ok(false);
        }
        let criteria = PurgeCriteria {
            held_subject_refs: held.to_vec(),
            dry_run: false,
            batch_limit: state.settings.sweep_batch_limit,
            sweep_id: sweep_id.to_string(),
            ..criteria(step.category, &step.purpose_key, step.action, step.cutoff)
        };
        let (outcome, mut tx) = batch(state, tenant, service, criteria).await?;
        step.done = match outcome {
            Ok(outcome) => {
                step.absorb(&outcome);
                let handled: i64 = outcome.counts.values().sum();
                if outcome.more_remaining && handled == 0 {
                    step.error = "the service reported more to purge but handled nothing; \
                                  the next sweep tries again"
                        .into();
                    true
                } else if outcome.more_remaining && step.batches >= MAX_BATCHES {
                    step.error =
                        format!("stopped after {MAX_BATCHES} batches; the next sweep goes on");
                    true
                } else {
                    !outcome.more_remaining
                }
            }
            Err(error) => {
                step.error = error;
                true
            }
        };
        store::save_step(&mut tx, sweep_id, step).await?;
        // A step that failed before any batch changed nothing: there is nothing to report.
        let announce = step.done && (step.error.is_empty() || step.batches > 0);
        if announce {
            let event = RetentionPurgeCompleted {
                sweep_id: sweep_id.to_string(),
                service: step.service,
                category: step.category,
                purpose_key: step.purpose_key.clone(),
                action: step.action,
                outcome: Some(step.outcome(false)),
            };
            state
                .emit(&mut tx, context, Payload::RetentionPurgeCompleted(event))
                .await?;
        }
        tx.commit().await?;
        if step.done {
            if announce {
                state.notify_relay();
            }
            if !step.error.is_empty() {
                tracing::warn!(
                    %sweep_id,
                    policy_id = %step.policy_id,
                    service = step.service,
                    category = step.category,
                    action = ?RetentionAction::try_from(step.action).ok(),
                    error = %step.error,
                    "sweep step failed; the sweep goes on"
                );
            }
            return Ok(true);
        }
    }
}
