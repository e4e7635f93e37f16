//! The consent service's own settings (`[service]` in consent.toml, `VEIL_SERVICE__*`).

use std::collections::BTreeMap;

use serde::Deserialize;
use veil_core::config::{ConfigError, Validate};
use veil_core::types::Personal;

/// Receipt keys, decision cache and notice defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ConsentSettings {
    /// Base64 32-byte Ed25519 seed that signs consent receipts. Empty means receipts are
    /// signed with `auth.signing_key` under `auth.key_id` (development only; a warning is
    /// logged at start-up).
    pub receipt_signing_key: Personal<String>,
    /// Key id (`kid`) of `receipt_signing_key`; empty means its RFC 7638 thumbprint.
    pub receipt_key_id: String,
    /// Retired receipt public keys (key id -> base64 public key) still published in the
    /// JWKS so that old receipts keep verifying.
    pub retired_receipt_keys: BTreeMap<String, String>,
    /// Subjects kept in the in-process decision cache; 0 disables the cache.
    pub cache_capacity: usize,
    /// Longest time a cached subject state is used, in milliseconds. Also the longest a
    /// write waits for a replica that does not confirm an invalidation.
    pub cache_ttl_ms: u64,
    /// How often a replica renews its entry in the replica registry, in milliseconds.
    pub cache_heartbeat_ms: u64,
    /// Locale of last resort for notices when the tenant set none.
    pub default_locale: String,
}

impl Default for ConsentSettings {
    fn default() -> Self {
        Self {
            receipt_signing_key: Personal::new(String::new()),
            receipt_key_id: String::new(),
            retired_receipt_keys: BTreeMap::new(),
            cache_capacity: 100_000,
            cache_ttl_ms: 2_000,
            cache_heartbeat_ms: 1_000,
            default_locale: "en".into(),
        }
    }
}

impl Validate for ConsentSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let seed = self.receipt_signing_key.expose();
        if !seed.is_empty() && veil_core::auth::signing_key_from_base64(seed).is_err() {
            return Err(ConfigError::invalid(
                "service.receipt_signing_key",
                "must be a base64 32-byte ed25519 seed",
            ));
        }
        for (kid, key) in &self.retired_receipt_keys {
            if kid.is_empty() || veil_core::auth::verifying_key_from_base64(key).is_err() {
                return Err(ConfigError::invalid(
                    "service.retired_receipt_keys",
                    "must map non-empty key ids to base64 ed25519 public keys",
                ));
            }
        }
        if !(100..=60_000).contains(&self.cache_ttl_ms) {
            return Err(ConfigError::invalid(
                "service.cache_ttl_ms",
                "must be between 100 and 60000",
            ));
        }
        if self.cache_heartbeat_ms < 50 || self.cache_heartbeat_ms > self.cache_ttl_ms {
            return Err(ConfigError::invalid(
                "service.cache_heartbeat_ms",
                "must be at least 50 and at most service.cache_ttl_ms",
            ));
        }
        if crate::domain::validate_locale(&self.default_locale).is_err() {
            return Err(ConfigError::invalid(
                "service.default_locale",
                "must be a BCP 47 language tag",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(ConsentSettings::default().validate().is_ok());
    }

    #[test]
    fn bad_seed_names_the_key_without_the_value() {
        let settings = ConsentSettings {
            receipt_signing_key: Personal::new("not-a-key-secret".into()),
            ..ConsentSettings::default()
        };
        let error = settings.validate().expect_err("must fail").to_string();
        assert!(error.contains("service.receipt_signing_key"), "{error}");
        assert!(!error.contains("not-a-key-secret"), "{error}");
    }

    #[test]
    fn heartbeat_must_fit_in_the_ttl() {
        let settings = ConsentSettings {
            cache_ttl_ms: 500,
            cache_heartbeat_ms: 1_000,
            ..ConsentSettings::default()
        };
        assert!(settings.validate().is_err());
    }
}
