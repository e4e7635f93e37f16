//! A tower layer around every gRPC call: request id, a span that continues the caller's
//! trace, and the per-RPC metrics.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use prost::Message;
use prost_types::FileDescriptorSet;
use tracing::Instrument;

use crate::metrics::Metrics;

/// Header carrying the request id across services and back to the caller.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id of the current call, available from request extensions.
#[derive(Clone, Debug)]
pub struct CallId(pub String);

impl CallId {
    /// The call's request id as a domain value; a fresh one when the layer set none.
    pub fn request_id(call: Option<&CallId>) -> crate::types::RequestId {
        call.and_then(|id| id.0.parse().ok())
            .unwrap_or_else(crate::types::RequestId::generate)
    }
}

/// Layer adding request ids, spans and metrics.
#[derive(Clone)]
pub struct RpcLayer {
    metrics: Arc<Metrics>,
}

impl RpcLayer {
    /// A layer reporting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service produced by [`RpcLayer`].
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for RpcService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Take the ready service and leave a fresh clone behind (tower's clone-and-swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let method = method_label(request.uri().path());
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_safe_request_id(v))
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        request.extensions_mut().insert(CallId(request_id.clone()));
        let span = tracing::info_span!("rpc", rpc.method = %method, request_id = %request_id);
        crate::telemetry::set_parent_from_headers(&span, request.headers());
        let started = Instant::now();
        Box::pin(
            async move {
                let result = inner.call(request).await;
                if let Ok(response) = &result {
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i32>().ok())
                        .map(tonic::Code::from)
                        // Trailers carry the status of calls that sent a body; they succeed
                        // unless a stream fails midway, which is counted as OK here.
                        .unwrap_or(tonic::Code::Ok);
                    metrics.observe_rpc(method, code, started.elapsed().as_secs_f64());
                }
                result.map(|mut response| {
                    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                        response.headers_mut().insert(REQUEST_ID_HEADER, value);
                    }
                    response
                })
            }
            .instrument(span),
        )
    }
}

/// Request ids from callers are echoed into logs, so only short plain tokens are kept.
fn is_safe_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// What a call's method path is named in metrics and in its span: the path itself when
/// it is a method of Veil's protos or of the standard services every server runs
/// (health, reflection), else `unknown`. Any other path was chosen by the caller: as a
/// label it would let callers grow the metrics without bound.
pub fn method_label(path: &str) -> &'static str {
    static KNOWN: LazyLock<HashSet<String>> = LazyLock::new(known_methods);
    KNOWN.get(path).map_or(UNKNOWN_METHOD, String::as_str)
}

/// The label of a path that names no known method.
pub const UNKNOWN_METHOD: &str = "unknown";

fn known_methods() -> HashSet<String> {
    let standard = [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    // Built into the binary by veil-proto's build script, so it always decodes.
    let files = FileDescriptorSet::decode(veil_proto::FILE_DESCRIPTOR_SET)
        .map(|set| set.file)
        .unwrap_or_default();
    let veil = files.into_iter().flat_map(|file| {
        let package = file.package.unwrap_or_default();
        file.service.into_iter().flat_map(move |service| {
            let prefix = format!("/{package}.{}/", service.name.unwrap_or_default());
            service
                .method
                .into_iter()
                .map(move |method| format!("{prefix}{}", method.name.unwrap_or_default()))
        })
    });
    standard
        .into_iter()
        .map(str::to_string)
        .chain(veil)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{UNKNOWN_METHOD, is_safe_request_id, method_label};

    #[test]
    fn only_known_methods_are_labels() {
        for known in [
            "/veil.consent.v1.ConsentService/CheckConsent",
            "/veil.gateway.v1.PrivacyGatewayService/ProcessMessage",
            "/grpc.health.v1.Health/Check",
        ] {
            assert_eq!(method_label(known), known);
        }
        for chosen in [
            "/veil.consent.v1.ConsentService/alice@example.com",
            "/veil.consent.v1.ConsentService/CheckConsentX",
            "/",
            "",
        ] {
            assert_eq!(method_label(chosen), UNKNOWN_METHOD, "{chosen}");
        }
    }

    #[test]
    fn request_ids_are_filtered() {
        assert!(is_safe_request_id("0190c1b2-aaaa-7bbb-8ccc-123456789abc"));
        assert!(!is_safe_request_id("alice@example.com"));
        assert!(!is_safe_request_id(""));
        assert!(!is_safe_request_id(&"a".repeat(65)));
    }
}
