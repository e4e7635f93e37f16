//! Helpers for the end-to-end tests: the whole stack on a test environment, and clients
//! that talk to it the way a chatbot backend or an operator would.

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message as _;

use tonic::Request;
use tonic::transport::Channel;
use veil_cli::stack::{Stack, StackSettings};
use veil_core::auth::attach_bearer;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::Role as ProtoRole;
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::{CreateApiKeyRequest, CreateTenantRequest};
use veil_testkit::{Running, TestEnv, spawn};

/// The bootstrap platform-admin key of every test stack.
pub const BOOTSTRAP_KEY: &str = "test-bootstrap-key-0123456789abcdef0123456789";

/// Settings of all five services on `env`.
pub fn stack_settings(env: &TestEnv) -> StackSettings {
    StackSettings {
        gateway: env.settings("gateway"),
        consent: env.settings("consent"),
        vault: env.settings("vault"),
        retention: env.settings("retention"),
        audit: env.settings("audit"),
    }
    .with_throwaway_keys(BOOTSTRAP_KEY)
}

/// Five running services.
pub struct TestStack {
    /// `(name, running)`; the gateway is last.
    pub services: Vec<(&'static str, Running)>,
}

impl TestStack {
    /// Builds and spawns the stack on `settings`.
    pub async fn start(settings: StackSettings) -> anyhow::Result<Self> {
        let stack = Stack::build(settings).await?;
        let services = stack
            .services
            .into_iter()
            .map(|(name, service)| (name, spawn(service)))
            .collect();
        Ok(Self { services })
    }

    /// The running service called `name`.
    pub fn service(&self, name: &str) -> &Running {
        self.services
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// A channel to `name`.
    pub async fn channel(&self, name: &str) -> anyhow::Result<Channel> {
        veil_testkit::probe::connect(&self.service(name).url(), Duration::from_secs(10)).await
    }

    /// Stops every service gracefully.
    pub async fn stop(self) -> anyhow::Result<()> {
        for (_, running) in self.services.into_iter().rev() {
            running.stop().await?;
        }
        Ok(())
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    attach_bearer(&mut request, token).expect("a token is a valid header value");
    request
}

/// A tenant and a bot key, created through the admin API with the bootstrap key.
pub struct TestTenant {
    /// Tenant id.
    pub id: TenantId,
    /// Admin key secret.
    pub admin_key: String,
    /// Bot key secret.
    pub bot_key: String,
}

/// Creates a tenant with an admin key and a bot key.
pub async fn create_tenant(gateway: Channel, slug: &str) -> anyhow::Result<TestTenant> {
    let mut admin = AdminServiceClient::new(gateway);
    let created = admin
        .create_tenant(bearer(
            CreateTenantRequest {
                name: format!("Tenant {slug}"),
                slug: slug.into(),
                create_admin_key: true,
                ..Default::default()
            },
            BOOTSTRAP_KEY,
        ))
        .await?
        .into_inner();
    let id: TenantId = created.tenant.unwrap_or_default().tenant_id.parse()?;
    let admin_key = created.admin_key.unwrap_or_default().secret;
    let bot_key = admin
        .create_api_key(bearer(
            CreateApiKeyRequest {
                name: "bot".into(),
                roles: vec![ProtoRole::Bot as i32],
                ..Default::default()
            },
            &admin_key,
        ))
        .await?
        .into_inner()
        .created
        .unwrap_or_default()
        .secret;
    Ok(TestTenant {
        id,
        admin_key,
        bot_key,
    })
}

/// An internal token for `audience`, as the gateway would mint it for `tenant`.
pub fn internal_token(
    env: &TestEnv,
    audience: &str,
    tenant: Option<TenantId>,
    roles: &[Role],
) -> anyhow::Result<String> {
    env.token(audience, "e2e-test", tenant, roles)
}

/// The consent-based `support` purpose (consent required) that the retention tests and
/// benchmarks record consent for.
pub fn support_purpose() -> veil_proto::consent::v1::UpsertPurposeRequest {
    veil_proto::consent::v1::UpsertPurposeRequest {
        purpose: Some(veil_proto::consent::v1::Purpose {
            key: "support".into(),
            name: "Support".into(),
            legal_basis: veil_proto::common::v1::LegalBasis::Consent as i32,
            consent_required: true,
            ..Default::default()
        }),
    }
}

/// The values the vault revealed, per entity type, one map per reveal event, oldest first.
pub async fn vault_reveals(env: &TestEnv) -> anyhow::Result<Vec<BTreeMap<String, i64>>> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE subject LIKE '%.vault.revealed' ORDER BY id",
    )
    .fetch_all(&env.db.pool("vault").await?)
    .await?;
    payloads
        .iter()
        .map(|payload| match Event::decode(payload.as_slice())?.payload {
            Some(Payload::VaultRevealed(revealed)) => Ok(revealed.counts.into_iter().collect()),
            other => anyhow::bail!("not a reveal: {other:?}"),
        })
        .collect()
}
