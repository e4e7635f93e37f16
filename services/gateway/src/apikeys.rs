//! API keys: `veil_<key id>_<secret>`. Only a SHA-256 of the secret is stored (the
//! secret is 256 random bits, so a slow hash adds nothing); the key id is a visible
//! prefix for listings and logs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tonic::Status;
use tonic::metadata::MetadataMap;
use veil_core::crypto::constant_time_eq;
use veil_core::types::{Role, TenantId};

use crate::settings::GatewaySettings;
use crate::store;

const KEY_PREFIX: &str = "veil_";
const KEY_ID_LEN: usize = 12;

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

/// Checks `authorization: Bearer veil_...` against the stored hashes.
pub struct Authenticator {
    pool: PgPool,
    bootstrap_hash: Option<Vec<u8>>,
}

impl Authenticator {
    pub fn new(pool: PgPool, settings: &GatewaySettings) -> Self {
        let bootstrap = settings.bootstrap_admin_key.expose();
        Self {
            pool,
            bootstrap_hash: (!bootstrap.is_empty()).then(|| hash_secret(bootstrap)),
        }
    }

    /// The caller behind the request's credential, or UNAUTHENTICATED.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let denied = || Status::unauthenticated("missing or invalid API key");
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(denied)?;
        if let Some(bootstrap) = &self.bootstrap_hash
            && constant_time_eq(&hash_secret(token), bootstrap)
        {
            return Ok(Caller {
                key_id: "bootstrap".into(),
                tenant: None,
                roles: vec![Role::PlatformAdmin],
            });
        }
        let (key_id, secret) = parse(token).ok_or_else(denied)?;
        let stored = store::active_key(&self.pool, key_id)
            .await
            .map_err(|error| Status::from(veil_core::error::ServiceError::from(error)))?
            .ok_or_else(denied)?;
        if !constant_time_eq(&hash_secret(secret), &stored.secret_hash) {
            return Err(denied());
        }
        let roles = stored
            .roles
            .iter()
            .filter_map(|r| r.parse::<Role>().ok())
            .collect();
        Ok(Caller {
            key_id: stored.key_id,
            tenant: Some(TenantId::from_uuid(stored.tenant_id)),
            roles,
        })
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
