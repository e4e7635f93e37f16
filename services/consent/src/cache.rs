//! The in-process decision cache: per tenant its purposes, per (tenant, subject) the
//! subject's current state. Decisions are computed from these on every check, so expiry
//! needs no invalidation; writes invalidate (see `invalidation`), and every entry dies
//! after the TTL whatever happens, which bounds staleness if an invalidation is lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;
use veil_proto::common::v1::{Jurisdiction, PurposeDecision};

use crate::domain::{PurposeDef, SubjectState, decide};
use crate::store::purposes::ControllerRow;

/// A subject inside a tenant: the raw 32 bytes of its subject_ref.
pub type SubjectKey = (Uuid, [u8; 32]);

/// The subject key of a 64-hex-character subject_ref.
pub fn subject_key(tenant: Uuid, subject_ref: &str) -> Option<SubjectKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(subject_ref, &mut bytes).ok()?;
    Some((tenant, bytes))
}

/// What decisions need to know about a tenant.
#[derive(Debug, Clone, Default)]
pub struct TenantPurposes {
    pub by_key: HashMap<String, PurposeDef>,
    pub controller: ControllerRow,
}

impl TenantPurposes {
    /// Bundles stored purposes (plus the built-in `model_training` unless overridden).
    pub fn new(stored: Vec<PurposeDef>, controller: ControllerRow) -> Self {
        let mut by_key: HashMap<String, PurposeDef> =
            stored.into_iter().map(|p| (p.key.clone(), p)).collect();
        let builtin = PurposeDef::builtin_model_training();
        by_key.entry(builtin.key.clone()).or_insert(builtin);
        Self { by_key, controller }
    }

    /// The jurisdiction whose defaults apply: the requested one, else the tenant's.
    pub fn jurisdiction(&self, requested: i32) -> i32 {
        if requested == Jurisdiction::Unspecified as i32 {
            self.controller.default_jurisdiction
        } else {
            requested
        }
    }

    /// One decision per key, in order; `Err(key)` names the first unknown purpose.
    pub fn decide_all(
        &self,
        state: &SubjectState,
        keys: &[String],
        jurisdiction: i32,
        now: OffsetDateTime,
    ) -> Result<Vec<PurposeDecision>, String> {
        let jurisdiction = self.jurisdiction(jurisdiction);
        keys.iter()
            .map(|key| match self.by_key.get(key) {
                Some(purpose) => Ok(decide(purpose, state, jurisdiction, now)),
                None => Err(key.clone()),
            })
            .collect()
    }
}

struct Entry<T> {
    value: Arc<T>,
    loaded: Instant,
}

#[derive(Default)]
struct Maps {
    subjects: HashMap<SubjectKey, Entry<SubjectState>>,
    tenants: HashMap<Uuid, Entry<TenantPurposes>>,
}

/// Bounded, TTL-limited, invalidatable cache of subject states and tenant purposes.
pub struct DecisionCache {
    maps: RwLock<Maps>,
    /// Bumped by every invalidation; a load that overlapped one is not cached.
    generation: AtomicU64,
    capacity: usize,
    ttl: Duration,
    origin: Instant,
    /// Milliseconds after `origin` until which the cache may serve (see `invalidation`:
    /// a replica serves from its cache only while writers are sure to reach it).
    serve_until_ms: AtomicU64,
}

