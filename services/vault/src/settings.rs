//! The vault's own settings (`[service]` in vault.toml, `VEIL_SERVICE__*`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use veil_core::config::{ConfigError, Validate};
use veil_core::crypto::{KeyBytes, parse_key_file};
use veil_core::types::Personal;

/// Master keys, caches, rewrap pacing and request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VaultSettings {
    /// Master keys by version (`"1" = "<base64 32 bytes>"`); merged with `master_key_file`.
    pub master_keys: BTreeMap<String, Personal<String>>,
    /// A file of `version:base64key` lines (see `veil_core::crypto::parse_key_file`).
    /// When set, `RotateMasterKey` without a provider key id appends a generated key.
    pub master_key_file: Option<PathBuf>,
    /// Master version that wraps new tenant keys; 0 means the highest configured one.
    /// A higher version than the one in use starts a master rotation at start-up.
    pub current_master_version: u32,
    /// Unwrapped subject data keys kept in memory.
    pub data_key_cache_size: usize,
    /// Seconds an unwrapped key stays cached.
    pub data_key_cache_ttl_secs: u64,
    /// Unwrapped tenant keys (KEKs and token keys) kept in memory.
    pub tenant_key_cache_size: usize,
    /// Keys rewrapped per transaction during a rotation.
    pub rewrap_batch_size: u32,
    /// Milliseconds between checks for rewrap work when nothing notified the worker.
    pub rewrap_poll_ms: u64,
    /// Largest record value in bytes.
    pub max_record_bytes: usize,
    /// Largest value to tokenize, in bytes.
    pub max_token_value_bytes: usize,
    /// Most items in one `Tokenize` or `Detokenize` call.
    pub max_batch: usize,
    /// How far apart the clocks of the vault's callers and replicas may be, in
    /// milliseconds (at most 60,000): a Tokenize begun less than this after a shred of
    /// its subject is refused, since it may have begun before it.
    pub clock_skew_ms: u64,
}

impl Default for VaultSettings {
    fn default() -> Self {
        Self {
            master_keys: BTreeMap::new(),
            master_key_file: None,
            current_master_version: 0,
            data_key_cache_size: 10_000,
            data_key_cache_ttl_secs: 300,
            tenant_key_cache_size: 1_000,
            rewrap_batch_size: 500,
            rewrap_poll_ms: 1_000,
            max_record_bytes: 1024 * 1024,
            max_token_value_bytes: 64 * 1024,
            max_batch: 1_000,
            clock_skew_ms: 1_000,
        }
    }
}

impl VaultSettings {
    /// Every configured master key by version: the `master_keys` table merged with the
    /// key file. A version present in both must hold the same key.
    pub fn master_key_map(&self) -> Result<BTreeMap<u32, KeyBytes>, ConfigError> {
        let mut keys = BTreeMap::new();
        for (version, encoded) in &self.master_keys {
            let key = format!("service.master_keys.{version}");
            let number = version
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| ConfigError::invalid(&key, "version must be a positive integer"))?;
            let material = KeyBytes::from_base64(encoded.expose())
                .map_err(|_| ConfigError::invalid(&key, "must be 32 bytes in base64"))?;
            keys.insert(number, material);
        }
        if let Some(path) = &self.master_key_file {
            let contents = std::fs::read_to_string(path)
                .map_err(|_| ConfigError::invalid("service.master_key_file", "cannot be read"))?;
            let contents = zeroize::Zeroizing::new(contents);
            let from_file = parse_key_file(&contents)
                .map_err(|e| ConfigError::invalid("service.master_key_file", e.to_string()))?;
            for (version, material) in from_file {
                match keys.get(&version) {
                    Some(existing) if *existing != material => {
                        return Err(ConfigError::invalid(
                            "service.master_key_file",
                            format!("version {version} differs from service.master_keys"),
                        ));
                    }
                    _ => {
                        keys.insert(version, material);
                    }
                }
            }
        }
        if keys.is_empty() {
            return Err(ConfigError::invalid(
                "service.master_keys",
                "at least one master key is required (or service.master_key_file)",
            ));
        }
        if self.current_master_version != 0 && !keys.contains_key(&self.current_master_version) {
            return Err(ConfigError::invalid(
                "service.current_master_version",
                "must be 0 or a configured master key version",
            ));
        }
        Ok(keys)
    }

    /// `clock_skew_ms` as a duration (checked by `validate`).
    pub fn clock_skew(&self) -> Duration {
        Duration::from_millis(self.clock_skew_ms)
    }

    /// How long cached keys live.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.data_key_cache_ttl_secs)
    }
}

impl Validate for VaultSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.master_key_map()?;
        let positive = [
            ("service.data_key_cache_size", self.data_key_cache_size),
            ("service.tenant_key_cache_size", self.tenant_key_cache_size),
            ("service.rewrap_batch_size", self.rewrap_batch_size as usize),
            ("service.max_record_bytes", self.max_record_bytes),
            ("service.max_token_value_bytes", self.max_token_value_bytes),
            ("service.max_batch", self.max_batch),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        veil_core::config::clock_skew("service.clock_skew_ms", self.clock_skew_ms)?;
        veil_core::config::check_durations(&[
            (
                "service.data_key_cache_ttl_secs",
                Duration::from_secs(self.data_key_cache_ttl_secs),
            ),
            (
                "service.rewrap_poll_ms",
                Duration::from_millis(self.rewrap_poll_ms),
            ),
        ])?;
        if self.data_key_cache_ttl_secs == 0 {
            return Err(ConfigError::invalid(
                "service.data_key_cache_ttl_secs",
                "must be at least 1",
            ));
        }
        if self.rewrap_poll_ms == 0 {
            return Err(ConfigError::invalid(
                "service.rewrap_poll_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_keys(entries: &[(&str, String)]) -> VaultSettings {
        VaultSettings {
            master_keys: entries
                .iter()
                .map(|(v, k)| (v.to_string(), Personal::new(k.clone())))
                .collect(),
            ..VaultSettings::default()
        }
    }

    fn b64(byte: u8) -> String {
        KeyBytes::from_array([byte; 32]).to_base64().to_string()
    }

    #[test]
    fn missing_master_key_names_the_setting() {
        let err = VaultSettings::default().validate().unwrap_err().to_string();
        assert!(err.contains("service.master_keys"), "{err}");
    }

    #[test]
    fn bad_entries_name_the_version_and_never_the_value() {
        let err = with_keys(&[("1", "c2hvcnQ=".into())])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("service.master_keys.1"), "{err}");
        assert!(!err.contains("c2hvcnQ"), "{err}");
        let err = with_keys(&[("0", b64(1))])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("positive integer"), "{err}");
        let mut settings = with_keys(&[("1", b64(1))]);
        settings.current_master_version = 2;
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("service.current_master_version"), "{err}");
    }

    #[test]
    fn merges_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        std::fs::write(&path, format!("2:{}\n", b64(2))).unwrap();
        let mut settings = with_keys(&[("1", b64(1))]);
        settings.master_key_file = Some(path.clone());
        let keys = settings.master_key_map().unwrap();
        assert_eq!(keys.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        std::fs::write(&path, format!("1:{}\n", b64(9))).unwrap();
        let err = settings.master_key_map().unwrap_err().to_string();
        assert!(err.contains("service.master_key_file"), "{err}");
    }

    #[test]
    fn limits_must_be_positive() {
        let mut settings = with_keys(&[("1", b64(1))]);
        settings.max_batch = 0;
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("service.max_batch"), "{err}");
    }
}
