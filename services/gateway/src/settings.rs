//! The gateway's own settings (`[service]` in gateway.toml, `VEIL_SERVICE__*`).

use serde::Deserialize;
use veil_core::config::{ConfigError, Validate};
use veil_core::types::Personal;

/// Where the internal services are and how the first administrator gets in.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// gRPC URL of the consent service.
    pub consent_url: String,
    /// gRPC URL of the vault service.
    pub vault_url: String,
    /// gRPC URL of the retention service.
    pub retention_url: String,
    /// gRPC URL of the audit service.
    pub audit_url: String,
    /// A platform-admin secret for bootstrapping (creating the first tenants and keys).
    /// Empty disables it. Treat like a root password; at least 32 characters.
    pub bootstrap_admin_key: Personal<String>,
    /// Sustained calls per second per API key (0 disables the limit).
    pub rate_limit_per_second: u32,
    /// Burst size per API key.
    pub rate_limit_burst: u32,
    /// Load balancers whose `x-forwarded-for` names the caller (networks such as
    /// `10.0.0.0/8`, or addresses); empty ignores the header. Only the caller's keyed
    /// hash is recorded, in authentication-failure events.
    pub trusted_proxies: Vec<String>,
    /// How long the answer to a message sent with an idempotency key is kept, so that a
    /// retry within it gets the same answer (60 s to 30 days).
    pub idempotency_window_secs: u64,
    /// How far apart the replicas' clocks may be, in milliseconds (at most 60,000). A
    /// message begun less than this after an erasure of its subject (by the erasing
    /// replica's clock) is refused with it, since it may have begun before it.
    pub clock_skew_ms: u64,
    /// JWTs from an OIDC issuer (`[service.jwt]`); disabled unless `issuer` is set.
    pub jwt: crate::jwt::JwtSettings,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            consent_url: "http://127.0.0.1:50052".into(),
            vault_url: "http://127.0.0.1:50053".into(),
            retention_url: "http://127.0.0.1:50054".into(),
            audit_url: "http://127.0.0.1:50055".into(),
            bootstrap_admin_key: Personal::new(String::new()),
            rate_limit_per_second: 500,
            rate_limit_burst: 1000,
            trusted_proxies: Vec::new(),
            idempotency_window_secs: 86_400,
            clock_skew_ms: 1_000,
            jwt: crate::jwt::JwtSettings::default(),
        }
    }
}

/// Bounds of `service.idempotency_window_secs`: a minute to 30 days.
const IDEMPOTENCY_WINDOW_SECS: std::ops::RangeInclusive<u64> = 60..=30 * 86_400;

impl GatewaySettings {
    /// `idempotency_window_secs` as a duration.
    pub fn idempotency_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idempotency_window_secs)
    }

    /// `clock_skew_ms` as a duration (checked by `validate`).
    pub fn clock_skew(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.clock_skew_ms)
    }
}

impl Validate for GatewaySettings {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("service.consent_url", &self.consent_url),
            ("service.vault_url", &self.vault_url),
            ("service.retention_url", &self.retention_url),
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
        let bootstrap = self.bootstrap_admin_key.expose();
        if !bootstrap.is_empty() && bootstrap.len() < 32 {
            return Err(ConfigError::invalid(
                "service.bootstrap_admin_key",
                "must be empty or at least 32 characters",
            ));
        }
        if !IDEMPOTENCY_WINDOW_SECS.contains(&self.idempotency_window_secs) {
            return Err(ConfigError::invalid(
                "service.idempotency_window_secs",
                "must be between 60 and 2592000 (30 days)",
            ));
        }
        veil_core::config::clock_skew("service.clock_skew_ms", self.clock_skew_ms)?;
        crate::peer::TrustedProxies::parse(&self.trusted_proxies)?;
        self.jwt.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_window_is_bounded() {
        assert!(GatewaySettings::default().validate().is_ok());
        for secs in [0, 59, 30 * 86_400 + 1] {
            let settings = GatewaySettings {
                idempotency_window_secs: secs,
                ..Default::default()
            };
            let error = settings.validate().expect_err("refused").to_string();
            assert!(error.contains("service.idempotency_window_secs"), "{error}");
        }
    }

    #[test]
    fn the_clock_skew_is_bounded() {
        let settings = |ms| GatewaySettings {
            clock_skew_ms: ms,
            ..Default::default()
        };
        assert!(settings(0).validate().is_ok());
        assert!(settings(60_000).validate().is_ok());
        let error = settings(60_001)
            .validate()
            .expect_err("refused")
            .to_string();
        assert!(error.contains("service.clock_skew_ms"), "{error}");
    }
}
