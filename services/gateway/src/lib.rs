//! veil-gateway: the one public entry of Veil.
//!
//! Authentication (API keys, OIDC JWTs), the admin API (tenants, keys, privacy policies),
//! the message pipeline (`ProcessMessage`, `RestoreText`, the two streams, notices,
//! transcripts, privacy commands), the generic authenticated proxy to the internal
//! services' public methods, and the internal API and erasure-saga consumer through which
//! the retention service purges, erases, exports, restricts and rectifies gateway data.

mod admin;
mod apikeys;
mod clients;
pub mod commands;
mod engine;
mod erasure;
mod internal;
mod jwt;
mod limits;
mod peer;
mod pipeline;
pub mod policy_store;
mod proxy;
mod pseudonyms;
mod restore;
mod restriction;
mod settings;
mod store;
#[cfg(test)]
mod testing;
mod turn_state;

/// The per-message statements, for the plan test (tests/hot_plans.rs).
pub use store::WRITE_TURNS_SQL;
pub use turn_state::TURN_STATE_SQL;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use veil_core::app::{Foundation, Service};
use veil_core::config::Settings;
use veil_core::events::OutboxWriter;
use veil_core::subjects::SubjectKeys;
use veil_proto::gateway::v1::admin_service_server::AdminServiceServer;
use veil_proto::gateway::v1::gateway_internal_service_server::GatewayInternalServiceServer;
use veil_proto::gateway::v1::privacy_gateway_service_server::PrivacyGatewayServiceServer;

pub use limits::{FAILURE_BURST, FAILURE_RATE};
pub use proxy::Route as ProxyRoute;
pub use settings::GatewaySettings;

/// Every method the proxy forwards, with the roles allowed (the policy table).
pub fn proxy_routes() -> impl Iterator<Item = (String, ProxyRoute)> {
    proxy::all_routes()
}

/// Service name: schema, subjects, metrics, token issuer.
pub const NAME: &str = "gateway";

/// The service's settings.
pub type Config = Settings<GatewaySettings>;

/// Migrations of the `gateway` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates and binds; the returned service is ready to run.
pub async fn build(settings: Config) -> anyhow::Result<Service> {
    let subjects = SubjectKeys::from_settings(&settings.privacy)?;
    let mut foundation = Foundation::start(NAME, &settings, &MIGRATOR).await?;
    let jwt = jwt::JwtVerifier::from_settings(&settings.service.jwt).await?;
    // Standalone events (authentication failures, restores) share one group-commit writer.
    let outbox = OutboxWriter::spawn(foundation.pool.clone(), foundation.relay.clone());
    let authenticator = Arc::new(
        apikeys::Authenticator::new(
            foundation.pool.clone(),
            &settings.service,
            foundation.events.clone(),
            outbox.clone(),
            subjects.clone(),
        )
        .with_jwt(jwt)
        .with_proxies(peer::TrustedProxies::parse(
            &settings.service.trusted_proxies,
        )?),
    );
    let limiter = Arc::new(limits::RateLimiter::new(
        settings.service.rate_limit_per_second,
        settings.service.rate_limit_burst,
    ));
    let clients = clients::Clients::new(
        &settings.service,
        settings.internal_tls.as_ref(),
        foundation.issuer.clone(),
    )?;
    let limit = settings.server.max_message_bytes;
    // Retention's API: internal tokens only, and only retention's service principal.
    let internal = InterceptedService::new(
        GatewayInternalServiceServer::new(internal::InternalApi::new(
            &foundation,
            subjects.clone(),
            clients.clone(),
        ))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit),
        foundation.auth.clone(),
    );
    erasure::spawn(&mut foundation)?;
    let engine = Arc::new(engine::Engine::new()?);
    let policies = Arc::new(pipeline::PolicyCache::new(engine.clone()));
    let admin = admin::AdminApi::new(
        &foundation,
        authenticator.clone(),
        limiter.clone(),
        policies.clone(),
    );
    let proxy = Arc::new(proxy::Proxy::new(
        authenticator.clone(),
        foundation.issuer.clone(),
        limiter.clone(),
        clients.upstreams(),
    ));
    // The per-message statements (restriction, placeholders, the batched turn write) are
    // written for generic plans (tests/hot_plans.rs checks them): left to choose,
    // Postgres re-plans a batch statement for most calls, as its arrays change length.
    // They get connections of their own with generic plans; everything else keeps
    // Postgres' choice.
    let hot = veil_core::config::DatabaseSettings {
        generic_plans: true,
        max_connections: pipeline::HOT_CONNECTIONS,
        ..settings.database.clone()
    };
    let hot_pool = veil_core::db::connect(&hot).await?;
    let pipeline = pipeline::PipelineApi::new(
        &foundation,
        pipeline::PipelineParts {
            hot_pool,
            outbox,
            auth: authenticator,
            limiter,
            clients,
            subjects,
            engine,
            policies,
            detector: Arc::new(commands::CommandDetector::try_new()?),
            idempotency_window: settings.service.idempotency_window(),
            clock_skew: settings.service.clock_skew(),
        },
    );
    pipeline.follow_consent_events(&mut foundation);
    pipeline.follow_gateway_events(&mut foundation);
    pipeline.purge_replays(&mut foundation);
    let routes = tonic::service::Routes::new(
        AdminServiceServer::new(admin)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    )
    .add_service(
        PrivacyGatewayServiceServer::new(pipeline)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit),
    )
    .add_service(internal);
    let routes = proxy.install(routes);
    Ok(Service::new(
        foundation,
        routes,
        vec![
            "veil.gateway.v1.AdminService",
            "veil.gateway.v1.PrivacyGatewayService",
            "veil.gateway.v1.GatewayInternalService",
        ],
    ))
}

/// Builds and serves until `shutdown`.
pub async fn run(settings: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run_until_stopped(shutdown).await
}
