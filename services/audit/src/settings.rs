//! The audit service's own settings (`[service]` in audit.toml, `VEIL_SERVICE__*`).

use std::time::Duration;

use serde::Deserialize;
use veil_core::config::{ConfigError, NoExtra, Validate};
use veil_core::types::Personal;

/// Tree-head signing, the batched writer and the anomaly rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuditSettings {
    /// Base64 Ed25519 seed (or PKCS#8 PEM) that signs tree heads. Empty falls back to
    /// `auth.signing_key` (development and tests only: production keeps a separate key).
    pub signing_key: Personal<String>,
    /// Id published with tree heads; empty means `auth.key_id` when falling back, else
    /// "audit".
    pub signing_key_id: String,
    /// Seconds between scheduled tree heads (signed only when the log has grown).
    pub tree_head_interval_secs: u64,
    /// Most entries appended in one writer transaction.
    pub append_batch: usize,
    /// Milliseconds the writer waits after a batch that was not full (or when nothing
    /// is pending): how long events gather for the next batch.
    pub append_idle_ms: u64,
    /// Memory for the proofs' in-memory copy of the tree (about 64 MB per million
    /// entries); beyond it the lowest levels are read from Postgres.
    pub proof_cache_mb: usize,
    /// Most events the ingest consumer queues in one transaction.
    pub ingest_batch: usize,
    /// Milliseconds the ingest consumer waits for a batch to fill after its first event.
    pub ingest_wait_ms: u64,
    /// `vault.revealed` events by one principal within `reveal_window_secs` that open a
    /// `reveal_burst` incident.
    pub reveal_burst_threshold: u64,
    /// Window of the reveal rule.
    pub reveal_window_secs: u64,
    /// `gateway.auth_failed` events from one peer (or key prefix) within
    /// `auth_failure_window_secs` that open an `auth_failure_burst` incident.
    pub auth_failure_threshold: u64,
    /// Window of the authentication-failure rule.
    pub auth_failure_window_secs: u64,
    /// Personal-data entities found in one tenant's messages within
    /// `pii_volume_window_secs` that open a `pii_volume_spike` incident.
    pub pii_volume_threshold: u64,
    /// Window of the personal-data volume rule.
    pub pii_volume_window_secs: u64,
    /// While an incident of a rule and key is not closed, the same rule and key open no
    /// new one for this many seconds.
    pub incident_cooldown_secs: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            signing_key: Personal::new(String::new()),
            signing_key_id: String::new(),
            tree_head_interval_secs: 60,
            append_batch: 5_000,
            append_idle_ms: 50,
            proof_cache_mb: 256,
            ingest_batch: 500,
            ingest_wait_ms: 50,
            reveal_burst_threshold: 50,
            reveal_window_secs: 60,
            auth_failure_threshold: 20,
            auth_failure_window_secs: 60,
            pii_volume_threshold: 10_000,
            pii_volume_window_secs: 300,
            incident_cooldown_secs: 3_600,
        }
    }
}

/// `veil up` and the end-to-end stack may still load audit with no section of its own;
/// it then runs on the defaults.
impl From<NoExtra> for AuditSettings {
    fn from(_: NoExtra) -> Self {
        Self::default()
    }
}

impl Validate for AuditSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let key = self.signing_key.expose();
        if !key.is_empty() && veil_core::crypto::signing::load_signing_key(key).is_err() {
            return Err(ConfigError::invalid(
                "service.signing_key",
                "must be a base64 Ed25519 seed or a PKCS#8 PEM",
            ));
        }
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        veil_core::config::check_durations(&[
            (
                "service.tree_head_interval_secs",
                secs(self.tree_head_interval_secs),
            ),
            ("service.append_idle_ms", ms(self.append_idle_ms)),
            ("service.ingest_wait_ms", ms(self.ingest_wait_ms)),
            ("service.reveal_window_secs", secs(self.reveal_window_secs)),
            (
                "service.auth_failure_window_secs",
                secs(self.auth_failure_window_secs),
            ),
            (
                "service.pii_volume_window_secs",
                secs(self.pii_volume_window_secs),
            ),
            (
                "service.incident_cooldown_secs",
                secs(self.incident_cooldown_secs),
            ),
        ])?;
        if self.tree_head_interval_secs == 0 {
            return Err(ConfigError::invalid(
                "service.tree_head_interval_secs",
                "must be at least 1",
            ));
        }
        if !(1..=50_000).contains(&self.append_batch) {
            return Err(ConfigError::invalid(
                "service.append_batch",
                "must be between 1 and 50000",
            ));
        }
        if self.proof_cache_mb > 1 << 20 {
            return Err(ConfigError::invalid(
                "service.proof_cache_mb",
                "must be at most 1048576",
            ));
        }
        if !(1..=10_000).contains(&self.ingest_batch) {
            return Err(ConfigError::invalid(
                "service.ingest_batch",
                "must be between 1 and 10000",
            ));
        }
        if self.ingest_wait_ms > 10_000 {
            return Err(ConfigError::invalid(
                "service.ingest_wait_ms",
                "must be at most 10000",
            ));
        }
        if self.append_idle_ms == 0 {
            return Err(ConfigError::invalid(
                "service.append_idle_ms",
                "must be at least 1",
            ));
        }
        for (threshold_key, threshold, window_key, window) in [
            (
                "service.reveal_burst_threshold",
                self.reveal_burst_threshold,
                "service.reveal_window_secs",
                self.reveal_window_secs,
            ),
            (
                "service.auth_failure_threshold",
                self.auth_failure_threshold,
                "service.auth_failure_window_secs",
                self.auth_failure_window_secs,
            ),
            (
                "service.pii_volume_threshold",
                self.pii_volume_threshold,
                "service.pii_volume_window_secs",
                self.pii_volume_window_secs,
            ),
        ] {
            if threshold == 0 {
                return Err(ConfigError::invalid(threshold_key, "must be at least 1"));
            }
            if window == 0 || window > 86_400 {
                return Err(ConfigError::invalid(
                    window_key,
                    "must be between 1 and 86400",
                ));
            }
        }
        Ok(())
    }
}