impl DecisionCache {
    /// A cache of at most `capacity` subjects whose entries live at most `ttl`; it serves
    /// nothing until [`DecisionCache::serve_until`] is called.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            maps: RwLock::new(Maps::default()),
            generation: AtomicU64::new(0),
            capacity,
            ttl,
            origin: Instant::now(),
            serve_until_ms: AtomicU64::new(0),
        }
    }

    /// The entry lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Lets the cache serve until `deadline`.
    pub fn serve_until(&self, deadline: Instant) {
        let ms = deadline.saturating_duration_since(self.origin).as_millis();
        self.serve_until_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Stops serving (and forgets everything) until the next [`DecisionCache::serve_until`].
    pub fn stop_serving(&self) {
        self.serve_until_ms.store(0, Ordering::Release);
        self.clear();
    }

    /// Whether lookups may be answered from the cache now.
    pub fn serving(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.capacity > 0 && now < self.serve_until_ms.load(Ordering::Acquire)
    }

    /// The current generation; pass it back to `put_*` after loading from the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn fresh<T>(&self, entry: Option<&Entry<T>>) -> Option<Arc<T>> {
        entry
            .filter(|e| e.loaded.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    /// The cached state of a subject, if serving and fresh.
    pub fn subject(&self, key: &SubjectKey) -> Option<Arc<SubjectState>> {
        if !self.serving() {
            return None;
        }
        let maps = self.maps.read().ok()?;
        self.fresh(maps.subjects.get(key))
    }

    /// The cached purposes of a tenant, if serving and fresh.
    pub fn tenant(&self, tenant: Uuid) -> Option<Arc<TenantPurposes>> {
        if !self.serving() {
            return None;
        }
        let maps = self.maps.read().ok()?;
        self.fresh(maps.tenants.get(&tenant))
    }

    /// Caches a subject state loaded while the generation was `generation` (nothing is
    /// cached while not serving: a load may predate writes that did not wait for us).
    pub fn put_subject(&self, key: SubjectKey, state: Arc<SubjectState>, generation: u64) {
        if !self.serving() {
            return;
        }
        let Ok(mut maps) = self.maps.write() else {
            return;
        };
        if self.generation() != generation {
            return;
        }
        if maps.subjects.len() >= self.capacity && !maps.subjects.contains_key(&key) {
            self.evict(&mut maps.subjects);
        }
        maps.subjects.insert(
            key,
            Entry {
                value: state,
                loaded: Instant::now(),
            },
        );
    }

    /// Caches a tenant's purposes loaded while the generation was `generation`.
    pub fn put_tenant(&self, tenant: Uuid, purposes: Arc<TenantPurposes>, generation: u64) {
        if !self.serving() {
            return;
        }
        let Ok(mut maps) = self.maps.write() else {
            return;
        };
        if self.generation() != generation {
            return;
        }
        if maps.tenants.len() >= self.capacity && !maps.tenants.contains_key(&tenant) {
            self.evict(&mut maps.tenants);
        }
        maps.tenants.insert(
            tenant,
            Entry {
                value: purposes,
                loaded: Instant::now(),
            },
        );
    }

    /// Drops expired entries, then about a tenth of the rest (hash order, i.e. arbitrary).
    fn evict<K: Clone + Eq + std::hash::Hash, T>(&self, map: &mut HashMap<K, Entry<T>>) {
        map.retain(|_, e| e.loaded.elapsed() < self.ttl);
        if map.len() >= self.capacity {
            let excess = map.len() + 1 - self.capacity + self.capacity / 10;
            let victims: Vec<K> = map.keys().take(excess).cloned().collect();
            for key in victims {
                map.remove(&key);
            }
        }
    }

    /// Forgets one subject (and stops in-flight loads from caching stale data).
    pub fn invalidate_subject(&self, key: &SubjectKey) {
        if let Ok(mut maps) = self.maps.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            maps.subjects.remove(key);
        }
    }

    /// Forgets a tenant's purposes and all of its subjects.
    pub fn invalidate_tenant(&self, tenant: Uuid) {
        if let Ok(mut maps) = self.maps.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            maps.tenants.remove(&tenant);
            maps.subjects.retain(|(t, _), _| *t != tenant);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut maps) = self.maps.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            maps.subjects.clear();
            maps.tenants.clear();
        }
    }

    /// Number of cached subjects.
    pub fn len(&self) -> usize {
        self.maps.read().map(|m| m.subjects.len()).unwrap_or(0)
    }

    /// Whether no subject is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
