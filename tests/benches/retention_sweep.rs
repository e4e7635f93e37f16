//! A retention sweep of 10,000 expired transcript turns and 10,000 pseudonym map rows:
//! `RunSweep` (dry run, then real) through retention and the gateway's internal `Purge`
//! with the default batch limit (5,000), against plain `DELETE`s of the same rows.
//!
//! The whole stack runs in-process on a fresh `TestEnv` (real Postgres and NATS). Each
//! sample seeds the rows of a fresh subject straight into the gateway schema, 40 days
//! old (setup, not timed); the tenant's transcript policy is 30 days, DELETE.
//!
//! Run: `cargo bench -p veil-e2e --bench retention_sweep` (`-- --samples N`; under
//! `cargo test --benches` it runs one sample).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Base, ROWS, samples_arg, summary};
use veil_core::types::Role;
use veil_e2e::{bearer, stack_settings};
use veil_proto::common::v1::{DataCategory, RetentionAction};
use veil_proto::retention::v1::{RetentionPolicy, RunSweepRequest, SetPolicyRequest};
use veil_testkit::TestEnv;

struct Bench {
    base: Base,
}

impl Bench {
    async fn start() -> Self {
        let env = TestEnv::new().await.unwrap();
        let settings = stack_settings(&env);
        let bench = Self {
            base: Base::start(env, settings, "sweep-bench").await,
        };
        bench
            .base
            .retention
            .clone()
            .set_policy(bearer(
                SetPolicyRequest {
                    policy: Some(RetentionPolicy {
                        category: DataCategory::Transcript as i32,
                        period: Some(prost_types::Duration {
                            seconds: 30 * 86_400,
                            nanos: 0,
                        }),
                        action: RetentionAction::Delete as i32,
                        ..Default::default()
                    }),
                },
                &bench.officer(),
            ))
            .await
            .unwrap();
        bench
    }

    fn officer(&self) -> String {
        self.base.token("retention", Role::PrivacyOfficer)
    }

    /// A RunSweep; returns its time and the turns it handled.
    async fn sweep(&self, dry_run: bool) -> (Duration, i64) {
        let started = Instant::now();
        let response = self
            .base
            .retention
            .clone()
            .run_sweep(bearer(
                RunSweepRequest {
                    dry_run,
                    categories: Vec::new(),
                },
                &self.officer(),
            ))
            .await
            .unwrap()
            .into_inner();
        let elapsed = started.elapsed();
        let result = &response.results[0];
        assert!(result.error.is_empty(), "{result:?}");
        let turns = result
            .outcome
            .as_ref()
            .and_then(|o| o.counts.get("turns").copied())
            .unwrap_or_default();
        (elapsed, turns)
    }
}

fn main() {
    let samples = samples_arg(11);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bench = Bench::start().await;
        // One warm-up sweep (connections, prepared statements).
        bench.base.seed_gateway("warmup", 40).await;
        bench.sweep(false).await;
        let (mut dry_runs, mut sweeps, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..samples {
            let subject = format!("bench-subject-{i}");
            bench.base.seed_gateway(&subject, 40).await;
            let (dry, counted) = bench.sweep(true).await;
            let (real, purged) = bench.sweep(false).await;
            assert_eq!((counted, purged), (ROWS, ROWS));
            dry_runs.push(dry);
            sweeps.push(real);
            let baseline = format!("baseline-subject-{i}");
            bench.base.seed_gateway(&baseline, 40).await;
            deletes.push(bench.base.plain_delete(&baseline, true).await);
        }
        println!("sweep of {ROWS} expired turns (+{ROWS} pseudonym rows), batch limit 5000:");
        summary("RunSweep dry run", dry_runs);
        summary("RunSweep real (gateway Purge)", sweeps);
        summary("baseline: plain DELETEs", deletes);
        bench.base.stop().await;
    });
}
