//! Tenant privacy policies, compiled once per version: custom recognizers are regexes and
//! word lists, so a policy is compiled when its version changes, not per message.
//!
//! The current version is not read per message either: a tenant's entry is trusted for
//! [`POLICY_TTL`], and a `gateway.policy_changed` event (followed by every replica) makes
//! the next message read it again. So a new policy applies to every message that starts
//! after the event arrived (milliseconds), and at most [`POLICY_TTL`] after it was stored
//! if the event is lost. The replica that stored it invalidates its entry at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_pii::Policy;
use veil_proto::gateway::v1::{ConsentFallback, PrivacyPolicy};

use crate::engine::Engine;
use crate::policy_store;

/// A tenant's policy in both forms.
pub struct TenantPolicy {
    /// Stored version (0 = the built-in default).
    pub version: i64,
    /// The engine's compiled policy.
    pub pii: Policy,
    /// The API form (consent rules, vault storage, privacy commands).
    pub proto: PrivacyPolicy,
}

impl TenantPolicy {
    /// What to do with a message whose purpose lacks consent.
    pub fn fallback_for(&self, purpose: &str) -> ConsentFallback {
        self.proto
            .consent_rules
            .iter()
            .find(|rule| rule.purpose_key == purpose)
            .and_then(|rule| ConsentFallback::try_from(rule.fallback).ok())
            .filter(|f| *f != ConsentFallback::Unspecified)
            .unwrap_or(ConsentFallback::DropPurpose)
    }
}

/// How long a tenant's policy is used without checking for a newer version; the upper
/// bound for a change to take effect when its event is lost.
pub const POLICY_TTL: Duration = Duration::from_secs(5);

/// A tenant's slot: its compiled policy, when that version was last confirmed, and when
/// the last change event arrived (a read started before it may have seen the old version).
#[derive(Default)]
struct Slot {
    policy: Option<Arc<TenantPolicy>>,
    checked: Option<Instant>,
    invalidated: Option<Instant>,
}

/// Compiled policies by tenant; an entry is replaced when the stored version changes.
pub struct PolicyCache {
    engine: Arc<Engine>,
    ttl: Duration,
    slots: Mutex<HashMap<TenantId, Slot>>,
}

impl PolicyCache {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self::with_ttl(engine, POLICY_TTL)
    }

    /// A cache trusting a checked version for `ttl`.
    pub fn with_ttl(engine: Arc<Engine>, ttl: Duration) -> Self {
        Self {
            engine,
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's current policy: from memory while fresh, else read (and compiled when
    /// its version changed).
    pub async fn get(
        &self,
        pool: &sqlx::PgPool,
        tenant: TenantId,
    ) -> Result<Arc<TenantPolicy>, ServiceError> {
        let (fresh, cached) = self.cached(tenant);
        if let (true, Some(policy)) = (fresh, &cached) {
            return Ok(policy.clone());
        }
        let read_at = Instant::now();
        let stored = policy_store::current_policy(pool, tenant).await?;
        if let Some(cached) = cached
            && cached.version == stored.version
        {
            self.store(tenant, read_at, cached.clone());
            return Ok(cached);
        }
        let pii = if stored.version == 0 {
            self.engine.default_policy().clone()
        } else {
            policy_store::to_pii_policy(&stored.proto)?
        };
        let compiled = Arc::new(TenantPolicy {
            version: stored.version,
            pii,
            proto: stored.proto,
        });
        self.store(tenant, read_at, compiled.clone());
        Ok(compiled)
    }

    /// Makes the next message of `tenant` read the current version again.
    pub fn invalidate(&self, tenant: TenantId) {
        if let Ok(mut slots) = self.slots.lock() {
            let slot = slots.entry(tenant).or_default();
            slot.checked = None;
            slot.invalidated = Some(Instant::now());
        }
    }

    /// Whether the cached policy may be used without a read, and the policy.
    fn cached(&self, tenant: TenantId) -> (bool, Option<Arc<TenantPolicy>>) {
        let Ok(slots) = self.slots.lock() else {
            return (false, None);
        };
        match slots.get(&tenant) {
            Some(slot) => (
                slot.checked.is_some_and(|at| at.elapsed() < self.ttl),
                slot.policy.clone(),
            ),
            None => (false, None),
        }
    }

    /// Keeps `policy`, read from a query started at `read_at`, as confirmed then; unless a
    /// change event arrived since, in which case it is used once but read again next time.
    fn store(&self, tenant: TenantId, read_at: Instant, policy: Arc<TenantPolicy>) {
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        let slot = slots.entry(tenant).or_default();
        slot.checked = match slot.invalidated {
            Some(invalidated) if invalidated >= read_at => None,
            _ => Some(read_at),
        };
        slot.policy = Some(policy);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(version: i64) -> Arc<TenantPolicy> {
        Arc::new(TenantPolicy {
            version,
            pii: Engine::new().unwrap().default_policy().clone(),
            proto: policy_store::default_policy(),
        })
    }

    #[test]
    fn a_fresh_entry_is_used_and_an_invalidated_one_is_not() {
        let cache = PolicyCache::with_ttl(Arc::new(Engine::new().unwrap()), POLICY_TTL);
        let tenant = TenantId::generate();
        assert!(!cache.cached(tenant).0);
        cache.store(tenant, Instant::now(), policy(3));
        let (fresh, cached) = cache.cached(tenant);
        assert!(fresh);
        assert_eq!(cached.map(|p| p.version), Some(3));
        cache.invalidate(tenant);
        assert!(!cache.cached(tenant).0);
    }

    #[test]
    fn a_read_that_started_before_an_invalidation_is_not_trusted() {
        let cache = PolicyCache::with_ttl(Arc::new(Engine::new().unwrap()), POLICY_TTL);
        let tenant = TenantId::generate();
        let read_at = Instant::now();
        cache.invalidate(tenant);
        cache.store(tenant, read_at, policy(1));
        assert!(!cache.cached(tenant).0);
        cache.store(tenant, Instant::now(), policy(2));
        assert!(cache.cached(tenant).0);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = PolicyCache::with_ttl(Arc::new(Engine::new().unwrap()), Duration::ZERO);
        let tenant = TenantId::generate();
        cache.store(tenant, Instant::now(), policy(1));
        assert!(!cache.cached(tenant).0);
    }
}
