//! veil-vault: the one place personal data that must be kept lives, always encrypted.
//!
//! - Key hierarchy: master keys behind the `KeyProvider` trait (configured locally now),
//!   per-tenant key-encryption keys (versioned, wrapped by the master key), per-subject
//!   data keys (wrapped by the tenant KEK). Unwrapped keys are cached with a bound and a
//!   TTL and zeroized when dropped.
//! - Records: AES-256-GCM under the subject's data key, bound to tenant | subject |
//!   record id | field.
//! - Tokens: deterministic HMAC-SHA256 tokens under a per-tenant token key, originals
//!   sealed under the subject's data key.
//! - Crypto-shredding: deleting a subject's data key row makes every copy of its
//!   ciphertexts unreadable, in constant time.
//! - Rotation: new KEK and master versions, with rewraps in the background.
//! - Erasure saga: `retention.erasure_requested` shreds the subject and reports
//!   `vault.erasure_completed`.

mod cache;
mod erasure;
mod error;
mod grpc;
mod hierarchy;
mod master;
mod rewrap;
mod rotation;
mod settings;
mod state;
mod store;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::Settings;
use veil_core::events::OutboxWriter;
use veil_core::subjects::SubjectKeys;
use veil_proto::vault::v1::vault_service_server::VaultServiceServer;

pub use cache::KeyCache;
pub use error::VaultError;
pub use grpc::{record_aad, token_aad, token_string};
pub use settings::VaultSettings;
#[doc(hidden)]
pub use store::keys::SUBJECT_KEYS_LOCKED_SQL;
pub use store::tokens::{LOOKUP_FOR_SUBJECT_SQL, TOKENS_UNDER_KEYS_SQL};

/// Service name: schema, subjects, metrics, token audience.
pub const NAME: &str = "vault";

/// The service's settings.
pub type Config = Settings<VaultSettings>;

/// Migrations of the `vault` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates, reconciles the master keys and binds; the returned service is
/// ready to run (its background rewrap worker starts with it).
pub async fn build(mut settings: Config) -> anyhow::Result<Service> {
    // Tokenize's statements are written for generic plans (tests/key_plans.rs checks
    // them as such); left to choose, Postgres re-planned them on every call, and the
    // planning cost more than the execution.
    settings.database.generic_plans = true;
    let subjects = SubjectKeys::from_settings(&settings.privacy)?;
    let master = Arc::new(master::MasterKeys::from_settings(&settings.service)?);
    let mut foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    let vault = Arc::new(state::Vault {
        pool: foundation.pool.clone(),
        keys: hierarchy::KeyHierarchy::new(master, &settings.service),
        subjects,
        events: foundation.events.clone(),
        relay: foundation.relay.clone(),
        outbox: OutboxWriter::spawn(foundation.pool.clone(), foundation.relay.clone()),
        settings: settings.service.clone(),
        rewrap_wake: Notify::new(),
    });
    rotation::reconcile_master(&vault).await?;
    erasure::spawn(&mut foundation, vault.clone())?;
    let worker = vault.clone();
    foundation.spawn_task("rewrap", move |token| rewrap::run(worker, token));
    let server = InterceptedService::new(
        VaultServiceServer::new(grpc::VaultApi::new(vault))
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
