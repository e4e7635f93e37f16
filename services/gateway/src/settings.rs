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
            jwt: crate::jwt::JwtSettings::default(),
        }
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
        crate::peer::TrustedProxies::parse(&self.trusted_proxies)?;
        self.jwt.validate()
    }
}
