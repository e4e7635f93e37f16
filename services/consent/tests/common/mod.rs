//! Shared helpers of the consent service tests: a service on a fresh database and NATS
//! namespace, clients calling as a given tenant and role, and request builders.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use sqlx::PgPool;
use tonic::Request;
use tonic::transport::Channel;
use veil_consent::ConsentSettings;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::{CollectionMethod, Jurisdiction, LegalBasis, NoticeKind};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::*;
use veil_proto::events::v1::Event;
use veil_testkit::{Running, TestEnv, spawn};

/// A chatbot backend.
pub const BOT: &[Role] = &[Role::Bot];
/// A privacy officer.
pub const OFFICER: &[Role] = &[Role::PrivacyOfficer];
/// A tenant administrator.
pub const ADMIN: &[Role] = &[Role::Admin];
/// Another Veil service (retention, gateway).
pub const SERVICE: &[Role] = &[Role::Service];

/// One consent service on its own database, and the tenant the tests act in.
pub struct Harness {
    pub env: TestEnv,
    pub running: Running,
    pub client: ConsentServiceClient<Channel>,
    pub tenant: TenantId,
}

impl Harness {
    /// A service with the default `[service]` settings.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// A service whose `[service]` settings `adjust` changes.
    pub async fn start_with(adjust: impl FnOnce(&mut ConsentSettings)) -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let (running, client) = instance(&env, adjust).await?;
        Ok(Self {
            env,
            running,
            client,
            tenant: TenantId::generate(),
        })
    }

    /// A request of this harness's tenant with `roles`.
    pub fn req<T>(&self, message: T, roles: &[Role]) -> Request<T> {
        self.req_as(self.tenant, message, roles)
    }

    /// A request of `tenant` with `roles`.
    pub fn req_as<T>(&self, tenant: TenantId, message: T, roles: &[Role]) -> Request<T> {
        self.env
            .request("consent", "test-caller", Some(tenant), roles, message)
            .unwrap()
    }

    /// The consent schema, to inspect or tamper with rows.
    pub async fn db(&self) -> anyhow::Result<PgPool> {
        self.env.db.pool("consent").await
    }

    /// Events in the outbox, decoded, oldest first.
    pub async fn outbox(&self) -> anyhow::Result<Vec<(String, Event)>> {
        use prost::Message as _;
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT subject, payload FROM outbox ORDER BY id")
                .fetch_all(&self.db().await?)
                .await?;
        rows.into_iter()
            .map(|(subject, payload)| Ok((subject, Event::decode(payload.as_slice())?)))
            .collect()
    }

    /// Subjects of the outbox events, last token only (`granted`, `withdrawn`, ...).
    pub async fn outbox_kinds(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .outbox()
            .await?
            .into_iter()
            .map(|(s, _)| s.rsplit('.').next().unwrap_or_default().to_string())
            .collect())
    }

    /// Creates a purpose (as admin) and returns it as stored.
    pub async fn purpose(&self, purpose: Purpose) -> anyhow::Result<Purpose> {
        let response = self
            .client
            .clone()
            .upsert_purpose(self.req(
                UpsertPurposeRequest {
                    purpose: Some(purpose),
                },
                ADMIN,
            ))
            .await?;
        Ok(response.into_inner().purpose.unwrap())
    }

    /// Publishes an English privacy notice covering every purpose.
    pub async fn notice(&self) -> anyhow::Result<Notice> {
        let response = self
            .client
            .clone()
            .publish_notice(self.req(
                PublishNoticeRequest {
                    kind: NoticeKind::PrivacyNotice as i32,
                    locale: "en".into(),
                    title: "Privacy notice".into(),
                    body: "We use your data for the purposes below.".into(),
                    ..Default::default()
                },
                OFFICER,
            ))
            .await?;
        Ok(response.into_inner().notice.unwrap())
    }

    /// Grants `keys` for `subject` under `notice` in the EU.
    pub async fn grant(
        &self,
        subject: &str,
        keys: &[&str],
        notice: &Notice,
    ) -> Result<RecordConsentResponse, tonic::Status> {
        self.client
            .clone()
            .record_consent(self.req(grant(subject, keys, notice), BOT))
            .await
            .map(|r| r.into_inner())
    }

    /// Withdraws `keys` (all when empty) for `subject`.
    pub async fn withdraw(
        &self,
        subject: &str,
        keys: &[&str],
    ) -> Result<WithdrawConsentResponse, tonic::Status> {
        self.client
            .clone()
            .withdraw_consent(self.req(
                WithdrawConsentRequest {
                    subject_id: subject.into(),
                    purpose_keys: keys.iter().map(|k| k.to_string()).collect(),
                    collection_method: CollectionMethod::Chat as i32,
                    ..Default::default()
                },
                BOT,
            ))
            .await
            .map(|r| r.into_inner())
    }

    /// The decisions for `subject` by id, in the EU.
    pub async fn check(
        &self,
        subject: &str,
        keys: &[&str],
    ) -> Result<Vec<(bool, i32)>, tonic::Status> {
        check_on(&self.client, self, subject, keys, Jurisdiction::EuGdpr).await
    }
}

