//! Shared by the retention benchmarks: the stack with a tenant, subjects seeded straight
//! into the gateway schema (setup, not timed), the plain-`DELETE` baseline, samples from
//! the command line and the printed summary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tonic::transport::Channel;
use veil_cli::stack::StackSettings;
use veil_core::subjects::SubjectKeys;
use veil_core::types::{Role, TenantId};
use veil_e2e::{TestStack, create_tenant, internal_token};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_testkit::TestEnv;

/// Transcript turns (and as many pseudonym map rows) seeded per subject.
pub const ROWS: i64 = 10_000;

/// The stack, one tenant in it, and what the benchmarks reach directly.
pub struct Base {
    pub env: TestEnv,
    pub stack: TestStack,
    pub tenant: TenantId,
    pub subjects: SubjectKeys,
    pub gateway_db: sqlx::PgPool,
    pub retention: RetentionServiceClient<Channel>,
}

impl Base {
    /// Starts the stack of `settings` on `env` and creates the tenant `slug`.
    pub async fn start(env: TestEnv, settings: StackSettings, slug: &str) -> Self {
        let stack = TestStack::start(settings).await.unwrap();
        let tenant = create_tenant(stack.channel("gateway").await.unwrap(), slug)
            .await
            .unwrap()
            .id;
        let subjects = SubjectKeys::from_settings(&env.settings::<()>("bench").privacy).unwrap();
        let gateway_db = env.db.pool("gateway").await.unwrap();
        let retention = RetentionServiceClient::new(stack.channel("retention").await.unwrap());
        Self {
            env,
            stack,
            tenant,
            subjects,
            gateway_db,
            retention,
        }
    }

    /// An internal token for `audience` with `role` in the tenant.
    pub fn token(&self, audience: &str, role: Role) -> String {
        internal_token(&self.env, audience, Some(self.tenant), &[role]).unwrap()
    }

    /// `ROWS` turns and `ROWS` map rows of `subject`, created `days_old` days ago.
    pub async fn seed_gateway(&self, subject: &str, days_old: i32) {
        let subject_ref = self.subjects.subject_ref(&self.tenant, subject);
        let mut tx = self.gateway_db.begin().await.unwrap();
        let tables = [
            "INSERT INTO transcript_messages (message_id, tenant_id, conversation_id, subject_ref,
                 turn_index, role, redacted_text, created_at)
             SELECT gen_random_uuid(), $1, $2 || '-' || (i / 100), $3, i % 100, 1,
                    'Please call me at <PHONE_NUMBER_1>, turn ' || i,
                    now() - make_interval(days => $5)
             FROM generate_series(0, $4 - 1) AS i",
            "INSERT INTO conversation_pseudonyms (tenant_id, conversation_id, token, placeholder,
                 entity_type, number, subject_ref, created_at)
             SELECT $1, $2 || '-' || (i / 100), 'tok_BENCH_' || $2 || '_' || i,
                    '<PHONE_NUMBER_' || (i % 100 + 1) || '>', 'PHONE_NUMBER', i % 100 + 1, $3,
                    now() - make_interval(days => $5)
             FROM generate_series(0, $4 - 1) AS i",
        ];
        for sql in tables {
            sqlx::query(sql)
                .bind(self.tenant.as_uuid())
                .bind(subject)
                .bind(subject_ref.as_str())
                .bind(ROWS)
                .bind(days_old)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// The baseline: the seeded rows of `subject` removed with one plain `DELETE` per
    /// table in one transaction (what Postgres alone needs); `expired_only` selects them
    /// as a 30-day sweep does, by age too.
    pub async fn plain_delete(&self, subject: &str, expired_only: bool) -> Duration {
        let subject_ref = self.subjects.subject_ref(&self.tenant, subject);
        let age = if expired_only {
            " AND created_at < now() - interval '30 days'"
        } else {
            ""
        };
        let started = Instant::now();
        let mut tx = self.gateway_db.begin().await.unwrap();
        for table in ["transcript_messages", "conversation_pseudonyms"] {
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND subject_ref = $2{age}"
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

    /// Stops the stack.
    pub async fn stop(self) {
        self.stack.stop().await.unwrap();
    }
}

/// Samples to take: `--samples N` (else `default`) under `cargo bench`, one under
/// `cargo test --benches`.
pub fn samples_arg(default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return 1;
    }
    args.iter()
        .position(|a| a == "--samples")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// One line: median, p99, min and max of `samples`.
pub fn summary(name: &str, mut samples: Vec<Duration>) {
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
