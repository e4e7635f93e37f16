//! Issue 8 performance target: a data-subject erasure of a subject with 10,000 messages
//! completes end to end in under 2 seconds.
//!
//! The whole stack runs in-process on a fresh `TestEnv` (real Postgres and NATS). Each
//! sample seeds a fresh subject with 10,000 transcript turns and 10,000 pseudonym map
//! rows (direct SQL into the gateway schema: setup only, not timed), a vault record and
//! a consent record, then times `SubmitRequest(ERASURE, identity_verified)` until
//! `GetRequest` reports COMPLETED with a certificate id: the erasure_requested event,
//! relay and NATS, the three services' erasures and their erasure_completed answers, and
//! the certificate issued in retention.
//!
//! Baseline in the same run: the same number of rows of another subject deleted with one
//! plain `DELETE` per table straight from the bench process (what Postgres alone needs).
//!
//! Run: `cargo bench -p veil-e2e --bench retention_erasure` (`-- --samples N`; under
//! `cargo test --benches` it runs one sample).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tonic::transport::Channel;
use veil_core::subjects::SubjectKeys;
use veil_core::types::{Role, TenantId};
use veil_e2e::{TestStack, bearer, create_tenant, internal_token, stack_settings};
use veil_proto::common::v1::{
    CollectionMethod, Jurisdiction, LegalBasis, RequestState, RequestType,
};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{ConsentChoice, Purpose, RecordConsentRequest, UpsertPurposeRequest};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::{GetRequestRequest, SubmitRequestRequest};
use veil_proto::vault::v1::PutRecordRequest;
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_testkit::TestEnv;

const TURNS: i64 = 10_000;

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
    vault: VaultServiceClient<Channel>,
    consent: ConsentServiceClient<Channel>,
}

impl Bench {
    async fn start() -> Self {
        let env = TestEnv::new().await.unwrap();
        let mut settings = stack_settings(&env);
        settings.retention.service.saga_retry_secs = 2;
        let stack = TestStack::start(settings).await.unwrap();
        let tenant = create_tenant(stack.channel("gateway").await.unwrap(), "bench")
            .await
            .unwrap()
            .id;
        let subjects = SubjectKeys::from_settings(&env.settings::<()>("bench").privacy).unwrap();
        let gateway_db = env.db.pool("gateway").await.unwrap();
        let retention = RetentionServiceClient::new(stack.channel("retention").await.unwrap());
        let vault = VaultServiceClient::new(stack.channel("vault").await.unwrap());
        let consent = ConsentServiceClient::new(stack.channel("consent").await.unwrap());
        let bench = Self {
            env,
            stack,
            tenant,
            subjects,
            gateway_db,
            retention,
            vault,
            consent,
        };
        let token = bench.token("consent", Role::PrivacyOfficer);
        bench
            .consent
            .clone()
            .upsert_purpose(bearer(
                UpsertPurposeRequest {
                    purpose: Some(Purpose {
                        key: "support".into(),
                        name: "Support".into(),
                        legal_basis: LegalBasis::Consent as i32,
                        consent_required: true,
                        ..Default::default()
                    }),
                },
                &token,
            ))
            .await
            .unwrap();
        bench
    }

    fn token(&self, audience: &str, role: Role) -> String {
        internal_token(&self.env, audience, Some(self.tenant), &[role]).unwrap()
    }

