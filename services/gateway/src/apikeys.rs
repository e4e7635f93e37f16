//! API keys: `veil_<key id>_<secret>`. Only a SHA-256 of the secret is stored (the
//! secret is 256 random bits, so a slow hash adds nothing); the key id is a visible
//! prefix for listings and logs. Verified keys are cached briefly ([`cache`]).

mod cache;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tonic::Status;
use tonic::metadata::MetadataMap;
use veil_core::crypto::constant_time_eq;
use veil_core::db::retry_if_lost;
use veil_core::emit::{EventContext, emit_alone};
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, OutboxWriter};
use veil_core::subjects::SubjectKeys;
use veil_core::types::{Role, TenantId};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{AuthFailureReason, GatewayAuthFailed};

use crate::jwt::{JwtError, JwtVerifier};
use crate::limits::FailureRecords;
use crate::peer::{Peer, TrustedProxies};
use crate::settings::GatewaySettings;
use crate::store;

use cache::{ActiveKey, KeyCache};

const KEY_PREFIX: &str = "veil_";
const KEY_ID_LEN: usize = 12;
/// The `key_prefix` of a refused call authenticated by a JWT.
pub const JWT_KEY_PREFIX: &str = "jwt";

/// A freshly created key; the secret exists only in this value.
pub struct NewKey {
    pub key_id: String,
    pub secret_hash: Vec<u8>,
    pub token: String,
}

/// Generates a key id and secret.
pub fn generate() -> NewKey {
    let mut rng = rand::thread_rng();
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let key_id: String = (0..KEY_ID_LEN)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect();
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewKey {
        secret_hash: hash_secret(&secret),
        token: format!("{KEY_PREFIX}{key_id}_{secret}"),
        key_id,
    }
}

fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Splits `veil_<id>_<secret>`; the secret may itself contain `_`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (key_id, secret) = rest.split_at_checked(KEY_ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    (!secret.is_empty() && key_id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some((key_id, secret))
}

/// Who is calling the gateway.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Key id (or `bootstrap`); safe to log.
    pub key_id: String,
    /// None for platform administrators.
    pub tenant: Option<TenantId>,
    /// Roles of the key.
    pub roles: Vec<Role>,
}

impl Caller {
    /// Fails with PERMISSION_DENIED unless the caller holds one of `roles`
    /// (platform administrators hold every role).
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Status> {
        if self.roles.contains(&Role::PlatformAdmin) || roles.iter().any(|r| self.roles.contains(r))
        {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(Status::permission_denied(format!(
            "requires one of the roles: {}",
            names.join(", ")
        )))
    }

    /// The caller's tenant, or FAILED_PRECONDITION for a platform principal.
    pub fn tenant(&self) -> Result<TenantId, Status> {
        self.tenant.ok_or_else(|| {
            Status::failed_precondition("this call needs a tenant API key, not a platform key")
        })
    }
}

/// Why authentication failed (recorded for audit's anomaly rules, never with secrets).
#[derive(Debug, Clone, Copy)]
enum Failure {
    Missing,
    UnknownKey,
    InvalidToken,
    ExpiredToken,
}

/// Checks `authorization: Bearer veil_...` against the stored hashes and records every
/// failure as a `gateway.auth_failed` event.
pub struct Authenticator {
    pool: PgPool,
    bootstrap_hash: Option<Vec<u8>>,
    events: EventsConfig,
    /// Failures are batched with other standalone events: a flood of bad credentials
    /// costs a commit per batch, not per attempt.
    outbox: OutboxWriter,
    /// Names peers in failure events by keyed hash.
    subjects: SubjectKeys,
    proxies: TrustedProxies,
    failures: FailureRecords,
    jwt: Option<JwtVerifier>,
    keys: KeyCache,
}

impl Authenticator {
    pub fn new(
        pool: PgPool,
        settings: &GatewaySettings,
        events: EventsConfig,
        outbox: OutboxWriter,
        subjects: SubjectKeys,
    ) -> Self {
        let bootstrap = settings.bootstrap_admin_key.expose();
        Self {
            pool,
            bootstrap_hash: (!bootstrap.is_empty()).then(|| hash_secret(bootstrap)),
            events,
            outbox,
            subjects,
            proxies: TrustedProxies::default(),
            failures: FailureRecords::default(),
            jwt: None,
            keys: KeyCache::default(),
        }
    }

    /// Believes `x-forwarded-for` from these proxies when naming a caller's peer.
    pub fn with_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// The trusted proxies, to resolve a request's [`Peer`] (passed to
    /// [`Self::authenticate_call`] and [`Self::record_denied`]).
    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// Also accepts JWTs from the configured OIDC issuer (bearer tokens that are not
    /// API keys).
    pub fn with_jwt(mut self, verifier: Option<JwtVerifier>) -> Self {
        self.jwt = verifier;
        self
    }

    /// The caller of gRPC method `method` (a path such as
    /// `/veil.gateway.v1.AdminService/CreateTenant`), or UNAUTHENTICATED.
    pub async fn authenticate_call(
        &self,
        metadata: &MetadataMap,
        peer: Peer,
        method: &str,
    ) -> Result<Caller, Status> {
        match self.authenticate(metadata).await {
            Ok(caller) => Ok(caller),
            Err(Ok((failure, key_prefix))) => {
                self.record_failure(method, peer, failure, key_prefix).await;
                Err(Status::unauthenticated("missing or invalid API key"))
            }
            Err(Err(status)) => Err(status),
        }
    }

    /// Stops trusting a cached key (it was revoked); the next call reads it again.
    pub fn forget_key(&self, key_id: &str) {
        self.keys.forget(key_id);
    }

