//! tonic interceptors: server-side token check and client-side token attachment.

use std::sync::Arc;
use std::time::SystemTime;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::verified::{DEFAULT_CAPACITY, VerifiedTokens};
use super::{AuthError, Principal, TokenIssuer, TokenVerifier};
use crate::types::{PrincipalId, RequestId, Role, TenantId};

/// Metadata key carrying `Bearer <token>`.
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// Metadata key carrying the public request id across services.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

const REJECTED: &str = "missing or invalid internal token";

/// The token in `authorization: Bearer <token>`, if present (scheme case-insensitive).
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get(AUTHORIZATION_HEADER)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Sets `authorization: Bearer <token>` on an outgoing request.
pub fn attach_bearer<T>(request: &mut Request<T>, token: &str) -> Result<(), Status> {
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Status::internal("internal token is not valid metadata"))?;
    request.metadata_mut().insert(AUTHORIZATION_HEADER, value);
    Ok(())
}

/// The request id a caller sent in `x-request-id`, if it is a plain short token. Reused
/// internal tokens carry the id of the call that minted them, so this header is where a
/// call's own id comes from. The rule matches `rpc_layer`'s, so logs and events agree
/// and nothing that could be personal data becomes a request id. The header is not
/// signed: a token holder may label its calls, which is acceptable because request ids
/// only correlate logs and events and never decide anything.
fn call_request_id(metadata: &MetadataMap) -> Option<RequestId> {
    let value = metadata.get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    plain.then(|| value.parse().ok()).flatten()
}

/// Server interceptor: admits only calls with a valid internal token for this service
/// and records the caller as a [`Principal`] in the request extensions.
///
/// Signatures are checked once per token and cached (bounded) with the claims; expiry,
/// audience and the signing key's trust are checked again on every call. The cache
/// belongs to this interceptor and its clones, which share one verifier: a verifier with
/// another trust set (a restart with new keys) comes with a new, empty cache.
///
/// Install it per service (`FooServer::with_interceptor(svc, auth)`), so health and
/// reflection stay open.
#[derive(Debug, Clone)]
pub struct InternalAuth {
    verifier: Arc<TokenVerifier>,
    verified: Arc<VerifiedTokens>,
}

impl InternalAuth {
    /// An interceptor over `verifier`, caching up to a few thousand verified tokens.
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self::with_cache_capacity(verifier, DEFAULT_CAPACITY)
    }

    /// An interceptor over `verifier` caching at most about `capacity` verified tokens
    /// (0: verify every call in full).
    pub fn with_cache_capacity(verifier: Arc<TokenVerifier>, capacity: usize) -> Self {
        Self {
            verifier,
            verified: Arc::new(VerifiedTokens::with_capacity(capacity)),
        }
    }

    /// The verifier in use.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// Number of verified tokens currently cached.
    pub fn cached_tokens(&self) -> usize {
        self.verified.len()
    }

    /// Verifies the bearer token in `metadata` and returns its principal.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        self.authenticate_at(metadata, SystemTime::now())
    }

    /// [`InternalAuth::authenticate`] as of `now` (tests of expiry on cached tokens).
    pub fn authenticate_at(
        &self,
        metadata: &MetadataMap,
        now: SystemTime,
    ) -> Result<Principal, Status> {
        let verified = bearer_token(metadata)
            .ok_or(AuthError::Missing)
            .and_then(|token| self.verified.verify(&self.verifier, token, now))
            .map_err(|reason| {
                // The reason helps operators; the caller learns nothing about which check
                // failed.
                tracing::debug!(%reason, audience = self.verifier.audience(), "internal token rejected");
                Status::unauthenticated(REJECTED)
            })?;
        let claims = &verified.claims;
        Ok(Principal {
            tenant: claims.tenant,
            principal_id: claims.sub.clone(),
            roles: claims.roles.clone(),
            request_id: call_request_id(metadata).unwrap_or_else(|| claims.request_id.clone()),
        })
    }
}

impl Interceptor for InternalAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.authenticate(request.metadata())?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// Client interceptor for service-to-service calls to one audience. The token is reused
/// while fresh (see [`TokenIssuer::token_for`]); the call's request id is the outgoing
/// `x-request-id` when present, else a new one that is set there, so a call stays
/// correlated with the request that caused it.
#[derive(Debug, Clone)]
pub struct BearerMinter {
    issuer: Arc<TokenIssuer>,
    audience: String,
    principal_id: PrincipalId,
    tenant: Option<TenantId>,
    roles: Vec<Role>,
}

impl BearerMinter {
    /// A minter for calls to `audience` as the given principal.
    pub fn new(
        issuer: Arc<TokenIssuer>,
        audience: impl Into<String>,
        principal_id: PrincipalId,
        tenant: Option<TenantId>,
        roles: Vec<Role>,
    ) -> Self {
        Self {
            issuer,
            audience: audience.into(),
            principal_id,
            tenant,
            roles,
        }
    }

    /// The same minter acting within `tenant` (service principals act per tenant).
    pub fn for_tenant(&self, tenant: TenantId) -> Self {
        Self {
            tenant: Some(tenant),
            ..self.clone()
        }
    }
}

impl Interceptor for BearerMinter {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let request_id = match call_request_id(request.metadata()) {
            Some(id) => id,
            None => {
                let id = RequestId::generate();
                let value = MetadataValue::try_from(id.as_str())
                    .map_err(|_| Status::internal("request id is not valid metadata"))?;
                request.metadata_mut().insert(REQUEST_ID_HEADER, value);
                id
            }
        };
        let token = self
            .issuer
            .reusable(
                &self.audience,
                &self.principal_id,
                self.tenant,
                &self.roles,
                &request_id,
            )
            .map_err(|reason| {
                tracing::warn!(%reason, audience = %self.audience, "cannot mint internal token");
                Status::internal("cannot mint internal token")
            })?;
        attach_bearer(&mut request, &token)?;
        Ok(request)
    }
}
