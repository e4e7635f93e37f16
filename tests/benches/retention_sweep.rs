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

use std::time::{Duration, Instant};

use tonic::transport::Channel;
use veil_core::subjects::SubjectKeys;
use veil_core::types::{Role, TenantId};
use veil_e2e::{TestStack, bearer, create_tenant, internal_token, stack_settings};
use veil_proto::common::v1::{DataCategory, RetentionAction};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::{RetentionPolicy, RunSweepRequest, SetPolicyRequest};
use veil_testkit::TestEnv;

const ROWS: i64 = 10_000;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<34} n={:<3} median {:>8.1} ms  p99 {:>8.1} ms  min {:>8.1} ms  max {:>8.1} ms",
        samples.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
}

struct Bench {
    env: TestEnv,
    stack: TestStack,
    tenant: TenantId,
    subjects: SubjectKeys,
    gateway_db: sqlx::PgPool,
    retention: RetentionServiceClient<Channel>,
}

impl Bench {
    async fn start() -> Self {
        let env = TestEnv::new().await.unwrap();
        let stack = TestStack::start(stack_settings(&env)).await.unwrap();
        let tenant = create_tenant(stack.channel("gateway").await.unwrap(), "sweep-bench")
            .await
            .unwrap()
            .id;
        let subjects = SubjectKeys::from_settings(&env.settings::<()>("bench").privacy).unwrap();
        let gateway_db = env.db.pool("gateway").await.unwrap();
        let retention = RetentionServiceClient::new(stack.channel("retention").await.unwrap());
        let bench = Self {
            env,
            stack,
            tenant,
            subjects,
            gateway_db,
            retention,
        };
        bench
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
        internal_token(
            &self.env,
            "retention",
            Some(self.tenant),
            &[Role::PrivacyOfficer],
        )
        .unwrap()
    }

    /// `ROWS` turns and `ROWS` map rows of `subject`, 40 days old.
    async fn seed(&self, subject: &str) {
        let subject_ref = self.subjects.subject_ref(&self.tenant, subject);
        let mut tx = self.gateway_db.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO transcript_messages (message_id, tenant_id, conversation_id, subject_ref,
                 turn_index, role, redacted_text, created_at)
             SELECT gen_random_uuid(), $1, $2 || '-' || (i / 100), $3, i % 100, 1,
                    'Please call me at <PHONE_NUMBER_1>, turn ' || i,
                    now() - interval '40 days'
             FROM generate_series(0, $4 - 1) AS i",
        )
        .bind(self.tenant.as_uuid())
        .bind(subject)
        .bind(subject_ref.as_str())
        .bind(ROWS)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO conversation_pseudonyms (tenant_id, conversation_id, token, placeholder,
                 entity_type, number, subject_ref, created_at)
             SELECT $1, $2 || '-' || (i / 100), 'tok_BENCH_' || $2 || '_' || i,
                    '<PHONE_NUMBER_' || (i % 100 + 1) || '>', 'PHONE_NUMBER', i % 100 + 1, $3,
                    now() - interval '40 days'
             FROM generate_series(0, $4 - 1) AS i",
        )
        .bind(self.tenant.as_uuid())
        .bind(subject)
        .bind(subject_ref.as_str())
        .bind(ROWS)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    /// A RunSweep; returns its time and the turns it handled.
    async fn sweep(&self, dry_run: bool) -> (Duration, i64) {
        let started = Instant::now();
        let response = self
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

    /// The baseline: the same rows deleted with one plain statement per table.
    async fn plain_delete(&self, subject: &str) -> Duration {
        let subject_ref = self.subjects.subject_ref(&self.tenant, subject);
        let started = Instant::now();
        let mut tx = self.gateway_db.begin().await.unwrap();
        for table in ["transcript_messages", "conversation_pseudonyms"] {
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND subject_ref = $2
                   AND created_at < now() - interval '30 days'"
            )))
            .bind(self.tenant.as_uuid())
            .bind(subject_ref.as_str())
            .execute(&mut *tx)
            .await
            .unwrap();
            assert_eq!(done.rows_affected() as i64, ROWS);
        }
        tx.commit().await.unwrap();
        started.elapsed()
    }
}

fn samples_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return 1;
    }
    args.iter()
        .position(|a| a == "--samples")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(11)
}

fn main() {
    let samples = samples_arg();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bench = Bench::start().await;
        // One warm-up sweep (connections, prepared statements).
        bench.seed("warmup").await;
        bench.sweep(false).await;
        let (mut dry_runs, mut sweeps, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..samples {
            let subject = format!("bench-subject-{i}");
            bench.seed(&subject).await;
            let (dry, counted) = bench.sweep(true).await;
            let (real, purged) = bench.sweep(false).await;
            assert_eq!((counted, purged), (ROWS, ROWS));
            dry_runs.push(dry);
            sweeps.push(real);
            let baseline = format!("baseline-subject-{i}");
            bench.seed(&baseline).await;
            deletes.push(bench.plain_delete(&baseline).await);
        }
        println!("sweep of {ROWS} expired turns (+{ROWS} pseudonym rows), batch limit 5000:");
        summary("RunSweep dry run", dry_runs);
        summary("RunSweep real (gateway Purge)", sweeps);
        summary("baseline: plain DELETEs", deletes);
        let Bench { stack, .. } = bench;
        stack.stop().await.unwrap();
    });
}
