//! Caller-side reuse of internal tokens.
//!
//! Minting is cheap, but every fresh token costs the receiving service a full Ed25519
//! verification, which is most of its CPU on small calls such as `CheckConsent`. A token
//! is therefore reused for every call to the same audience as the same principal (id,
//! tenant and roles) during the first half of its lifetime, so a receiver verifies it
//! once and then answers from its verified-token cache.
//!
//! Reuse is safe because nothing depends on a token being used once: `jti` is an
//! identifier, not a nonce, and no service keeps a replay list. Internal tokens are
//! audience-bound bearer tokens on the private network, valid for at most a minute, so
//! anyone who could capture one could already replay it until it expires; reusing it for
//! half that time changes nothing an attacker can do. The request id of each call
//! travels in `x-request-id` and [`super::InternalAuth`] prefers it to the one signed
//! into the (shared) token.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::types::{PrincipalId, Role, TenantId};

/// Shards of the cache; callers on different principals rarely meet on one lock.
const SHARDS: usize = 8;
/// Most reusable tokens kept per shard. A gateway holds one per (API key, audience)
/// in use, so this bounds memory (about 1 KiB an entry) without limiting reuse.
const PER_SHARD: usize = 512;

/// Who a token is for; a token is reused only for exactly the same values.
struct Holder {
    audience: String,
    principal_id: PrincipalId,
    tenant: Option<TenantId>,
    roles: Vec<Role>,
}

impl Holder {
    fn is(
        &self,
        audience: &str,
        principal_id: &PrincipalId,
        tenant: Option<TenantId>,
        roles: &[Role],
    ) -> bool {
        self.audience == audience
            && &self.principal_id == principal_id
            && self.tenant == tenant
            && self.roles == roles
    }
}

struct Reusable {
    holder: Holder,
    token: Arc<str>,
    /// Last moment this token is handed out; monotonic, so clock steps cannot extend it.
    until: Instant,
}

/// Tokens minted for reuse, keyed by a hash of their holder. Lookups take a read lock
/// and allocate nothing; a hash collision only costs a fresh mint.
pub(super) struct TokenReuse {
    hasher: RandomState,
    shards: [RwLock<HashMap<u64, Reusable>>; SHARDS],
}

impl std::fmt::Debug for TokenReuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReuse").finish_non_exhaustive()
    }
}

impl Default for TokenReuse {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
        }
    }
}

impl TokenReuse {
    fn key(
        &self,
        audience: &str,
        principal_id: &PrincipalId,
        tenant: Option<TenantId>,
        roles: &[Role],
    ) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        audience.hash(&mut hasher);
        principal_id.hash(&mut hasher);
        tenant.hash(&mut hasher);
        roles.hash(&mut hasher);
        hasher.finish()
    }

    fn shard(&self, key: u64) -> &RwLock<HashMap<u64, Reusable>> {
        &self.shards[(key % SHARDS as u64) as usize]
    }

    /// The token for this holder, minting (with `mint`) when none is reusable.
    pub(super) fn get_or_mint<E>(
        &self,
        audience: &str,
        principal_id: &PrincipalId,
        tenant: Option<TenantId>,
        roles: &[Role],
        reuse_for: Duration,
        mint: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<str>, E> {
        let key = self.key(audience, principal_id, tenant, roles);
        let shard = self.shard(key);
        let now = Instant::now();
        {
            // A poisoned lock only means another caller panicked mid-insert; the map
            // itself is still consistent, so keep using it.
            let map = shard
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(entry) = map.get(&key)
                && now < entry.until
                && entry.holder.is(audience, principal_id, tenant, roles)
            {
                return Ok(entry.token.clone());
            }
        }
        let token: Arc<str> = mint()?.into();
        let entry = Reusable {
            holder: Holder {
                audience: audience.to_owned(),
                principal_id: principal_id.clone(),
                tenant,
                roles: roles.to_vec(),
            },
            token: token.clone(),
            until: now + reuse_for,
        };
        let mut map = shard
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= PER_SHARD && !map.contains_key(&key) {
            map.retain(|_, entry| now < entry.until);
            if map.len() >= PER_SHARD {
                // Every entry is live: more holders than the bound. Start over rather
                // than grow; the cost is one extra mint per holder.
                map.clear();
            }
        }
        map.insert(key, entry);
        Ok(token)
    }

    /// Number of tokens held (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().map(|map| map.len()).unwrap_or(0))
            .sum()
    }
}
