//! Shared helpers of the vault's integration tests: a vault on a fresh test environment,
//! calls as a given tenant and role, and the events the vault wrote to its outbox.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use prost::Message as _;
use tonic::Request;
use tonic::transport::Channel;
use veil_core::crypto::KeyBytes;
use veil_core::types::{Personal, Role, TenantId};
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_testkit::{Running, TestEnv, spawn};

/// A fresh random master key in base64.
pub fn random_key() -> String {
    KeyBytes::generate().to_base64().to_string()
}

/// Vault settings on `env` with the given master keys (version, base64).
pub fn config(env: &TestEnv, master_keys: &[(u32, &str)]) -> veil_vault::Config {
    let mut settings = env.settings::<veil_vault::VaultSettings>("vault");
    settings.service.master_keys = master_keys
        .iter()
        .map(|(version, key)| (version.to_string(), Personal::new(key.to_string())))
        .collect();
    settings.service.rewrap_poll_ms = 20;
    settings
}

/// A running vault and a client to it.
pub struct TestVault {
    pub env: TestEnv,
    pub running: Running,
    pub client: VaultServiceClient<Channel>,
    pub master_key: String,
}

impl TestVault {
    /// A vault with one random master key.
    pub async fn start() -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let master_key = random_key();
        let settings = config(&env, &[(1, &master_key)]);
        Self::start_with(env, settings, master_key).await
    }

    /// A vault on `env` with `settings`.
    pub async fn start_with(
        env: TestEnv,
        settings: veil_vault::Config,
        master_key: String,
    ) -> anyhow::Result<Self> {
        let running = spawn(veil_vault::build(settings).await?);
        let client = client(&running).await?;
        Ok(Self {
            env,
            running,
            client,
            master_key,
        })
    }

    /// `message` as a principal of `tenant` holding `roles`.
    pub fn call<T>(&self, tenant: Option<TenantId>, roles: &[Role], message: T) -> Request<T> {
        as_principal(&self.env, tenant, roles, message)
    }

    /// A pool on the vault's schema, to inspect or tamper with rows.
    pub async fn db(&self) -> anyhow::Result<sqlx::PgPool> {
        self.env.db.pool("vault").await
    }

    /// Events in the outbox, oldest first.
    pub async fn events(&self) -> anyhow::Result<Vec<Event>> {
        outbox(&self.db().await?).await
    }
}

/// A client of a running vault.
pub async fn client(running: &Running) -> anyhow::Result<VaultServiceClient<Channel>> {
    let channel = veil_testkit::probe::connect(&running.url(), Duration::from_secs(10)).await?;
    Ok(VaultServiceClient::new(channel))
}

/// `message` carrying an internal token for the vault.
pub fn as_principal<T>(
    env: &TestEnv,
    tenant: Option<TenantId>,
    roles: &[Role],
    message: T,
) -> Request<T> {
    env.request("vault", "vault-test", tenant, roles, message)
        .unwrap()
}

/// Every event in the outbox of `pool`, decoded.
pub async fn outbox(pool: &sqlx::PgPool) -> anyhow::Result<Vec<Event>> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await?;
    Ok(payloads
        .into_iter()
        .map(|p| Event::decode(p.as_slice()).unwrap())
        .collect())
}

/// The payloads of `events` that `pick` selects.
pub fn payloads<T>(events: &[Event], pick: impl Fn(&Payload) -> Option<T>) -> Vec<T> {
    events
        .iter()
        .filter_map(|e| e.payload.as_ref().and_then(&pick))
        .collect()
}

/// The gRPC code of a failed call.
pub fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> tonic::Code {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(status) => status.code(),
    }
}

/// The status of a failed call.
pub fn status<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> tonic::Status {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(status) => status,
    }
}
