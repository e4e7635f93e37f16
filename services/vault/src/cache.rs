//! A bounded, expiring in-memory cache for unwrapped keys.
//!
//! Unwrapping a data key needs its tenant KEK, and unwrapping a KEK needs the key
//! provider (a remote KMS call in production), so unwrapped keys are kept for a while.
//! The bound and the TTL limit how much key material sits in memory and for how long;
//! evicted `KeyBytes` are zeroized when dropped. Correctness never depends on the cache:
//! every use re-reads the wrapped key's row, so a shredded key is unusable even while an
//! entry for it is still cached on some replica.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Inner<K, V> {
    entries: HashMap<K, (V, Instant, u64)>,
    // Insertion order for FIFO eviction; may hold keys already removed or re-inserted,
    // which eviction skips by comparing the insertion sequence number.
    order: VecDeque<(K, u64)>,
    sequence: u64,
}

/// A map with at most `capacity` entries, each valid for `ttl` after insertion.
pub struct KeyCache<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> KeyCache<K, V> {
    /// An empty cache; `capacity` is at least 1.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                sequence: 0,
            }),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // A panic while holding the lock leaves the maps consistent (every operation is
        // a few map calls), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value for `key` if present and not expired.
    pub fn get(&self, key: &K) -> Option<V> {
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some((value, at, _)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value`, evicting expired entries and then the oldest ones to stay within
    /// the bound.
    pub fn insert(&self, key: K, value: V) {
        let mut inner = self.lock();
        inner.sequence += 1;
        let sequence = inner.sequence;
        inner
            .entries
            .insert(key.clone(), (value, Instant::now(), sequence));
        inner.order.push_back((key, sequence));
        while inner.entries.len() > self.capacity {
            let Some((old, old_sequence)) = inner.order.pop_front() else {
                break;
            };
            let live = inner
                .entries
                .get(&old)
                .is_some_and(|(_, _, stored)| *stored == old_sequence);
            if live {
                inner.entries.remove(&old);
            }
        }
        // Re-inserts and removals leave stale slots behind; compacting once the queue is
        // twice the bound keeps it O(capacity) at amortized O(1) per insert.
        if inner.order.len() > 2 * self.capacity {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(key, sequence)| {
                entries
                    .get(key)
                    .is_some_and(|(_, _, stored)| stored == sequence)
            });
        }
    }

    /// Drops `key` (e.g. a shredded subject's key).
    pub fn remove(&self, key: &K) {
        self.lock().entries.remove(key);
    }

    /// Entries currently held (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_bound_and_evicts_oldest_first() {
        let cache = KeyCache::new(3, Duration::from_secs(60));
        for i in 0..10 {
            cache.insert(i, i * 10);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&9), Some(90));
        assert_eq!(cache.get(&7), Some(70));
        assert_eq!(cache.get(&6), None);
        // Re-inserting a key refreshes it instead of letting its old slot evict it.
        cache.insert(7, 71);
        cache.insert(10, 100);
        assert_eq!(cache.get(&7), Some(71));
        assert!(cache.len() <= 3);
    }

    #[test]
    fn entries_expire() {
        let cache = KeyCache::new(10, Duration::from_millis(0));
        cache.insert("k", 1);
        assert_eq!(cache.get(&"k"), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn remove_forgets() {
        let cache = KeyCache::new(10, Duration::from_secs(60));
        cache.insert(1, 1);
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn order_queue_does_not_grow_without_bound_on_reinserts() {
        let cache = KeyCache::new(2, Duration::from_secs(60));
        for _ in 0..1000 {
            cache.insert(1, 1);
        }
        assert!(cache.lock().order.len() <= 4);
        assert_eq!(cache.get(&1), Some(1));
    }
}
