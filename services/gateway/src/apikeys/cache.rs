//! Verified API keys kept in memory for a short time, so most calls need no database
//! lookup. Only the stored hash is kept (never a secret): every call still hashes the
//! presented secret and compares it, so a wrong secret is refused even on a cache hit.
//!
//! Revocation reaches every replica within [`KEY_TTL`] at the latest: an entry is
//! trusted for that long after it was read, and the `gateway.api_key_revoked` event
//! (followed by every replica) drops it sooner, usually within milliseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;
use veil_core::types::Role;

/// How long a key read from the database is trusted without reading it again; the upper
/// bound for a revocation to take effect when its event is lost.
pub const KEY_TTL: Duration = Duration::from_secs(5);

/// Entries kept before the cache starts over (bounds memory under key churn).
const MAX_ENTRIES: usize = 10_000;

/// An active key as stored: enough to check a presented secret and build the caller.
#[derive(Debug)]
pub struct ActiveKey {
    pub key_id: String,
    pub tenant_id: Uuid,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    pub roles: Vec<Role>,
    /// The key stops working at this time even while cached.
    pub expires_at: Option<time::OffsetDateTime>,
}

impl ActiveKey {
    fn expired(&self) -> bool {
        self.expires_at
            .is_some_and(|at| at <= time::OffsetDateTime::now_utc())
    }
}

/// Keys by key id, each with when it was read.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<ActiveKey>)>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(KEY_TTL)
    }
}

impl KeyCache {
    /// A cache trusting entries for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The key if it was read less than the TTL ago and has not expired since.
    pub fn get(&self, key_id: &str) -> Option<Arc<ActiveKey>> {
        let entries = self.entries.lock().ok()?;
        let (at, key) = entries.get(key_id)?;
        (at.elapsed() < self.ttl && !key.expired()).then(|| key.clone())
    }

    /// Remembers a key just read from the database.
    pub fn put(&self, key: Arc<ActiveKey>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key.key_id.clone(), (Instant::now(), key));
        }
    }

    /// Drops a key (it was revoked).
    pub fn forget(&self, key_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, expires_at: Option<time::OffsetDateTime>) -> Arc<ActiveKey> {
        Arc::new(ActiveKey {
            key_id: id.into(),
            tenant_id: Uuid::nil(),
            secret_hash: vec![1, 2, 3],
            roles: vec![Role::Bot],
            expires_at,
        })
    }

    #[test]
    fn entries_live_for_the_ttl_only() {
        let cache = KeyCache::new(Duration::from_millis(50));
        cache.put(key("abc", None));
        assert!(cache.get("abc").is_some());
        assert!(cache.get("other").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            cache.get("abc").is_none(),
            "a stale entry must be read again"
        );
    }

    #[test]
    fn forgotten_and_expired_keys_are_not_served() {
        let cache = KeyCache::default();
        cache.put(key("abc", None));
        cache.forget("abc");
        assert!(cache.get("abc").is_none());
        let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        cache.put(key("old", Some(past)));
        assert!(cache.get("old").is_none());
    }
}
