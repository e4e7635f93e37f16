//! Prometheus metrics: per-RPC calls and latency, plus gauges read at scrape time
//! (outbox backlog, consumer lag). Labels carry method paths and codes only, never
//! anything a caller sent.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of one RPC outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// gRPC method path, e.g. `/veil.vault.v1.VaultService/Tokenize`.
    pub method: String,
    /// gRPC status code name, e.g. `Ok`, `InvalidArgument`.
    pub code: String,
}

/// Labels of a gauge read at scrape time.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// What is measured, e.g. `outbox` or a consumer name.
    pub source: String,
}

type Probe = Box<dyn Fn() -> i64 + Send + Sync>;

/// One service's metrics registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    rpc_calls: Family<RpcLabels, Counter>,
    rpc_latency: Family<RpcLabels, Histogram>,
    backlog: Family<ProbeLabels, Gauge>,
    lag: Family<ProbeLabels, Gauge>,
    probes: Mutex<Vec<(ProbeKind, String, Probe)>>,
}

/// Which gauge a probe feeds.
#[derive(Clone, Copy, Debug)]
pub enum ProbeKind {
    /// Events written but not yet published.
    OutboxBacklog,
    /// Messages a durable consumer has not processed yet.
    ConsumerLag,
}

impl Metrics {
    /// A registry whose metric names are prefixed with `veil_` and labelled with the service.
    pub fn new(service: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix_and_labels(
            "veil",
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Owned(service.to_string()),
            )]
            .into_iter(),
        );
        let rpc_calls = Family::<RpcLabels, Counter>::default();
        let rpc_latency = Family::<RpcLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let backlog = Family::<ProbeLabels, Gauge>::default();
        let lag = Family::<ProbeLabels, Gauge>::default();
        registry.register(
            "rpc_calls",
            "gRPC calls by method and status code",
            rpc_calls.clone(),
        );
        registry.register(
            "rpc_latency_seconds",
            "gRPC call latency by method and status code",
            rpc_latency.clone(),
        );
        registry.register(
            "outbox_backlog",
            "events not yet published",
            backlog.clone(),
        );
        registry.register("consumer_lag", "events not yet consumed", lag.clone());
        Arc::new(Self {
            registry: Mutex::new(registry),
            rpc_calls,
            rpc_latency,
            backlog,
            lag,
            probes: Mutex::new(Vec::new()),
        })
    }

    /// Records one finished RPC.
    pub fn observe_rpc(&self, method: &str, code: tonic::Code, seconds: f64) {
        let labels = RpcLabels {
            method: method.to_string(),
            code: format!("{code:?}"),
        };
        self.rpc_calls.get_or_create(&labels).inc();
        self.rpc_latency.get_or_create(&labels).observe(seconds);
    }

    /// Registers a gauge value read at every scrape.
    pub fn add_probe(
        &self,
        kind: ProbeKind,
        source: impl Into<String>,
        probe: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        if let Ok(mut probes) = self.probes.lock() {
            probes.push((kind, source.into(), Box::new(probe)));
        }
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        if let Ok(probes) = self.probes.lock() {
            for (kind, source, probe) in probes.iter() {
                let family = match kind {
                    ProbeKind::OutboxBacklog => &self.backlog,
                    ProbeKind::ConsumerLag => &self.lag,
                };
                family
                    .get_or_create(&ProbeLabels {
                        source: source.clone(),
                    })
                    .set(probe());
            }
        }
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &registry);
        }
        out
    }
}

/// Serves `/metrics` (and `/healthz`) on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_calls_and_probes() {
        let metrics = Metrics::new("vault");
        metrics.observe_rpc(
            "/veil.vault.v1.VaultService/Tokenize",
            tonic::Code::Ok,
            0.002,
        );
        metrics.add_probe(ProbeKind::OutboxBacklog, "outbox", || 7);
        let text = metrics.render();
        assert!(text.contains("veil_rpc_calls_total{"), "{text}");
        assert!(
            text.contains("method=\"/veil.vault.v1.VaultService/Tokenize\""),
            "{text}"
        );
        assert!(text.contains("service=\"vault\""), "{text}");
        assert!(
            text.contains("veil_outbox_backlog{") && text.contains("} 7"),
            "{text}"
        );
    }
}
