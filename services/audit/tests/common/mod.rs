//! Helpers of the audit service tests: a running service on a fresh environment,
//! events published the way other services publish them, clients per role.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use prost::Message;
use tonic::Request;
use tonic::transport::Channel;
use veil_audit::AuditSettings;
use veil_core::auth::attach_bearer;
use veil_core::emit::{EventContext, envelope, kind_of};
use veil_core::types::{Role, TenantId};
use veil_proto::audit::v1::audit_service_client::AuditServiceClient;
use veil_proto::common::v1::{Actor, ActorKind};
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;
use veil_testkit::{Running, TestEnv, spawn};

pub const WAIT: Duration = Duration::from_secs(20);

/// A running audit service and its environment.
pub struct Audit {
    pub env: TestEnv,
    pub running: Running,
    pub pool: sqlx::PgPool,
}

/// Settings fit for tests: quick writer, no scheduled heads in the way.
pub fn settings(env: &TestEnv) -> veil_audit::Config {
    let mut settings = env.settings::<AuditSettings>("audit");
    settings.service.append_idle_ms = 10;
    settings.service.tree_head_interval_secs = 3_600;
    settings
}

impl Audit {
    pub async fn start() -> anyhow::Result<Self> {
        let env = TestEnv::new().await?;
        let settings = settings(&env);
        Self::start_with(env, settings).await
    }

    pub async fn start_with(env: TestEnv, settings: veil_audit::Config) -> anyhow::Result<Self> {
        let running = spawn(veil_audit::build(settings).await?);
        let pool = env.db.pool("audit").await?;
        Ok(Self { env, running, pool })
    }

    /// A client calling as `roles` of `tenant` (None: no tenant).
    pub async fn client(&self, tenant: Option<TenantId>, roles: &[Role]) -> anyhow::Result<Client> {
        let channel = veil_testkit::probe::connect(&self.running.url(), WAIT).await?;
        let token = self.env.token("audit", "auditor-1", tenant, roles)?;
        Ok(Client {
            inner: AuditServiceClient::new(channel),
            token,
        })
    }

    /// Publishes an event as its owning service would; returns the envelope.
    pub async fn publish(&self, context: &EventContext, payload: Payload) -> anyhow::Result<Event> {
        let (service, event) = kind_of(&payload);
        let subject = self.env.events().subject(service, event)?;
        let envelope = envelope(context, payload);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
        self.env
            .nats
            .jetstream()
            .publish_with_headers(subject, headers, envelope.encode_to_vec().into())
            .await?
            .await?;
        Ok(envelope)
    }

    /// Waits until the log holds at least `count` entries.
    pub async fn wait_for_entries(&self, count: i64) -> anyhow::Result<()> {
        let pool = self.pool.clone();
        veil_testkit::eventually(WAIT, || {
            let pool = pool.clone();
            async move {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
                (n >= count).then_some(())
            }
        })
        .await
    }
}

/// An audit client with a bearer token.
pub struct Client {
    pub inner: AuditServiceClient<Channel>,
    token: String,
}

impl Client {
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        attach_bearer(&mut request, &self.token).unwrap();
        request
    }
}

/// An event context of `tenant` acting as `actor`.
pub fn context(tenant: TenantId, subject_ref: Option<&str>, actor: &str) -> EventContext {
    EventContext {
        tenant: Some(tenant),
        subject_ref: subject_ref.map(|s| s.parse().unwrap()),
        actor: Some(Actor {
            kind: ActorKind::User as i32,
            principal_id: actor.into(),
            roles: Vec::new(),
            tenant_id: tenant.to_string(),
        }),
        request_id: String::new(),
    }
}

/// A pool on the audit schema of `db`, migrated, with the outbox tables: for tests that
/// drive the writer or the ingest directly instead of a running service.
pub async fn audit_pool(db: &veil_testkit::TestDb) -> sqlx::PgPool {
    let database = veil_core::config::DatabaseSettings {
        url: veil_core::types::Personal::new(db.url()),
        schema: "audit".into(),
        ..veil_core::config::DatabaseSettings::default()
    };
    let pool = veil_core::db::connect_and_migrate(&database, &veil_audit::MIGRATOR)
        .await
        .unwrap();
    veil_core::events::ensure_tables(&pool).await.unwrap();
    pool
}
