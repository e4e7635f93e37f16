//! The generic authenticated gRPC proxy for the public methods of consent, vault,
//! retention and audit: route by method path, check the policy table, swap the caller's
//! credential for an internal token, and stream the bytes through unchanged. There is no
//! per-RPC forwarding code.

mod policy;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body as AxumBody;
use http::{HeaderValue, Request, Response};
use tonic::Status;
use tonic::body::Body;
use tonic::metadata::MetadataMap;
use tonic::service::Routes;
use tonic::transport::Channel;
use tower::ServiceExt;
use veil_core::auth::{AUTHORIZATION_HEADER, Principal, TokenIssuer};
use veil_core::rpc_layer::{CallId, REQUEST_ID_HEADER};
use veil_core::types::RequestId;
use veil_proto::events::v1::AuthFailureReason;

use crate::apikeys::{Authenticator, Caller};
use crate::limits::RateLimiter;
use crate::peer::Peer;

pub use policy::{Route, SERVICES, all_routes, route};

/// What the proxy needs to forward a call.
pub struct Proxy {
    auth: Arc<Authenticator>,
    issuer: Arc<TokenIssuer>,
    limiter: Arc<RateLimiter>,
    upstreams: HashMap<&'static str, Channel>,
}

impl Proxy {
    /// A proxy over the channels of the internal services (keyed by service name).
    pub fn new(
        auth: Arc<Authenticator>,
        issuer: Arc<TokenIssuer>,
        limiter: Arc<RateLimiter>,
        upstreams: HashMap<&'static str, Channel>,
    ) -> Self {
        Self {
            auth,
            issuer,
            limiter,
            upstreams,
        }
    }

    /// Adds a catch-all route per proxied service to `routes`.
    pub fn install(self: Arc<Self>, mut routes: Routes) -> Routes {
        for (_, grpc_service) in SERVICES {
            let proxy = self.clone();
            let service = tower::service_fn(move |request: Request<AxumBody>| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.forward(request).await) }
            });
            routes = {
                let router = routes.axum_router_mut();
                *router = std::mem::take(router)
                    .route_service(&format!("/{grpc_service}/{{*method}}"), service);
                routes
            };
        }
        routes
    }

    async fn forward(&self, request: Request<AxumBody>) -> Response<Body> {
        // Only owned values cross the await: the request body is not `Sync`.
        let path = request.uri().path().to_string();
        let metadata = MetadataMap::from_headers(request.headers().clone());
        let request_id = CallId::request_id(request.extensions().get::<CallId>());
        let peer = self.auth.proxies().peer_of_http(&request);
        match self.authorize(&path, &metadata, peer, request_id).await {
            Ok((route, principal)) => self.call_upstream(route, &principal, request).await,
            Err(status) => status.into_http(),
        }
    }

    /// Authenticates, checks the policy table and the rate limit; refusals of known
    /// callers are recorded for audit's anomaly rules.
    async fn authorize(
        &self,
        path: &str,
        metadata: &MetadataMap,
        peer: Peer,
        request_id: RequestId,
    ) -> Result<(Route, Principal), Status> {
        let caller = self.auth.authenticate_call(metadata, peer, path).await?;
        let Some(route) = route(path) else {
            self.auth
                .record_denied(&caller, peer, path, AuthFailureReason::PermissionDenied)
                .await;
            return Err(Status::permission_denied(
                "method is not available through the gateway",
            ));
        };
        self.auth
            .require_roles(&caller, peer, path, route.roles)
            .await?;
        self.limiter.admit(&self.auth, &caller, peer, path).await?;
        Ok((route, principal_of(&caller, request_id)?))
    }

    async fn call_upstream(
        &self,
        route: Route,
        principal: &Principal,
        request: Request<AxumBody>,
    ) -> Response<Body> {
        let Some(channel) = self.upstreams.get(route.service) else {
            return Status::unavailable("service is not configured").into_http();
        };
        // Reused per (service, principal) while fresh, so the service verifies it once;
        // the request id goes in its own header below.
        let token = match self.issuer.token_for(route.service, principal) {
            Ok(token) => token,
            Err(error) => {
                return Status::from(veil_core::error::ServiceError::internal(error)).into_http();
            }
        };
        let (mut parts, body) = request.into_parts();
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(value) => {
                parts.headers.insert(AUTHORIZATION_HEADER, value);
            }
            Err(_) => return Status::internal("internal token is not a header value").into_http(),
        }
        if let Ok(value) = HeaderValue::from_str(principal.request_id.as_str()) {
            parts.headers.insert(REQUEST_ID_HEADER, value);
        }
        let mut metadata = MetadataMap::from_headers(std::mem::take(&mut parts.headers));
        veil_core::telemetry::inject_metadata(&mut metadata);
        parts.headers = metadata.into_headers();
        let upstream = Request::from_parts(parts, Body::new(body));
        match channel.clone().oneshot(upstream).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(service = route.service, %error, "upstream call failed");
                Status::unavailable(format!("{} is unavailable", route.service)).into_http()
            }
        }
    }
}

/// The principal an internal service sees for a gateway caller.
fn principal_of(caller: &Caller, request_id: RequestId) -> Result<Principal, Status> {
    Ok(Principal {
        tenant: caller.tenant,
        principal_id: caller
            .key_id
            .parse()
            .map_err(|_| Status::internal("caller id is not a principal id"))?,
        roles: caller.roles.clone(),
        request_id,
    })
}
