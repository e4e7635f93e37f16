//! Sweeps inside the retention service alone (its peers unreachable): results per
//! policy, errors that do not stop the sweep, tenant-wide holds, the lock against
//! concurrent sweeps, roles, and the scheduled sweeper.

mod policies_common;

use std::time::Duration;

use policies_common::*;
use veil_core::types::TenantId;
use veil_proto::common::v1::{DataCategory, RetentionAction, VeilService};
use veil_proto::events::v1::event::Payload;
use veil_proto::retention::v1::*;

const DAY: i64 = 86_400;

async fn sweep(
    h: &Harness,
    dry_run: bool,
    categories: &[DataCategory],
) -> Result<RunSweepResponse, tonic::Status> {
    h.client
        .clone()
        .run_sweep(h.req(
            RunSweepRequest {
                dry_run,
                categories: categories.iter().map(|c| *c as i32).collect(),
            },
            OFFICER,
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_owner_is_reported_and_the_sweep_goes_on() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.set_policy(
        DataCategory::VaultRecord,
        "",
        30 * DAY,
        RetentionAction::Delete,
    )
    .await?;
    h.set_policy(
        DataCategory::AuditEvent,
        "",
        30 * DAY,
        RetentionAction::Anonymize,
    )
    .await?;
    h.set_policy(
        DataCategory::DsrRecord,
        "",
        800 * DAY,
        RetentionAction::Anonymize,
    )
    .await?;

    let done = sweep(&h, false, &[]).await?;
    assert!(!done.blocked_by_hold && !done.dry_run);
    let by_category: Vec<(i32, i32, bool)> = done
        .results
        .iter()
        .map(|r| (r.category, r.service, r.error.is_empty()))
        .collect();
    assert_eq!(
        by_category,
        [
            // The vault is unreachable: its result carries the error...
            (
                DataCategory::VaultRecord as i32,
                VeilService::Vault as i32,
                false
            ),
            // ...and the others still ran.
            (
                DataCategory::AuditEvent as i32,
                VeilService::Audit as i32,
                true
            ),
            (
                DataCategory::DsrRecord as i32,
                VeilService::Retention as i32,
                true
            ),
        ]
    );
    assert!(
        done.results[0].error.starts_with("Unavailable"),
        "{:?}",
        done.results[0].error
    );
    let dsr = done.results[2].outcome.clone().unwrap_or_default();
    assert_eq!(dsr.counts.get("requests_minimized"), Some(&0));

    // Recorded and finished; an event per step that ran (none for the failed vault call,
    // which changed nothing).
    let pool = h.db().await?;
    let (trigger, finished): (String, bool) = sqlx::query_as(
        "SELECT trigger, finished_at IS NOT NULL FROM sweeps WHERE sweep_id = $1::uuid",
    )
    .bind(&done.sweep_id)
    .fetch_one(&pool)
    .await?;
    assert_eq!((trigger.as_str(), finished), ("manual", true));
    let steps: Vec<(bool, String)> = sqlx::query_as(
        "SELECT done, error FROM sweep_steps WHERE sweep_id = $1::uuid ORDER BY ordinal",
    )
    .bind(&done.sweep_id)
    .fetch_all(&pool)
    .await?;
    assert!(steps.iter().all(|(done, _)| *done));
    let announced: Vec<_> = h
        .outbox()
        .await?
        .into_iter()
        .filter_map(|(_, e)| match e.payload {
            Some(Payload::RetentionPurgeCompleted(p)) => Some((p.category, e.actor)),
            _ => None,
        })
        .collect();
    let categories: Vec<i32> = announced.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        categories,
        [
            DataCategory::AuditEvent as i32,
            DataCategory::DsrRecord as i32
        ]
    );
    // A manual sweep's events name the officer who ran it.
    assert_eq!(
        announced[0].1.as_ref().map(|a| a.principal_id.as_str()),
        Some("test-officer")
    );

    // Categories narrow the sweep; a dry run records nothing.
    let only_audit = sweep(&h, true, &[DataCategory::AuditEvent]).await?;
    assert_eq!(only_audit.results.len(), 1);
    assert!(
        only_audit.results[0]
            .outcome
            .as_ref()
            .is_some_and(|o| o.dry_run)
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM sweeps")
        .fetch_one(&pool)
        .await?;
    assert_eq!(recorded, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_holds_block_and_a_running_sweep_locks_out_a_second() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.set_policy(
        DataCategory::AuditEvent,
        "",
        30 * DAY,
        RetentionAction::Restrict,
    )
    .await?;
    // Hold the tenant's sweep lock the way a running sweep (here or in another replica)
    // does.
    let pool = h.db().await?;
    let mut holder = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(0x5253_5750_i32)
        .bind(h.tenant.to_string())
        .fetch_one(&mut *holder)
        .await?;
    assert!(locked);
    let busy = sweep(&h, false, &[])
        .await
        .expect_err("the tenant is being swept");
    assert_eq!(busy.code(), tonic::Code::FailedPrecondition);
    // Dry runs change nothing and need no lock; other tenants are not affected.
    assert_eq!(sweep(&h, true, &[]).await?.results.len(), 1);
    let other = TenantId::generate();
    h.client
        .clone()
        .run_sweep(h.req_as(other, RunSweepRequest::default(), OFFICER))
        .await?;
    sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
        .bind(0x5253_5750_i32)
        .bind(h.tenant.to_string())
        .execute(&mut *holder)
        .await?;
    assert_eq!(sweep(&h, false, &[]).await?.results.len(), 1);

    h.client
        .clone()
        .place_hold(h.req(
            PlaceHoldRequest {
                reason: "regulator inquiry".into(),
                ..Default::default()
            },
            OFFICER,
        ))
        .await?;
    let blocked = sweep(&h, false, &[]).await?;
    assert!(blocked.blocked_by_hold);
    assert!(blocked.results.is_empty());
    let flagged: bool =
        sqlx::query_scalar("SELECT blocked_by_hold FROM sweeps WHERE sweep_id = $1::uuid")
            .bind(&blocked.sweep_id)
            .fetch_one(&pool)
            .await?;
    assert!(flagged);
    assert!(sweep(&h, true, &[]).await?.blocked_by_hold);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn run_sweep_needs_an_officer_and_known_categories() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for roles in [BOT, AUDITOR, ADMIN] {
        let status = h
            .client
            .clone()
            .run_sweep(h.req(RunSweepRequest::default(), roles))
            .await
            .expect_err("not an officer");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }
    let status = sweep(
        &h,
        true,
        &[DataCategory::Transcript, DataCategory::Unspecified],
    )
    .await
    .expect_err("unspecified category");
    assert_eq!(invalid_field(&status), "categories[1]");
    // No policy, nothing to do.
    let empty = sweep(&h, false, &[]).await?;
    assert!(empty.results.is_empty() && !empty.blocked_by_hold);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_sweeps_every_tenant_with_policies() -> anyhow::Result<()> {
    let h = Harness::start_with(|s| s.sweep_interval_secs = 1).await?;
    h.set_policy(
        DataCategory::AuditEvent,
        "",
        30 * DAY,
        RetentionAction::Anonymize,
    )
    .await?;
    let pool = h.db().await?;
    let tenant = h.tenant.as_uuid();
    veil_testkit::eventually(Duration::from_secs(15), || {
        let pool = pool.clone();
        async move {
            let finished: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sweeps
                 WHERE tenant_id = $1 AND trigger = 'schedule' AND finished_at IS NOT NULL",
            )
            .bind(tenant)
            .fetch_one(&pool)
            .await
            .ok()?;
            (finished > 0).then_some(())
        }
    })
    .await?;
    let scheduled = h
        .outbox()
        .await?
        .into_iter()
        .find_map(|(_, e)| match e.payload {
            Some(Payload::RetentionPurgeCompleted(_)) => Some(e),
            _ => None,
        })
        .expect("a purge_completed event");
    // Nobody asked: the retention service itself is the actor.
    let actor = scheduled.actor.unwrap_or_default();
    assert_eq!(actor.principal_id, "retention");
    assert_eq!(scheduled.tenant_id, h.tenant.to_string());
    Ok(())
}