    /// PERMISSION_DENIED, recorded for audit's rules, unless the caller holds one of
    /// `roles` (platform administrators hold every role).
    pub async fn require_roles(
        &self,
        caller: &Caller,
        peer: Peer,
        method: &str,
        roles: &[Role],
    ) -> Result<(), Status> {
        let Err(denied) = caller.require_any(roles) else {
            return Ok(());
        };
        self.record_denied(caller, peer, method, AuthFailureReason::PermissionDenied)
            .await;
        Err(denied)
    }

    /// Records a refused call of an authenticated caller (for reveal-burst and abuse rules).
    pub async fn record_denied(
        &self,
        caller: &Caller,
        peer: Peer,
        method: &str,
        reason: AuthFailureReason,
    ) {
        // A JWT caller presented no key; its subject (often an e-mail address) is not a
        // key prefix and is kept out of the event.
        let prefix = if caller.key_id.starts_with(crate::jwt::PRINCIPAL_PREFIX) {
            JWT_KEY_PREFIX.to_string()
        } else {
            format!("veil_{}", caller.key_id)
        };
        self.emit_failure(caller.tenant, method, peer, reason, prefix)
            .await;
    }

    async fn authenticate(
        &self,
        metadata: &MetadataMap,
    ) -> Result<Caller, Result<(Failure, String), Status>> {
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(Ok((Failure::Missing, String::new())))?;
        if let Some(bootstrap) = &self.bootstrap_hash
            && constant_time_eq(&hash_secret(token), bootstrap)
        {
            return Ok(Caller {
                key_id: "bootstrap".into(),
                tenant: None,
                roles: vec![Role::PlatformAdmin],
            });
        }
        if let Some(jwt) = &self.jwt
            && !token.starts_with(KEY_PREFIX)
        {
            return jwt.verify(token).await.map_err(|error| {
                tracing::debug!(error = %error, "jwt refused");
                match error {
                    JwtError::Expired => Ok((Failure::ExpiredToken, String::new())),
                    _ => Ok((Failure::InvalidToken, String::new())),
                }
            });
        }
        let (key_id, secret) = parse(token).ok_or(Ok((Failure::UnknownKey, String::new())))?;
        let prefix = format!("{KEY_PREFIX}{key_id}");
        let stored = match self.keys.get(key_id) {
            Some(key) => key,
            None => {
                let row = retry_if_lost(|| store::active_key(&self.pool, key_id))
                    .await
                    .map_err(|error| Err(Status::from(ServiceError::from(error))))?
                    .ok_or_else(|| Ok((Failure::UnknownKey, prefix.clone())))?;
                let key = Arc::new(ActiveKey {
                    roles: row
                        .roles
                        .iter()
                        .filter_map(|r| r.parse::<Role>().ok())
                        .collect(),
                    key_id: row.key_id,
                    tenant_id: row.tenant_id,
                    secret_hash: row.secret_hash,
                    expires_at: row.expires_at,
                });
                // Only keys that exist are cached: unknown ids cannot fill the cache.
                self.keys.put(key.clone());
                key
            }
        };
        if !constant_time_eq(&hash_secret(secret), &stored.secret_hash) {
            return Err(Ok((Failure::UnknownKey, prefix)));
        }
        Ok(Caller {
            key_id: stored.key_id.clone(),
            tenant: Some(TenantId::from_uuid(stored.tenant_id)),
            roles: stored.roles.clone(),
        })
    }

    async fn record_failure(&self, method: &str, peer: Peer, failure: Failure, key_prefix: String) {
        let reason = match failure {
            Failure::Missing => AuthFailureReason::MissingCredential,
            Failure::UnknownKey => AuthFailureReason::UnknownKey,
            Failure::InvalidToken => AuthFailureReason::InvalidToken,
            Failure::ExpiredToken => AuthFailureReason::Expired,
        };
        // The tenant is unknown for a bad credential; the event is installation-wide.
        self.emit_failure(None, method, peer, reason, key_prefix)
            .await;
    }

    async fn emit_failure(
        &self,
        tenant: Option<TenantId>,
        method: &str,
        peer: Peer,
        reason: AuthFailureReason,
        key_prefix: String,
    ) {
        let peer_ref = peer
            .address()
            .map(|address| self.subjects.peer_ref(address))
            .unwrap_or_default();
        // Grouped as audit's burst rule groups them.
        let source = if peer_ref.is_empty() {
            &key_prefix
        } else {
            &peer_ref
        };
        if !self.failures.due(source) {
            return;
        }
        let context = EventContext {
            tenant,
            ..Default::default()
        };
        let payload = Payload::GatewayAuthFailed(GatewayAuthFailed {
            // The path is the caller's to choose: one that names no method of Veil's
            // (it could carry anything, personal data too) is recorded as `unknown`.
            method: veil_core::rpc_layer::method_label(method).to_string(),
            reason: reason as i32,
            key_prefix,
            peer_ref,
        });
        // Losing a failure signal must not turn a refusal into an internal error.
        if let Err(error) = emit_alone(&self.outbox, &self.events, &context, payload).await {
            tracing::warn!(error = %veil_core::error::ErrorChain(&error), "cannot record auth failure")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back() {
        let key = generate();
        let (id, secret) = parse(&key.token).expect("parses");
        assert_eq!(id, key.key_id);
        assert_eq!(hash_secret(secret), key.secret_hash);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert!(parse("veil_short").is_none());
        assert!(parse("other_abcdefghijkm_secret").is_none());
        assert!(parse("veil_abcdefghijkm_").is_none());
        assert!(parse("veil_abcdefghijkmsecret").is_none());
    }
}
