//! veil-audit: the tamper-evident log of every Veil event.
//!
//! Walking skeleton of the foundation issue: a durable consumer appends every event on
//! `veil.events.>` exactly once and `GetEntry` reads it back; the Merkle tree, proofs,
//! queries, reports and incidents arrive with the audit issue.

mod grpc;
mod ingest;
mod store;

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::{NoExtra, Settings};
use veil_proto::audit::v1::audit_service_server::AuditServiceServer;

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "audit";

/// The service's settings.
pub type Config = Settings<NoExtra>;

/// Migrations of the `audit` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates, binds and prepares the ingest consumer.
pub async fn build(settings: Config) -> anyhow::Result<Service> {
    let mut foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    ingest::spawn(&mut foundation);
    let api = grpc::AuditApi::new(foundation.pool.clone());
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
