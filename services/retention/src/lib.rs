//! veil-retention: retention policies, legal holds, sweeps and data-subject requests.
//!
//! - Policies per tenant x data category x purpose, capped by platform settings; legal
//!   holds that every destructive path honours ([`holds`]).
//! - The sweeper purges expired data through each owning service's internal `Purge`.
//! - Data-subject requests: intake, identity verification, due dates by jurisdiction,
//!   the erasure saga over events ending in a signed deletion certificate anchored in
//!   the audit log, and access/portability exports.

pub mod certificate;
pub mod export;
mod grpc;
pub mod holds;
mod peers;
mod policies;
pub mod requests;
mod saga;
mod settings;
mod state;
mod sweep;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::Settings;
use veil_core::subjects::SubjectKeys;
use veil_proto::retention::v1::retention_service_server::RetentionServiceServer;

pub use settings::{CapSettings, RetentionSettings};

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "retention";

/// The service's settings.
pub type Config = Settings<RetentionSettings>;

/// Migrations of the `retention` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates and binds; the returned service is ready to run (its sweeper and
/// saga tasks start with it).
pub async fn build(settings: Config) -> anyhow::Result<Service> {
    let subjects = SubjectKeys::from_settings(&settings.privacy)?;
    let certificates =
        certificate::CertificateKeys::from_settings(&settings.service, &settings.auth)?;
    if certificates.borrowed_auth_key {
        tracing::warn!(
            "service.certificate_signing_key is not set: deletion certificates are signed \
             with the internal-token key (development only)"
        );
    }
    let mut foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    let peers = peers::Peers::new(
        &settings.service,
        settings.internal_tls.as_ref(),
        foundation.issuer.clone(),
    )?;
    let state = Arc::new(state::Retention {
        pool: foundation.pool.clone(),
        subjects,
        events: foundation.events.clone(),
        relay: foundation.relay.clone(),
        peers,
        settings: settings.service.clone(),
        saga_wake: Notify::new(),
        notifier: Arc::new(requests::NoopNotifier),
        certificates,
    });
    saga::spawn_consumer(&mut foundation, state.clone())?;
    saga::spawn_driver(&mut foundation, state.clone());
    requests::tasks::spawn(&mut foundation, state.clone());
    sweep::spawn(&mut foundation, state.clone());
    let server = InterceptedService::new(
        RetentionServiceServer::new(grpc::RetentionApi::new(state))
            .max_decoding_message_size(settings.server.max_message_bytes)
            .max_encoding_message_size(settings.server.max_message_bytes),
        foundation.auth.clone(),
    );
    let routes = tonic::service::Routes::new(server);
    Ok(Service::new(
        foundation,
        routes,
        vec!["veil.retention.v1.RetentionService"],
    ))
}

/// Builds and serves until `shutdown`.
pub async fn run(settings: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run_until_stopped(shutdown).await
}
