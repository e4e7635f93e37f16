//! veil-audit: the tamper-evident log of every Veil event.
//!
//! A durable consumer queues every event on `veil.events.>` once (idempotent by event
//! id); one writer (a Postgres advisory lock elects it among replicas) appends queued
//! events in batches to an RFC 6962 Merkle tree kept in Postgres, evaluates the anomaly
//! rules and opens incidents. Tree heads are signed with Ed25519 on a schedule and on
//! demand. The gRPC API serves heads, inclusion and consistency proofs, entries,
//! queries, the access log, compliance reports, incidents and a JSON Lines export;
//! [`verify`] recomputes everything from the database or an export file (`veil audit
//! verify`).

mod error;
mod grpc;
mod incidents;
pub mod ingest;
pub mod node_cache;
mod reports;
mod rules;
mod settings;
mod store;

pub mod export;
pub mod heads;
pub mod tree_head;
pub mod verify;
pub mod writer;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::Settings;
use veil_core::subjects::SubjectKeys;
use veil_proto::audit::v1::audit_service_server::AuditServiceServer;

pub use error::AuditError;
pub use grpc::inclusion_proof;
pub use settings::AuditSettings;
pub use store::tree::NODE_RANGES_SQL;

/// How often the proof cache reads what another replica appended.
const CACHE_CATCH_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "audit";

/// The service's settings.
pub type Config = Settings<AuditSettings>;

/// Migrations of the `audit` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The key that signs tree heads: `service.signing_key`, else (development and tests)
/// the internal-token key `auth.signing_key` under `auth.key_id`.
pub fn head_signer(
    service: &AuditSettings,
    auth: &veil_core::config::AuthSettings,
) -> anyhow::Result<tree_head::HeadSigner> {
    let own = service.signing_key.expose();
    let (text, default_id) = if own.is_empty() {
        (auth.signing_key.expose(), auth.key_id.as_str())
    } else {
        (own, "audit")
    };
    let key = veil_core::crypto::signing::load_signing_key(text)
        .map_err(|_| anyhow::anyhow!("invalid setting service.signing_key: not an Ed25519 key"))?;
    let key_id = if service.signing_key_id.is_empty() {
        default_id.to_owned()
    } else {
        service.signing_key_id.clone()
    };
    Ok(tree_head::HeadSigner::new(key, key_id))
}

/// Connects, migrates, binds and prepares the ingest consumer, the writer and the
/// tree-head schedule. Accepts settings whose `[service]` section converts into
/// [`AuditSettings`] (so a stack still loading `NoExtra` runs on the defaults).
pub async fn build<S: Into<AuditSettings> + Clone>(
    settings: Settings<S>,
) -> anyhow::Result<Service> {
    let service: AuditSettings = settings.service.clone().into();
    let signer = head_signer(&service, &settings.auth)?;
    let subjects = SubjectKeys::from_settings(&settings.privacy)?;
    let mut foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    ingest::spawn(&mut foundation, &service);

    let cache = Arc::new(node_cache::NodeCache::new(
        service.proof_cache_mb.saturating_mul(1 << 20),
    ));
    let loader = cache.clone();
    let pool = foundation.pool.clone();
    foundation.spawn_task("proof cache", move |token| async move {
        loader.run(pool, CACHE_CATCH_UP_EVERY, token).await;
    });

    let writer = writer::Writer::new(foundation.pool.clone(), foundation.events.clone(), &service)
        .with_relay(foundation.relay.clone())
        .with_cache(cache.clone());
    let idle = std::time::Duration::from_millis(service.append_idle_ms);
    foundation.spawn_task("audit writer", move |token| writer.run(idle, token));

    let heads = heads::Heads::new(foundation.pool.clone(), signer, foundation.events.clone())
        .with_relay(foundation.relay.clone());
    let schedule = heads.clone();
    let interval = std::time::Duration::from_secs(service.tree_head_interval_secs);
    foundation.spawn_task("tree heads", move |token| schedule.run(interval, token));

    let api = grpc::AuditApi::new(
        foundation.pool.clone(),
        heads,
        subjects,
        foundation.events.clone(),
        foundation.relay.clone(),
        cache,
    );
    let server = InterceptedService::new(
        AuditServiceServer::new(api)
            .max_decoding_message_size(settings.server.max_message_bytes)
            .max_encoding_message_size(settings.server.max_message_bytes),
        foundation.auth.clone(),
    );
    let routes = tonic::service::Routes::new(server);
    Ok(Service::new(
        foundation,
        routes,
        vec!["veil.audit.v1.AuditService"],
    ))
}

/// Builds and serves until `shutdown`.
pub async fn run(settings: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run_until_stopped(shutdown).await
}
