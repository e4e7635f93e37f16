//! What every service does the same way: connect to Postgres (own schema, migrations),
//! connect to NATS, keep the event stream and the outbox relay running, verify internal
//! tokens, serve gRPC with health/reflection/metrics, and shut down in order.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::auth::{InternalAuth, TokenIssuer, TokenVerifier};
use crate::config::{Settings, Sources, Validate};
use crate::events::{self, Consumer, EventHandler, EventsConfig, OutboxRelay, RelayHandle};
use crate::metrics::{Metrics, ProbeKind};
use crate::server::BoundServer;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;
type TaskStarter = Box<dyn FnOnce(CancellationToken) -> Task + Send>;

/// Errors while starting a service; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Configuration was rejected.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Postgres failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// NATS failed.
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    /// The event tables could not be created.
    #[error("event tables: {0}")]
    Events(#[from] crate::events::EventsError),
    /// Internal-token keys are unusable.
    #[error("invalid setting auth.signing_key: {0}")]
    Auth(String),
    /// Listeners could not be bound or served.
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
}

/// The running foundation of one service, built before its gRPC services are added.
pub struct Foundation {
    /// Service name (`vault`, `consent`, ...), used in subjects, metrics and tokens.
    pub name: &'static str,
    /// The service's pool; connections use the service schema.
    pub pool: PgPool,
    /// NATS client.
    pub nats: async_nats::Client,
    /// JetStream context.
    pub jetstream: jetstream::Context,
    /// Event names and tuning.
    pub events: EventsConfig,
    /// Metrics registry served on the metrics port.
    pub metrics: Arc<Metrics>,
    /// Wakes the outbox relay after a commit.
    pub relay: RelayHandle,
    /// Interceptor that admits only calls with a valid internal token for this service.
    pub auth: InternalAuth,
    /// Mints internal tokens for calls this service makes to others.
    pub issuer: Arc<TokenIssuer>,
    server: BoundServer,
    relay_task: OutboxRelay,
    tasks: Vec<(String, TaskStarter)>,
}

impl Foundation {
    /// Connects everything and binds the listeners; nothing is served yet.
    pub async fn start<S>(
        name: &'static str,
        settings: &Settings<S>,
        migrator: &Migrator,
    ) -> Result<Self, StartError> {
        let pool = crate::db::connect_and_migrate(&settings.database, migrator).await?;
        events::ensure_tables(&pool).await?;
        let nats = crate::broker::connect(&settings.nats, &format!("veil-{name}")).await?;
        let jetstream = jetstream::new(nats.clone());
        let (issuer, verifier) = token_keys(name, &settings.auth)?;
        let metrics = Metrics::new(name);
        let relay_task = OutboxRelay::new(
            pool.clone(),
            jetstream.clone(),
            settings.events.relay.clone(),
        );
        let relay = relay_task.handle();
        let backlog = relay.clone();
        metrics.add_probe(ProbeKind::OutboxBacklog, "outbox", move || {
            backlog.backlog()
        });
        let server = BoundServer::bind(name, &settings.server).await?;
        Ok(Self {
            name,
            pool,
            nats,
            jetstream,
            events: settings.events.clone(),
            metrics,
            relay,
            auth: InternalAuth::new(Arc::new(verifier)),
            issuer: Arc::new(issuer),
            server,
            relay_task,
            tasks: Vec::new(),
        })
    }

