//! Shared setup of the admin API tests: a gateway on its own (admin calls need no other
//! service), the bootstrap key, tenants with admin keys, and the outbox to read events.

#![allow(dead_code, clippy::unwrap_used)]

use prost::Message;
use tonic::Request;
use tonic::transport::Channel;
use veil_core::auth::attach_bearer;
use veil_proto::common::v1::Role as ProtoRole;
use veil_proto::events::v1::Event;
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::{CreateApiKeyRequest, CreateTenantRequest};
use veil_testkit::{Running, TestEnv};

/// The platform administrator's secret in these tests.
pub const BOOTSTRAP: &str = "admin-test-bootstrap-key-0123456789abcdef";

/// A running gateway with its environment.
pub struct Gateway {
    pub env: TestEnv,
    pub running: Running,
    pub channel: Channel,
}

/// Default gateway settings of a test (bootstrap key set).
pub fn settings(env: &TestEnv) -> veil_gateway::Config {
    let mut settings = env.settings::<veil_gateway::GatewaySettings>("gateway");
    settings.service.bootstrap_admin_key = veil_core::types::Personal::new(BOOTSTRAP.into());
    settings
}

impl Gateway {
    /// Starts a gateway with default test settings.
    pub async fn start() -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let settings = settings(&env);
        Self::start_with(env, settings).await
    }

    /// Starts a gateway with `settings`.
    pub async fn start_with(env: TestEnv, settings: veil_gateway::Config) -> anyhow::Result<Self> {
        let running = veil_testkit::spawn(veil_gateway::build(settings).await?);
        let channel =
            veil_testkit::probe::connect(&running.url(), std::time::Duration::from_secs(10))
                .await?;
        Ok(Self {
            env,
            running,
            channel,
        })
    }

    /// An admin client.
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// Creates a tenant; returns its id and the admin key's secret.
    pub async fn tenant(&self, slug: &str) -> anyhow::Result<(String, String)> {
        let created = self
            .admin()
            .create_tenant(bearer(
                CreateTenantRequest {
                    name: format!("Tenant {slug}"),
                    slug: slug.into(),
                    create_admin_key: true,
                    ..Default::default()
                },
                BOOTSTRAP,
            ))
            .await?
            .into_inner();
        Ok((
            created.tenant.unwrap().tenant_id,
            created.admin_key.unwrap().secret,
        ))
    }

    /// Creates a key with `roles` using `admin_key`; returns (key id, secret).
    pub async fn key(
        &self,
        admin_key: &str,
        roles: &[ProtoRole],
    ) -> anyhow::Result<(String, String)> {
        let created = self
            .admin()
            .create_api_key(bearer(
                CreateApiKeyRequest {
                    name: "test key".into(),
                    roles: roles.iter().map(|r| *r as i32).collect(),
                    ..Default::default()
                },
                admin_key,
            ))
            .await?
            .into_inner()
            .created
            .unwrap();
        Ok((created.api_key.unwrap().key_id, created.secret))
    }

    /// Every event of `kind` (for example `api_key_revoked`) in the gateway's outbox.
    pub async fn events(&self, kind: &str) -> anyhow::Result<Vec<Event>> {
        let pool = self.env.db.pool("gateway").await?;
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT payload FROM outbox WHERE subject LIKE $1 ORDER BY id")
                .bind(format!("%.gateway.{kind}"))
                .fetch_all(&pool)
                .await?;
        Ok(rows
            .iter()
            .map(|bytes| Event::decode(bytes.as_slice()).unwrap())
            .collect())
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    attach_bearer(&mut request, token).unwrap();
    request
}

/// The status code of a call's result.
pub fn code<T>(result: Result<T, tonic::Status>) -> tonic::Code {
    match result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}