    /// 10,000 turns and pseudonym rows of `subject` in the gateway schema.
    async fn seed_gateway(&self, subject: &str) {
        let subject_ref = self.subjects.subject_ref(&self.tenant, subject);
        let mut tx = self.gateway_db.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO transcript_messages (message_id, tenant_id, conversation_id, subject_ref,
                 turn_index, role, redacted_text)
             SELECT gen_random_uuid(), $1, $2 || '-' || (i / 100), $3, i % 100, 1,
                    'Please call me at <PHONE_NUMBER_1>, turn ' || i
             FROM generate_series(0, $4 - 1) AS i",
        )
        .bind(self.tenant.as_uuid())
        .bind(subject)
        .bind(subject_ref.as_str())
        .bind(TURNS)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO conversation_pseudonyms (tenant_id, conversation_id, token, placeholder,
                 entity_type, number, subject_ref)
             SELECT $1, $2 || '-' || (i / 100), 'tok_BENCH_' || $2 || '_' || i,
                    '<PHONE_NUMBER_' || (i % 100 + 1) || '>', 'PHONE_NUMBER', i % 100 + 1, $3
             FROM generate_series(0, $4 - 1) AS i",
        )
        .bind(self.tenant.as_uuid())
        .bind(subject)
        .bind(subject_ref.as_str())
        .bind(TURNS)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    /// A subject as the erasure finds it: turns, a vault record, a consent record.
    async fn seed_subject(&self, subject: &str) {
        self.seed_gateway(subject).await;
        self.vault
            .clone()
            .put_record(bearer(
                PutRecordRequest {
                    subject_id: subject.into(),
                    category: "contact".into(),
                    field: "phone".into(),
                    value: b"+49 170 5550123".to_vec(),
                    content_type: "text/plain".into(),
                    ..Default::default()
                },
                &self.token("vault", Role::PrivacyOfficer),
            ))
            .await
            .unwrap();
        self.consent
            .clone()
            .record_consent(bearer(
                RecordConsentRequest {
                    subject_id: subject.into(),
                    purpose_keys: vec!["support".into()],
                    choice: ConsentChoice::Grant as i32,
                    collection_method: CollectionMethod::Chat as i32,
                    jurisdiction: Jurisdiction::UsCaCcpa as i32,
                    language: "en".into(),
                    ..Default::default()
                },
                &self.token("consent", Role::PrivacyOfficer),
            ))
            .await
            .unwrap();
    }

    /// Submit -> COMPLETED with a certificate, polled every 2 ms.
    async fn erase(&self, subject: &str) -> Duration {
        let token = self.token("retention", Role::PrivacyOfficer);
        let mut retention = self.retention.clone();
        let started = Instant::now();
        let request_id = retention
            .submit_request(bearer(
                SubmitRequestRequest {
                    subject_id: subject.into(),
                    request_type: RequestType::Erasure as i32,
                    jurisdiction: Jurisdiction::EuGdpr as i32,
                    locale: "en".into(),
                    identity_verified: true,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .request
            .unwrap()
            .request_id;
        loop {
            let request = retention
                .get_request(bearer(
                    GetRequestRequest {
                        request_id: request_id.clone(),
                    },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner()
                .request
                .unwrap();
            if request.state == RequestState::Completed as i32 {
                assert!(!request.certificate_id.is_empty(), "certificate issued");
                let elapsed = started.elapsed();
                let left: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM transcript_messages WHERE tenant_id = $1 AND subject_ref = $2",
                )
                .bind(self.tenant.as_uuid())
                .bind(self.subjects.subject_ref(&self.tenant, subject).as_str())
                .fetch_one(&self.gateway_db)
                .await
                .unwrap();
                assert_eq!(left, 0, "every turn erased");
                return elapsed;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "erasure did not complete"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The same rows removed by plain DELETEs in one transaction.
    async fn plain_delete(&self, subject: &str) -> Duration {
        let subject_ref = self.subjects.subject_ref(&self.tenant, subject);
        let started = Instant::now();
        let mut tx = self.gateway_db.begin().await.unwrap();
        let turns = sqlx::query(
            "DELETE FROM transcript_messages WHERE tenant_id = $1 AND subject_ref = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(subject_ref.as_str())
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
        sqlx::query(
            "DELETE FROM conversation_pseudonyms WHERE tenant_id = $1 AND subject_ref = $2",
        )
        .bind(self.tenant.as_uuid())
        .bind(subject_ref.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(turns as i64, TURNS);
        elapsed
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
        .unwrap_or(15)
}

fn main() {
    let samples = samples_arg();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bench = Bench::start().await;
        // One warm-up erasure (connections, prepared statements, consumers bound).
        bench.seed_subject("warmup").await;
        bench.erase("warmup").await;
        let mut erasures = Vec::new();
        let mut deletes = Vec::new();
        for i in 0..samples {
            let subject = format!("bench-subject-{i}");
            bench.seed_subject(&subject).await;
            erasures.push(bench.erase(&subject).await);
            let baseline = format!("baseline-subject-{i}");
            bench.seed_gateway(&baseline).await;
            deletes.push(bench.plain_delete(&baseline).await);
        }
        println!("erasure of a subject with {TURNS} messages (+{TURNS} pseudonym rows):");
        summary("saga submit -> COMPLETED+cert", erasures);
        summary("baseline: plain DELETEs", deletes);
        let Bench { stack, .. } = bench;
        stack.stop().await.unwrap();
    });
}
