//! veil-vault.
//!
//! Walking skeleton of the foundation issue: the service boots with its schema, outbox
//! relay, health, reflection and metrics, and every RPC of `veil.vault.v1.VaultService`
//! answers UNIMPLEMENTED until the vault issue builds it.

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::{NoExtra, Settings};
use veil_proto::vault::v1::vault_service_server::{VaultService, VaultServiceServer};

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "vault";

/// The service's settings.
pub type Config = Settings<NoExtra>;

/// Migrations of the `vault` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Not yet implemented: every RPC answers UNIMPLEMENTED.
struct VaultApi;

impl VaultService for VaultApi {}

/// Connects, migrates and binds; the returned service is ready to run.
pub async fn build(settings: Config) -> anyhow::Result<Service> {
    let foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    let server = InterceptedService::new(
        VaultServiceServer::new(VaultApi)
            .max_decoding_message_size(settings.server.max_message_bytes)
            .max_encoding_message_size(settings.server.max_message_bytes),
        foundation.auth.clone(),
    );
    let routes = tonic::service::Routes::new(server);
    Ok(Service::new(
        foundation,
        routes,
        vec!["veil.vault.v1.VaultService"],
    ))
}

/// Builds and serves until `shutdown`.
pub async fn run(settings: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run_until_stopped(shutdown).await
}
