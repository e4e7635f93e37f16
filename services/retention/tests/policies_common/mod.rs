//! Shared helpers of the policy, hold and sweep tests: one retention service on a fresh
//! database and NATS namespace, requests as a given tenant and role, the outbox decoded.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use sqlx::PgPool;
use tonic::Request;
use tonic::transport::Channel;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::{DataCategory, RetentionAction};
use veil_proto::events::v1::Event;
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::*;
use veil_retention::RetentionSettings;
use veil_testkit::{Running, TestEnv, spawn};

pub const OFFICER: &[Role] = &[Role::PrivacyOfficer];
pub const AUDITOR: &[Role] = &[Role::Auditor];
pub const ADMIN: &[Role] = &[Role::Admin];
pub const BOT: &[Role] = &[Role::Bot];

/// One retention service (its peers unreachable: these tests need none).
pub struct Harness {
    pub env: TestEnv,
    pub running: Running,
    pub client: RetentionServiceClient<Channel>,
    pub tenant: TenantId,
}

impl Harness {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut RetentionSettings)) -> anyhow::Result<Self> {
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
            .request("retention", "test-officer", Some(tenant), roles, message)
            .unwrap()
    }

    /// The retention schema.
    pub async fn db(&self) -> anyhow::Result<PgPool> {
        self.env.db.pool("retention").await
    }

    /// Events in the outbox, oldest first, with the last token of their subject.
    pub async fn outbox(&self) -> anyhow::Result<Vec<(String, Event)>> {
        use prost::Message as _;
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT subject, payload FROM outbox ORDER BY id")
                .fetch_all(&self.db().await?)
                .await?;
        rows.into_iter()
            .map(|(subject, payload)| {
                let kind = subject.rsplit('.').next().unwrap_or_default().to_string();
                Ok((kind, Event::decode(payload.as_slice())?))
            })
            .collect()
    }

    /// Sets a policy as a privacy officer.
    pub async fn set_policy(
        &self,
        category: DataCategory,
        purpose_key: &str,
        period_secs: i64,
        action: RetentionAction,
    ) -> Result<SetPolicyResponse, tonic::Status> {
        self.client
            .clone()
            .set_policy(self.req(
                SetPolicyRequest {
                    policy: Some(policy(category, purpose_key, period_secs, action)),
                },
                OFFICER,
            ))
            .await
            .map(|r| r.into_inner())
    }
}

/// A policy message.
pub fn policy(
    category: DataCategory,
    purpose_key: &str,
    period_secs: i64,
    action: RetentionAction,
) -> RetentionPolicy {
    RetentionPolicy {
        category: category as i32,
        purpose_key: purpose_key.into(),
        period: Some(prost_types::Duration {
            seconds: period_secs,
            nanos: 0,
        }),
        action: action as i32,
        ..Default::default()
    }
}

/// A retention instance on `env`.
pub async fn instance(
    env: &TestEnv,
    adjust: impl FnOnce(&mut RetentionSettings),
) -> anyhow::Result<(Running, RetentionServiceClient<Channel>)> {
    let mut settings = env.settings::<RetentionSettings>("retention");
    // Unreachable peers: a test that needs one fails loudly instead of finding another.
    for url in [
        &mut settings.service.gateway_url,
        &mut settings.service.vault_url,
        &mut settings.service.consent_url,
        &mut settings.service.audit_url,
    ] {
        *url = "http://127.0.0.1:9".into();
    }
    adjust(&mut settings.service);
    let running = spawn(veil_retention::build(settings).await?);
    let channel = veil_testkit::probe::connect(&running.url(), Duration::from_secs(10)).await?;
    Ok((running, RetentionServiceClient::new(channel)))
}

/// The field an INVALID_ARGUMENT names (its message starts with `invalid <field>:`).
pub fn invalid_field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .message()
        .strip_prefix("invalid ")
        .and_then(|m| m.split_once(':'))
        .map(|(field, _)| field.to_string())
        .unwrap_or_default()
}
