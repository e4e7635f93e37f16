//! The retention service's own settings (`[service]` in retention.toml, `VEIL_SERVICE__*`).

use std::time::Duration;

use serde::Deserialize;
use veil_core::config::{ConfigError, Validate};
use veil_core::types::Personal;

/// Peers, schedules, platform caps and the DSR workflow's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// gRPC URL of the gateway (its internal service: transcripts and pseudonym maps).
    pub gateway_url: String,
    /// gRPC URL of the vault.
    pub vault_url: String,
    /// gRPC URL of the consent service.
    pub consent_url: String,
    /// gRPC URL of the audit service (certificate anchoring, access log for exports).
    pub audit_url: String,
    /// Seconds between scheduled sweeps; 0 turns the schedule off (RunSweep still works).
    pub sweep_interval_secs: u64,
    /// Items each owning service handles per purge call of a sweep.
    pub sweep_batch_limit: i32,
    /// Platform caps: the longest period a tenant policy may set, per category, in days.
    /// A tenant can only tighten them.
    pub caps: CapSettings,
    /// Seconds a one-time verification code stays valid.
    pub verification_code_ttl_secs: u64,
    /// Wrong codes before a request is rejected as unverifiable.
    pub verification_max_attempts: i32,
    /// Seconds between retries of unfinished saga steps (erasure, export, holds released).
    pub saga_retry_secs: u64,
    /// Seconds between checks for overdue requests.
    pub overdue_check_secs: u64,
    /// Days DSR records are kept before they are minimized (CCPA 7101: 24 months).
    pub dsr_record_days: u32,
    /// Base64 32-byte Ed25519 seed that signs deletion certificates. Empty means they are
    /// signed with `auth.signing_key` under `auth.key_id` (development only; a warning is
    /// logged at start).
    pub certificate_signing_key: Personal<String>,
    /// Key id (`kid`) of `certificate_signing_key`; empty means its RFC 7638 thumbprint.
    pub certificate_key_id: String,
}

/// Longest retention period per data category, in days.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CapSettings {
    pub transcript_days: u32,
    pub vault_record_days: u32,
    pub consent_record_days: u32,
    pub audit_event_days: u32,
    pub export_days: u32,
    pub dsr_record_days: u32,
}

impl Default for CapSettings {
    fn default() -> Self {
        Self {
            transcript_days: 365,
            vault_record_days: 365 * 3,
            consent_record_days: 365 * 6,
            audit_event_days: 365 * 6,
            export_days: 30,
            dsr_record_days: 365 * 3,
        }
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            gateway_url: "http://127.0.0.1:50051".into(),
            vault_url: "http://127.0.0.1:50053".into(),
            consent_url: "http://127.0.0.1:50052".into(),
            audit_url: "http://127.0.0.1:50055".into(),
            sweep_interval_secs: 3600,
            sweep_batch_limit: 5000,
            caps: CapSettings::default(),
            verification_code_ttl_secs: 900,
            verification_max_attempts: 5,
            saga_retry_secs: 5,
            overdue_check_secs: 300,
            dsr_record_days: 730,
            certificate_signing_key: Personal::new(String::new()),
            certificate_key_id: String::new(),
        }
    }
}

impl Validate for RetentionSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("service.gateway_url", &self.gateway_url),
            ("service.vault_url", &self.vault_url),
            ("service.consent_url", &self.consent_url),
            ("service.audit_url", &self.audit_url),
        ] {
            if url.parse::<http::Uri>().is_err()
                || !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::invalid(
                    key,
                    "must be an http:// or https:// URL",
                ));
            }
        }
        if self.sweep_batch_limit <= 0 {
            return Err(ConfigError::invalid(
                "service.sweep_batch_limit",
                "must be at least 1",
            ));
        }
        if self.verification_max_attempts <= 0 {
            return Err(ConfigError::invalid(
                "service.verification_max_attempts",
                "must be at least 1",
            ));
        }
        let secs = Duration::from_secs;
        let days = veil_core::config::days;
        let caps = &self.caps;
        veil_core::config::check_durations(&[
            (
                "service.sweep_interval_secs",
                secs(self.sweep_interval_secs),
            ),
            (
                "service.verification_code_ttl_secs",
                secs(self.verification_code_ttl_secs),
            ),
            ("service.saga_retry_secs", secs(self.saga_retry_secs)),
            ("service.overdue_check_secs", secs(self.overdue_check_secs)),
            ("service.dsr_record_days", days(self.dsr_record_days)),
            ("service.caps.transcript_days", days(caps.transcript_days)),
            (
                "service.caps.vault_record_days",
                days(caps.vault_record_days),
            ),
            (
                "service.caps.consent_record_days",
                days(caps.consent_record_days),
            ),
            ("service.caps.audit_event_days", days(caps.audit_event_days)),
            ("service.caps.export_days", days(caps.export_days)),
            ("service.caps.dsr_record_days", days(caps.dsr_record_days)),
        ])?;
        if self.saga_retry_secs == 0 || self.overdue_check_secs == 0 {
            return Err(ConfigError::invalid(
                "service.saga_retry_secs",
                "saga_retry_secs and overdue_check_secs must be at least 1",
            ));
        }
        Ok(())
    }
}