    /// The bound gRPC address (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.grpc_addr()
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.server.metrics_addr()
    }

    /// The subject of one of this service's events.
    pub fn subject(&self, event: &str) -> Result<String, events::EventsError> {
        self.events.subject(self.name, event)
    }

    /// Adds a background task (e.g. a consumer) that runs while the service serves and
    /// is given a token that is cancelled at shutdown.
    pub fn spawn_task<F, Fut>(&mut self, label: impl Into<String>, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks
            .push((label.into(), Box::new(move |token| Box::pin(task(token)))));
    }

    /// Adds a background task that runs `tick` at once and then every `interval` until
    /// shutdown (a tick in progress finishes; the wait between ticks is cut short).
    pub fn spawn_every<F, Fut>(&mut self, label: impl Into<String>, interval: Duration, tick: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn_task(label, move |token| async move {
            loop {
                tick().await;
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        });
    }

    /// Runs a durable pull consumer of `filter` for the life of the service. Creating it
    /// is retried while NATS or the stream is not there yet; its lag is exported.
    pub fn spawn_consumer<H>(&mut self, durable: &str, filter: String, handler: H)
    where
        H: EventHandler + 'static,
    {
        self.spawn_bound(durable, filter, move |consumer, pool, token| async move {
            consumer.run(pool, handler, token).await;
        });
    }

    /// Like [`Foundation::spawn_consumer`], but the handler applies up to
    /// `batch.max_messages` events per transaction (see [`events::BatchEventHandler`]).
    pub fn spawn_batch_consumer<H>(
        &mut self,
        durable: &str,
        filter: String,
        handler: H,
        batch: events::BatchSettings,
    ) where
        H: events::BatchEventHandler + 'static,
    {
        self.spawn_bound(durable, filter, move |consumer, pool, token| async move {
            consumer.run_batch(pool, handler, batch, token).await;
        });
    }

    /// A task that binds the durable consumer (retrying until it exists or shutdown),
    /// exports its lag and hands it to `run`.
    fn spawn_bound<F, Fut>(&mut self, durable: &str, filter: String, run: F)
    where
        F: FnOnce(Consumer, PgPool, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let js = self.jetstream.clone();
        let stream = self.events.stream.clone();
        let settings = self.events.consumer.clone();
        let pool = self.pool.clone();
        let metrics = self.metrics.clone();
        let durable = durable.to_string();
        self.spawn_task(format!("consumer {durable}"), move |token| async move {
            let Some(consumer) =
                Consumer::bind_retrying(js, &stream, &durable, &filter, settings, &token).await
            else {
                return;
            };
            let lag = consumer.lag();
            metrics.add_probe(ProbeKind::ConsumerLag, durable, move || {
                i64::try_from(lag.pending()).unwrap_or(i64::MAX)
            });
            run(consumer, pool, token).await;
        });
    }

    /// Serves `routes` until `shutdown`; then drains calls, stops background tasks and
    /// flushes the outbox one last time.
    pub async fn serve(
        self,
        routes: Routes,
        grpc_services: &[&str],
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let background = CancellationToken::new();
        let mut handles = Vec::new();
        let stream_js = self.jetstream.clone();
        let stream_config = self.events.clone();
        let stream_token = background.clone();
        handles.push(tokio::spawn(async move {
            keep_stream(stream_js, stream_config, stream_token).await;
        }));
        handles.push(tokio::spawn(self.relay_task.run(background.clone())));
        for (label, task) in self.tasks {
            let token = background.clone();
            tracing::debug!(task = %label, "starting background task");
            handles.push(tokio::spawn(task(token)));
        }
        let served = self
            .server
            .serve(routes, grpc_services, self.metrics.clone(), shutdown)
            .await;
        // Calls are drained; now let consumers finish their batch and the relay flush.
        background.cancel();
        for handle in handles {
            if tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .is_err()
            {
                tracing::warn!(service = self.name, "background task did not stop in time");
            }
        }
        served.map_err(StartError::from)
    }
}

/// Creates the event stream, retrying while NATS is unreachable.
async fn keep_stream(js: jetstream::Context, config: EventsConfig, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(100);
    loop {
        match events::ensure_stream(&js, &config).await {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(error = %crate::error::ErrorChain(&error), "event stream not ready; retrying");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn token_keys(
    name: &str,
    auth: &crate::config::AuthSettings,
) -> Result<(TokenIssuer, TokenVerifier), StartError> {
    let signing = crate::auth::signing_key_from_base64(auth.signing_key.expose())
        .map_err(|e| StartError::Auth(e.to_string()))?;
    let issuer = TokenIssuer::new(signing.clone(), auth.key_id.clone(), format!("veil-{name}"))
        .with_ttl(Duration::from_secs(auth.token_ttl_secs));
    let mut verifier = TokenVerifier::new(name);
    verifier.trust(auth.key_id.clone(), signing.verifying_key());
    for (kid, key) in &auth.trusted_keys {
        let key = crate::auth::verifying_key_from_base64(key)
            .map_err(|e| StartError::Auth(format!("trusted key {kid}: {e}")))?;
        verifier.trust(kid.clone(), key);
    }
    Ok((issuer, verifier))
}

/// The body of every service's `main`: load settings (a bad one exits with code 2 and a
/// single line naming the key), set up telemetry and signals, run, flush.
pub fn service_main<S, F, Fut>(name: &'static str, run: F) -> ExitCode
where
    S: DeserializeOwned + Validate + Default,
    F: FnOnce(Settings<S>, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings = match Settings::<S>::load(name, &Sources::default()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("veil-{name}: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("veil-{name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let telemetry = match crate::telemetry::init(name, &settings.telemetry) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("veil-{name}: {error}");
                return ExitCode::from(2);
            }
        };
        let shutdown = crate::shutdown::on_signals();
        let result = run(settings, shutdown).await;
        let code = match result {
            Ok(()) => {
                tracing::info!(service = name, "stopped");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(service = name, error = format!("{error:#}"), "failed");
                eprintln!("veil-{name}: {error:#}");
                ExitCode::FAILURE
            }
        };
        telemetry.shutdown();
        code
    })
}

/// A built service: its foundation plus the gRPC routes it serves.
pub struct Service {
    foundation: Foundation,
    routes: Routes,
    names: Vec<&'static str>,
}

impl Service {
    /// Bundles the foundation with the service's routes and their full gRPC names (for
    /// health reporting).
    pub fn new(foundation: Foundation, routes: Routes, names: Vec<&'static str>) -> Self {
        Self {
            foundation,
            routes,
            names,
        }
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.foundation.grpc_addr()
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.foundation.metrics_addr()
    }

    /// Serves until `shutdown`, then drains and stops in order.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let names = self.names;
        self.foundation
            .serve(self.routes, &names, shutdown)
            .await
            .map_err(anyhow::Error::from)
    }
}
