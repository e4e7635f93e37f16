//! veil-consent: purposes, consent records and the per-message consent check.
//!
//! Walking skeleton of the foundation issue: `UpsertPurpose` and `CheckConsent` are real;
//! the other RPCs of `veil.consent.v1.ConsentService` answer UNIMPLEMENTED until the
//! consent issue builds them.

mod grpc;
mod store;

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::{NoExtra, Settings};
use veil_core::subjects::SubjectKeys;
use veil_proto::consent::v1::consent_service_server::ConsentServiceServer;

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "consent";

/// The service's settings.
pub type Config = Settings<NoExtra>;

/// Migrations of the `consent` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates and binds; the returned service is ready to run.
pub async fn build(settings: Config) -> anyhow::Result<Service> {
    let subjects = SubjectKeys::from_settings(&settings.privacy)?;
    let foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    let api = grpc::ConsentApi::new(&foundation, subjects);
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
pub async fn run(settings: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run_until_stopped(shutdown).await
}
