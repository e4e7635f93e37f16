//! Logs and traces, set up once per process and flushed on exit.
//!
//! Logs go to stdout as JSON (or pretty for development). Traces are exported over
//! OTLP/gRPC only when an endpoint is configured. W3C trace context crosses gRPC
//! metadata and NATS headers through the helpers at the bottom of this file.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetrySettings};

/// Keeps the trace pipeline alive; call [`TelemetryGuard::shutdown`] (or drop it) on exit
/// so buffered spans are flushed.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the trace exporter.
    pub fn shutdown(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("telemetry: trace exporter shutdown failed: {error}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Errors while setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter did not parse.
    #[error("invalid setting telemetry.log_level: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("invalid setting telemetry.otlp_endpoint: {0}")]
    Exporter(String),
}

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the global subscriber. Safe to call more than once (tests, `veil up`): only the
/// first call installs anything; later calls return an inert guard.
pub fn init(service: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    if INSTALLED.get().is_some() {
        return Ok(TelemetryGuard { provider: None });
    }
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let provider = match settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(otlp_provider(service, endpoint)?),
        None => None,
    };
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service.to_string()))
            .boxed()
    });
    let fmt_layer = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    // Another subscriber (e.g. a test harness) may already be installed; keep it.
    let _ = INSTALLED.set(());
    if installed.is_err() {
        return Ok(TelemetryGuard { provider: None });
    }
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_string())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The W3C `traceparent` of the current span, if tracing is active.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = HashMap::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// Makes the span a child of the remote context described by `traceparent`.
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    // A malformed header simply leaves the span a root span.
    let _ = span.set_parent(context);
}

/// Most links one span gets (the OpenTelemetry SDK's default limit per span).
const MAX_LINKS: usize = 128;

/// Links `span` to the remote contexts described by `traceparents`: a batch handled in
/// one span continues none of its events' traces, but each of them can be followed to
/// the batch that handled it. Malformed or absent headers are skipped.
pub fn link_remote<'a>(span: &tracing::Span, traceparents: impl IntoIterator<Item = &'a str>) {
    use opentelemetry::trace::TraceContextExt as _;
    for traceparent in traceparents.into_iter().take(MAX_LINKS) {
        let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
        let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
        let linked = context.span().span_context().clone();
        if linked.is_valid() {
            span.add_link(linked);
        }
    }
}

/// Adapts gRPC metadata / HTTP headers for trace-context extraction.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Adapts outgoing gRPC metadata for trace-context injection.
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MetadataInjector(metadata))
    });
}

/// Makes `span` a child of the trace context carried by incoming HTTP/2 headers.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let context =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(context);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Keeps every ended span.
    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<Mutex<Vec<SpanData>>>);

    impl SpanProcessor for Collect {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(
            &self,
            _: std::time::Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn a_batch_span_links_every_valid_traceparent() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(collect.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let first = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let second = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("event_batch");
            link_remote(&span, [first, "not a traceparent", second]);
        });
        let spans = collect.0.lock().unwrap();
        let links: Vec<String> = spans[0]
            .links
            .iter()
            .map(|link| link.span_context.trace_id().to_string())
            .collect();
        assert_eq!(
            links,
            [
                "0af7651916cd43dd8448eb211c80319c",
                "4bf92f3577b34da6a3ce929d0e0e4736"
            ]
        );
    }
}
