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

mod common;

use std::time::{Duration, Instant};

use common::{Base, ROWS, samples_arg, summary};
use tonic::transport::Channel;
use veil_core::types::Role;
use veil_e2e::{bearer, stack_settings, support_purpose};
use veil_proto::common::v1::{CollectionMethod, Jurisdiction, RequestState, RequestType};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{ConsentChoice, RecordConsentRequest};
use veil_proto::retention::v1::{GetRequestRequest, SubmitRequestRequest};
use veil_proto::vault::v1::PutRecordRequest;
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_testkit::TestEnv;

struct Bench {
    base: Base,
    vault: VaultServiceClient<Channel>,
    consent: ConsentServiceClient<Channel>,
}

impl Bench {
    async fn start() -> Self {
        let env = TestEnv::new().await.unwrap();
        let mut settings = stack_settings(&env);
        settings.retention.service.saga_retry_secs = 2;
        let base = Base::start(env, settings, "bench").await;
        let vault = VaultServiceClient::new(base.stack.channel("vault").await.unwrap());
        let consent = ConsentServiceClient::new(base.stack.channel("consent").await.unwrap());
        let bench = Self {
            base,
            vault,
            consent,
        };
        let token = bench.base.token("consent", Role::PrivacyOfficer);
        bench
            .consent
            .clone()
            .upsert_purpose(bearer(support_purpose(), &token))
            .await
            .unwrap();
        bench
    }

    /// A subject as the erasure finds it: turns, a vault record, a consent record.
    async fn seed_subject(&self, subject: &str) {
        self.base.seed_gateway(subject, 0).await;
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
                &self.base.token("vault", Role::PrivacyOfficer),
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
                &self.base.token("consent", Role::PrivacyOfficer),
            ))
            .await
            .unwrap();
    }

    /// Submit -> COMPLETED with a certificate, polled every 2 ms.
    async fn erase(&self, subject: &str) -> Duration {
        let token = self.base.token("retention", Role::PrivacyOfficer);
        let mut retention = self.base.retention.clone();
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
                .bind(self.base.tenant.as_uuid())
                .bind(self.base.subjects.subject_ref(&self.base.tenant, subject).as_str())
                .fetch_one(&self.base.gateway_db)
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
}

fn main() {
    let samples = samples_arg(15);
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
            bench.base.seed_gateway(&baseline, 0).await;
            deletes.push(bench.base.plain_delete(&baseline, false).await);
        }
        println!("erasure of a subject with {ROWS} messages (+{ROWS} pseudonym rows):");
        summary("saga submit -> COMPLETED+cert", erasures);
        summary("baseline: plain DELETEs", deletes);
        bench.base.stop().await;
    });
}
