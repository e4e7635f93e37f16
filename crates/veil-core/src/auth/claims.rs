//! Internal token claims, minting and verification.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::reuse::TokenReuse;
use super::{AuthError, Principal};
use crate::crypto::jws::{self, KeySet};
use crate::types::{PrincipalId, RequestId, Role, TenantId};

/// JWS `typ` of internal tokens; keeps them apart from other JWS (e.g. consent receipts).
pub const INTERNAL_TOKEN_TYPE: &str = "veil-internal+jwt";
/// Lifetime of a minted token unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Clock skew tolerated between services.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Longest lifetime a verifier accepts, so a leaked token is useful only briefly.
pub const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// The claims of an internal token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalClaims {
    /// Issuer, e.g. `veil-gateway`.
    pub iss: String,
    /// The one service the token is for.
    pub aud: String,
    /// The principal the call is made for.
    pub sub: PrincipalId,
    /// The tenant, or none for platform-wide principals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The principal's roles.
    pub roles: Vec<Role>,
    /// The public request that caused the token to be minted. A token is reused for
    /// later calls of the same principal (see [`TokenIssuer::token_for`]), whose own
    /// request ids travel in `x-request-id`; [`super::InternalAuth`] prefers that.
    pub request_id: RequestId,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// Unique token id. It names the token, not a call: there is no replay list, and a
    /// token is reused within its lifetime (see `reuse`).
    pub jti: String,
}

impl InternalClaims {
    /// The principal these claims describe.
    pub fn principal(&self) -> Principal {
        Principal {
            tenant: self.tenant,
            principal_id: self.sub.clone(),
            roles: self.roles.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

fn unix_seconds(time: SystemTime) -> Result<u64, AuthError> {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| AuthError::Clock)
}

/// Mints internal tokens with one signing key.
pub struct TokenIssuer {
    key: SigningKey,
    kid: String,
    issuer: String,
    ttl: Duration,
    reuse: Arc<TokenReuse>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with `key`, published under `kid`, naming itself `issuer`.
    pub fn new(key: SigningKey, kid: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            key,
            kid: kid.into(),
            issuer: issuer.into(),
            ttl: DEFAULT_TTL,
            reuse: Arc::default(),
        }
    }

    /// Sets the lifetime of tokens minted by [`TokenIssuer::mint_for`].
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        // Tokens held for reuse were minted with the old lifetime.
        self.reuse = Arc::default();
        self
    }

    /// The lifetime of tokens minted by [`TokenIssuer::mint_for`].
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The key id in minted tokens' headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key verifiers must trust under [`TokenIssuer::kid`].
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Mints a token for `audience` carrying the given principal.
    pub fn mint(
        &self,
        audience: &str,
        principal_id: &PrincipalId,
        tenant: Option<TenantId>,
        roles: &[Role],
        request_id: &RequestId,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let now = unix_seconds(SystemTime::now())?;
        self.sign(&InternalClaims {
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            sub: principal_id.clone(),
            tenant,
            roles: roles.to_vec(),
            request_id: request_id.clone(),
            iat: now,
            exp: now + ttl.as_secs(),
            jti: Uuid::now_v7().to_string(),
        })
    }

    /// Mints a token for `audience` carrying `principal`, with the configured lifetime.
    pub fn mint_for(&self, audience: &str, principal: &Principal) -> Result<String, AuthError> {
        self.mint(
            audience,
            &principal.principal_id,
            principal.tenant,
            &principal.roles,
            &principal.request_id,
            self.ttl,
        )
    }

    /// A token for `audience` carrying `principal`, reused for every call of the same
    /// principal (id, tenant, roles) to the same audience during the first half of the
    /// configured lifetime, so receivers verify its signature once and then hit their
    /// cache. The token's `request_id` is the one of the call that minted it: send each
    /// call's own id in `x-request-id`. Why reuse is acceptable: see `reuse`.
    pub fn token_for(&self, audience: &str, principal: &Principal) -> Result<Arc<str>, AuthError> {
        self.reusable(
            audience,
            &principal.principal_id,
            principal.tenant,
            &principal.roles,
            &principal.request_id,
        )
    }

    /// [`TokenIssuer::token_for`] from the principal's parts.
    pub fn reusable(
        &self,
        audience: &str,
        principal_id: &PrincipalId,
        tenant: Option<TenantId>,
        roles: &[Role],
        request_id: &RequestId,
    ) -> Result<Arc<str>, AuthError> {
        self.reuse
            .get_or_mint(audience, principal_id, tenant, roles, self.ttl / 2, || {
                self.mint(audience, principal_id, tenant, roles, request_id, self.ttl)
            })
    }

    /// Signs exactly these claims (tests and tools that need explicit times).
    pub fn sign(&self, claims: &InternalClaims) -> Result<String, AuthError> {
        Ok(jws::sign(
            &self.key,
            &self.kid,
            INTERNAL_TOKEN_TYPE,
            claims,
        )?)
    }
}

/// Verifies internal tokens addressed to one service.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: KeySet,
    audience: String,
    leeway: Duration,
    max_lifetime: Duration,
}

impl TokenVerifier {
    /// A verifier for tokens whose audience is `audience`, trusting no key yet.
    pub fn new(audience: impl Into<String>) -> Self {
        Self {
            keys: KeySet::new(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: MAX_LIFETIME,
        }
    }

    /// Trusts `key` for tokens whose header names `kid`.
    pub fn trust(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(kid, key);
    }

    /// Builder form of [`TokenVerifier::trust`].
    pub fn with_key(mut self, kid: impl Into<String>, key: VerifyingKey) -> Self {
        self.trust(kid, key);
        self
    }

    /// Sets the tolerated clock skew.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The trusted keys (e.g. to publish as JWKS).
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The audience this verifier accepts.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies `token` against the current time.
    pub fn verify(&self, token: &str) -> Result<InternalClaims, AuthError> {
        self.verify_at(token, SystemTime::now())
    }

    /// Verifies `token` as of `now`: signature, algorithm, key id, type, audience,
    /// expiry, issue time and lifetime.
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<InternalClaims, AuthError> {
        let claims: InternalClaims = jws::verify(token, INTERNAL_TOKEN_TYPE, &self.keys)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    /// The checks of [`TokenVerifier::verify_at`] that do not need the signature:
    /// lifetime, expiry, issue time and audience. Run on every call, also when the
    /// signature was verified earlier and cached.
    pub fn check_claims(&self, claims: &InternalClaims, now: SystemTime) -> Result<(), AuthError> {
        let now = unix_seconds(now)?;
        let leeway = self.leeway.as_secs();
        if claims.exp <= claims.iat || claims.exp - claims.iat > self.max_lifetime.as_secs() {
            return Err(AuthError::Lifetime);
        }
        if now >= claims.exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(AuthError::NotYetValid);
        }
        if claims.aud != self.audience {
            return Err(AuthError::Audience);
        }
        Ok(())
    }
}
