//! Verifier-side cache of tokens whose signature has been checked.
//!
//! Callers reuse a token for many calls (see `reuse`), so [`super::InternalAuth`] checks
//! each token's Ed25519 signature once and remembers the claims. Everything else is
//! checked again on every hit: the key that signed the token must still be trusted under
//! the same key id (so a key dropped from the trust set stops its cached tokens at once,
//! not just at the next reload), and expiry, issue time and audience are re-evaluated
//! against the current time. Only tokens that passed full verification are stored, so
//! garbage cannot fill the cache.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use super::{AuthError, InternalClaims, TokenVerifier};

/// Shards; concurrent calls rarely wait on one another's lock.
const SHARDS: usize = 16;
/// Default total capacity. Reusing callers need one entry per (principal, audience) and
/// half-lifetime, so a few thousand cover a large gateway; each entry is about 1 KiB.
pub(super) const DEFAULT_CAPACITY: usize = 4096;

/// What a verified token proved, and which key proved it.
#[derive(Debug)]
pub(super) struct Verified {
    pub(super) claims: InternalClaims,
    kid: String,
    /// None for results that were not cached (caching off).
    key: Option<VerifyingKey>,
}

/// Verified tokens keyed by their exact text (a different byte is a different token, so
/// a forged payload next to a cached signature never matches).
pub(super) struct VerifiedTokens {
    hasher: RandomState,
    per_shard: usize,
    shards: [RwLock<HashMap<Box<str>, Arc<Verified>>>; SHARDS],
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

#[derive(Deserialize)]
struct KidOnly {
    kid: Option<String>,
}

/// The `kid` of a token's header. Only called after the token verified, so the header is
/// known to be well formed.
fn header_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<KidOnly>(&json).ok()?.kid
}

impl VerifiedTokens {
    /// A cache holding at most about `capacity` tokens; 0 disables caching.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS),
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
        }
    }

    fn shard(&self, token: &str) -> &RwLock<HashMap<Box<str>, Arc<Verified>>> {
        &self.shards[(self.hasher.hash_one(token) % SHARDS as u64) as usize]
    }

    /// Verifies `token` with `verifier` as of `now`, from the cache when it holds the
    /// token and the signing key is still trusted.
    pub(super) fn verify(
        &self,
        verifier: &TokenVerifier,
        token: &str,
        now: SystemTime,
    ) -> Result<Arc<Verified>, AuthError> {
        if self.per_shard == 0 {
            return verifier.verify_at(token, now).map(|claims| {
                Arc::new(Verified {
                    claims,
                    kid: String::new(),
                    key: None,
                })
            });
        }
        let shard = self.shard(token);
        let cached = shard
            .read()
            // A poisoned lock means a panic elsewhere mid-insert; the map is still whole.
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(token)
            .cloned();
        if let Some(hit) = cached
            && hit.key.is_some()
            && verifier.keys().get(&hit.kid) == hit.key.as_ref()
        {
            verifier.check_claims(&hit.claims, now)?;
            return Ok(hit);
        }
        let claims = verifier.verify_at(token, now)?;
        let kid = header_kid(token).unwrap_or_default();
        let key = verifier.keys().get(&kid).copied();
        let verified = Arc::new(Verified { claims, kid, key });
        if key.is_none() {
            // Cannot happen for a token that just verified; serve it uncached.
            return Ok(verified);
        }
        let mut map = shard
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= self.per_shard {
            let now_secs = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            map.retain(|_, entry| entry.claims.exp > now_secs);
            if map.len() >= self.per_shard {
                // All live: more distinct tokens than the bound (callers minting per
                // call). Start the shard over instead of growing.
                map.clear();
            }
        }
        map.insert(token.into(), verified.clone());
        Ok(verified)
    }

    /// Number of cached tokens.
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().map(|map| map.len()).unwrap_or(0))
            .sum()
    }
}
