//! The gRPC server every service runs: health (`grpc.health.v1`), reflection (v1 and
//! v1alpha, since grpcurl 1.8 speaks only v1alpha), request ids, per-RPC metrics and
//! spans, optional TLS (with client certificates for mTLS), and a graceful shutdown that
//! reports NOT_SERVING before it stops accepting and drains in-flight calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::config::{ServerSettings, parse_addr};
use crate::metrics::Metrics;
use crate::rpc_layer::RpcLayer;

/// Errors while binding or serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {key}: {source}")]
    Bind {
        /// The setting holding the address.
        key: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The address setting is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// TLS files could not be read.
    #[error("cannot read {key}: {source}")]
    TlsFile {
        /// The setting naming the file.
        key: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The transport failed.
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Listeners bound up front, so port 0 works and callers learn the real ports before serving.
pub struct BoundServer {
    service: String,
    settings: ServerSettings,
    grpc: TcpListener,
    metrics: TcpListener,
}

/// Listeners bound ahead of their service, by their real address.
static RESERVED: std::sync::Mutex<Vec<std::net::TcpListener>> = std::sync::Mutex::new(Vec::new());

/// Binds a gRPC listener on `addr` (port 0 for any) now and returns its address; a later
/// [`BoundServer::bind`] of exactly that address takes it over. This lets two services
/// in one process know each other's address before either is built (retention and the
/// gateway call each other), without the race of binding, closing and binding again.
pub fn reserve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    RESERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(listener);
    Ok(bound)
}

fn take_reserved(addr: SocketAddr) -> Option<std::io::Result<TcpListener>> {
    let mut reserved = RESERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let position = reserved
        .iter()
        .position(|listener| listener.local_addr().ok() == Some(addr))?;
    Some(TcpListener::from_std(reserved.swap_remove(position)))
}

impl BoundServer {
    /// Binds the gRPC and metrics listeners of `settings`.
    pub async fn bind(service: &str, settings: &ServerSettings) -> Result<Self, ServerError> {
        let grpc_addr = parse_addr("server.grpc_addr", &settings.grpc_addr)?;
        let metrics_addr = parse_addr("server.metrics_addr", &settings.metrics_addr)?;
        let grpc = match take_reserved(grpc_addr) {
            Some(listener) => listener,
            None => TcpListener::bind(grpc_addr).await,
        }
        .map_err(|source| ServerError::Bind {
            key: "server.grpc_addr",
            source,
        })?;
        let metrics =
            TcpListener::bind(metrics_addr)
                .await
                .map_err(|source| ServerError::Bind {
                    key: "server.metrics_addr",
                    source,
                })?;
        Ok(Self {
            service: service.to_string(),
            settings: settings.clone(),
            grpc,
            metrics,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().unwrap_or_else(|_| unspecified())
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.local_addr().unwrap_or_else(|_| unspecified())
    }

    /// Serves `routes` (plus health and reflection) until `shutdown` fires, then reports
    /// NOT_SERVING, waits the configured grace period, stops accepting and drains calls
    /// for at most `drain_timeout_secs`.
    pub async fn serve(
        self,
        routes: Routes,
        grpc_services: &[&str],
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in grpc_services.iter().copied().chain([""]) {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(veil_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(veil_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;

        let metrics_task = tokio::spawn(crate::metrics::serve(
            self.metrics,
            metrics.clone(),
            shutdown.clone(),
        ));

        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &self.settings.tls {
            builder = builder.tls_config(tls_config(tls).await?)?;
        }
        let routes = routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        let router = builder.layer(RpcLayer::new(metrics)).add_routes(routes);

        let grace = Duration::from_secs(self.settings.shutdown_grace_secs);
        let drain = Duration::from_secs(self.settings.drain_timeout_secs);
        let names: Vec<String> = grpc_services.iter().map(|s| s.to_string()).collect();
        let signal_token = shutdown.clone();
        let signal = async move {
            signal_token.cancelled().await;
            for name in names.iter().map(String::as_str).chain([""]) {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            // Give load balancers time to see NOT_SERVING before the listener closes.
            if !grace.is_zero() {
                tokio::time::sleep(grace).await;
            }
        };
        // Without TCP_NODELAY a response written in pieces waits for the peer's delayed ACK
        // (Nagle), adding ~40 ms to calls.
        let incoming = TcpIncoming::from(self.grpc).with_nodelay(Some(true));
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        tokio::pin!(serve);
        let result = tokio::select! {
            result = &mut serve => result.map_err(ServerError::from),
            _ = async {
                shutdown.cancelled().await;
                tokio::time::sleep(grace + drain).await;
            } => {
                tracing::warn!(service = %self.service, "drain timed out; closing remaining calls");
                Ok(())
            }
        };
        let _ = metrics_task.await;
        result
    }
}

async fn tls_config(tls: &crate::config::TlsSettings) -> Result<ServerTlsConfig, ServerError> {
    let cert = tokio::fs::read(&tls.cert_path)
        .await
        .map_err(|source| ServerError::TlsFile {
            key: "server.tls.cert_path",
            source,
        })?;
    let key = tokio::fs::read(&tls.key_path)
        .await
        .map_err(|source| ServerError::TlsFile {
            key: "server.tls.key_path",
            source,
        })?;
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca_path) = &tls.client_ca_path {
        let ca = tokio::fs::read(ca_path)
            .await
            .map_err(|source| ServerError::TlsFile {
                key: "server.tls.client_ca_path",
                source,
            })?;
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(config)
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}
