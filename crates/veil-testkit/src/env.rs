//! A test environment: one fresh database, one NATS namespace and freshly generated keys,
//! from which every service's settings are derived (port 0 everywhere).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use veil_core::auth::{Principal, attach_bearer};
use veil_core::config::{LogFormat, Settings};
use veil_core::events::EventsConfig;
use veil_core::types::{Personal, RequestId, Role, TenantId};

use crate::{TestDb, TestNats};

/// Database, NATS namespace and keys shared by the services of one test.
pub struct TestEnv {
    /// The test's database.
    pub db: TestDb,
    /// The test's stream and subject prefix on the shared NATS server.
    pub nats: TestNats,
    /// Base64 Ed25519 seed every service signs internal tokens with.
    pub signing_key: String,
    /// Base64 root of the subject pseudonym keys.
    pub subject_key: String,
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

impl TestEnv {
    /// Creates the database and the NATS namespace.
    pub async fn new() -> anyhow::Result<Self> {
        Ok(Self {
            db: TestDb::create().await?,
            nats: TestNats::new().await?,
            signing_key: random_key(),
            subject_key: random_key(),
        })
    }

    /// The event configuration of this test's namespace.
    pub fn events(&self) -> EventsConfig {
        self.nats.config().clone()
    }

    /// Settings for `service`: its own schema in the test database, port 0 listeners,
    /// this test's event namespace and keys, quiet logs.
    pub fn settings<S: Default>(&self, service: &str) -> Settings<S> {
        let mut settings = Settings::<S>::default();
        settings.server.grpc_addr = "127.0.0.1:0".into();
        settings.server.metrics_addr = "127.0.0.1:0".into();
        settings.server.drain_timeout_secs = 5;
        settings.database.url = Personal::new(self.db.url());
        settings.database.schema = service.to_string();
        settings.database.max_connections = 8;
        settings.nats.url = self.nats.url().to_string();
        settings.events = self.events();
        settings.telemetry.log_format = LogFormat::Pretty;
        settings.telemetry.log_level = "warn".into();
        settings.auth.signing_key = Personal::new(self.signing_key.clone());
        settings.auth.key_id = "test".into();
        settings.privacy.subject_key = Personal::new(self.subject_key.clone());
        settings
    }

    /// A token issuer with the test's signing key (to call internal services directly).
    pub fn issuer(&self) -> anyhow::Result<veil_core::auth::TokenIssuer> {
        let key = veil_core::auth::signing_key_from_base64(&self.signing_key)?;
        Ok(veil_core::auth::TokenIssuer::new(key, "test", "veil-test"))
    }

    /// An internal token for `audience`, as `principal_id` with `roles` in `tenant`.
    pub fn token(
        &self,
        audience: &str,
        principal_id: &str,
        tenant: Option<TenantId>,
        roles: &[Role],
    ) -> anyhow::Result<String> {
        let principal = Principal {
            tenant,
            principal_id: principal_id.parse()?,
            roles: roles.to_vec(),
            request_id: RequestId::generate(),
        };
        Ok(self.issuer()?.mint_for(audience, &principal)?)
    }

    /// `message` as a request to `audience` carrying such a [`Self::token`].
    pub fn request<T>(
        &self,
        audience: &str,
        principal_id: &str,
        tenant: Option<TenantId>,
        roles: &[Role],
        message: T,
    ) -> anyhow::Result<tonic::Request<T>> {
        let token = self.token(audience, principal_id, tenant, roles)?;
        let mut request = tonic::Request::new(message);
        attach_bearer(&mut request, &token)?;
        Ok(request)
    }
}
