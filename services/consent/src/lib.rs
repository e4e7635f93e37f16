//! veil-consent: purposes, recipients, versioned notices, append-only consent records with
//! signed receipts, preference signals (GPC), the per-message consent check with its
//! in-process cache, and the data-subject operations on consent data.
//!
//! See `docs/consent.md` for the model, the cache guarantee and what erasure keeps.

pub mod cache;
pub mod domain;
mod erasure;
mod grpc;
mod invalidation;
pub mod receipts;
mod settings;
mod store;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::{NoExtra, Settings, Validate};
use veil_core::subjects::SubjectKeys;
use veil_proto::consent::v1::consent_service_server::ConsentServiceServer;

pub use grpc::CheckPath;
pub use settings::ConsentSettings;

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "consent";

/// The shared settings only; `[service]` takes its defaults (see [`build`]).
pub type Config = Settings<NoExtra>;

/// The settings with the consent service's own `[service]` section.
pub type ServiceConfig = Settings<ConsentSettings>;

/// Migrations of the `consent` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates and binds with the default `[service]` settings (receipts signed
/// with the internal-token key): what `veil up` and the end-to-end tests run.
pub async fn build(settings: Config) -> anyhow::Result<Service> {
    build_from(&settings, &ConsentSettings::default()).await
}

/// Connects, migrates and binds; the returned service is ready to run.
pub async fn build_with(settings: ServiceConfig) -> anyhow::Result<Service> {
    build_from(&settings, &settings.service).await
}

async fn build_from<S>(
    settings: &Settings<S>,
    service: &ConsentSettings,
) -> anyhow::Result<Service> {
    service.validate()?;
    let subjects = SubjectKeys::from_settings(&settings.privacy)?;
    let receipts = receipts::ReceiptKeys::from_settings(service, &settings.auth)?;
    if receipts.borrowed_auth_key {
        tracing::warn!(
            kid = receipts.kid(),
            "service.receipt_signing_key is not set: consent receipts are signed with the \
             internal-token key (development only)"
        );
    }
    let mut foundation = Foundation::start(NAME, settings, &MIGRATOR).await?;
    let cache = Arc::new(cache::DecisionCache::new(
        service.cache_capacity,
        Duration::from_millis(service.cache_ttl_ms),
    ));
    let invalidator = Arc::new(invalidation::Invalidator::new(
        &foundation,
        cache.clone(),
        Duration::from_millis(service.cache_heartbeat_ms),
    ));
    if service.cache_capacity > 0 {
        invalidator.clone().spawn(&mut foundation);
    }
    erasure::spawn(&mut foundation)?;
    let api = grpc::ConsentApi::new(grpc::Parts {
        pool: foundation.pool.clone(),
        events: foundation.events.clone(),
        relay: foundation.relay.clone(),
        subjects,
        receipts: Arc::new(receipts),
        cache,
        invalidator,
        default_locale: service.default_locale.clone(),
    });
    let server = InterceptedService::new(
        ConsentServiceServer::new(api)
            .max_decoding_message_size(settings.server.max_message_bytes)
            .max_encoding_message_size(settings.server.max_message_bytes),
        foundation.auth.clone(),
    );
    let routes = tonic::service::Routes::new(server);
    Ok(Service::new(
        foundation,
        routes,
        vec!["veil.consent.v1.ConsentService"],
    ))
}

/// Builds and serves until `shutdown`.
pub async fn run(settings: ServiceConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    build_with(settings)
        .await?
        .run_until_stopped(shutdown)
        .await
}
