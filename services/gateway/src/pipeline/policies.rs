//! Tenant privacy policies, compiled once per version: custom recognizers are regexes and
//! word lists, so a policy is compiled when its version changes, not per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// Compiled policies by tenant; an entry is replaced when the stored version changes.
pub struct PolicyCache {
    engine: Arc<Engine>,
    compiled: Mutex<HashMap<TenantId, Arc<TenantPolicy>>>,
}

impl PolicyCache {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's current policy.
    pub async fn get(
        &self,
        pool: &sqlx::PgPool,
        tenant: TenantId,
    ) -> Result<Arc<TenantPolicy>, ServiceError> {
        let stored = policy_store::current_policy(pool, tenant).await?;
        if let Some(cached) = self.cached(tenant)
            && cached.version == stored.version
        {
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
        if let Ok(mut map) = self.compiled.lock() {
            map.insert(tenant, compiled.clone());
        }
        Ok(compiled)
    }

    fn cached(&self, tenant: TenantId) -> Option<Arc<TenantPolicy>> {
        self.compiled.lock().ok()?.get(&tenant).cloned()
    }
}