/// Another consent instance on the same database and NATS namespace.
pub async fn instance(
    env: &TestEnv,
    adjust: impl FnOnce(&mut ConsentSettings),
) -> anyhow::Result<(Running, ConsentServiceClient<Channel>)> {
    let mut settings = env.settings::<ConsentSettings>("consent");
    adjust(&mut settings.service);
    let running = spawn(veil_consent::build_with(settings).await?);
    let channel = veil_testkit::probe::connect(&running.url(), Duration::from_secs(10)).await?;
    Ok((running, ConsentServiceClient::new(channel)))
}

/// `(allowed, reason)` per purpose, asked through `client`.
pub async fn check_on(
    client: &ConsentServiceClient<Channel>,
    harness: &Harness,
    subject: &str,
    keys: &[&str],
    jurisdiction: Jurisdiction,
) -> Result<Vec<(bool, i32)>, tonic::Status> {
    use veil_proto::common::v1::{ConsentDecision, SubjectSelector, subject_selector};
    let response = client
        .clone()
        .check_consent(harness.req(
            CheckConsentRequest {
                subject: Some(SubjectSelector {
                    subject: Some(subject_selector::Subject::SubjectId(subject.into())),
                }),
                purpose_keys: keys.iter().map(|k| k.to_string()).collect(),
                jurisdiction: jurisdiction as i32,
            },
            BOT,
        ))
        .await?
        .into_inner();
    Ok(response
        .decisions
        .iter()
        .map(|d| (d.decision == ConsentDecision::Allowed as i32, d.reason))
        .collect())
}

/// A consent-based purpose.
pub fn consent_purpose(key: &str) -> Purpose {
    Purpose {
        key: key.into(),
        name: format!("Purpose {key}"),
        legal_basis: LegalBasis::Consent as i32,
        data_categories: vec!["conversation_content".into()],
        ..Default::default()
    }
}

/// A grant of `keys` under `notice` in the EU, by chat.
pub fn grant(subject: &str, keys: &[&str], notice: &Notice) -> RecordConsentRequest {
    RecordConsentRequest {
        subject_id: subject.into(),
        purpose_keys: keys.iter().map(|k| k.to_string()).collect(),
        choice: ConsentChoice::Grant as i32,
        notice_id: notice.notice_id.clone(),
        language: "en".into(),
        collection_method: CollectionMethod::Chat as i32,
        jurisdiction: Jurisdiction::EuGdpr as i32,
        ..Default::default()
    }
}

/// The gRPC code of a failed call.
pub fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> tonic::Code {
    result.expect_err("call should fail").code()
}
