//! veil-retention.
//!
//! Walking skeleton of the foundation issue: the service boots with its schema, outbox
//! relay, health, reflection and metrics, and every RPC of `veil.retention.v1.RetentionService`
//! answers UNIMPLEMENTED until the retention issue builds it.

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::{NoExtra, Settings};
use veil_proto::retention::v1::retention_service_server::{
    RetentionService, RetentionServiceServer,
};

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "retention";

/// The service's settings.
pub type Config = Settings<NoExtra>;

/// Migrations of the `retention` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Not yet implemented: every RPC answers UNIMPLEMENTED.
struct RetentionApi;

impl RetentionService for RetentionApi {}

/// Connects, migrates and binds; the returned service is ready to run.
pub async fn build(settings: Config) -> anyhow::Result<Service> {
    let foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    let server = InterceptedService::new(
        RetentionServiceServer::new(RetentionApi)
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
