//! tonic interceptors: server-side token check and client-side token attachment.

use std::sync::Arc;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

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

/// Server interceptor: admits only calls with a valid internal token for this service
/// and records the caller as a [`Principal`] in the request extensions.
///
/// Install it per service (`FooServer::with_interceptor(svc, auth)`), so health and
/// reflection stay open.
#[derive(Debug, Clone)]
pub struct InternalAuth {
    verifier: Arc<TokenVerifier>,
}

impl InternalAuth {
    /// An interceptor over `verifier`.
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self { verifier }
    }

    /// The verifier in use.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// Verifies the bearer token in `metadata` and returns its principal.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        let claims = bearer_token(metadata)
            .ok_or(AuthError::Missing)
            .and_then(|token| self.verifier.verify(token))
            .map_err(|reason| {
                // The reason helps operators; the caller learns nothing about which check
                // failed.
                tracing::debug!(%reason, audience = self.verifier.audience(), "internal token rejected");
                Status::unauthenticated(REJECTED)
            })?;
        Ok(claims.principal())
    }
}

impl Interceptor for InternalAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let principal = self.authenticate(request.metadata())?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// Client interceptor for service-to-service calls: mints a fresh token for one
/// audience on every call. The request id is taken from the outgoing `x-request-id`
/// metadata when present, so a call stays correlated with the request that caused it.
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

    fn request_id(metadata: &MetadataMap) -> RequestId {
        metadata
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(RequestId::generate)
    }
}

impl Interceptor for BearerMinter {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let request_id = Self::request_id(request.metadata());
        let token = self
            .issuer
            .mint(
                &self.audience,
                &self.principal_id,
                self.tenant,
                &self.roles,
                &request_id,
                self.issuer.ttl(),
            )
            .map_err(|reason| {
                tracing::warn!(%reason, audience = %self.audience, "cannot mint internal token");
                Status::internal("cannot mint internal token")
            })?;
        attach_bearer(&mut request, &token)?;
        Ok(request)
    }
}
