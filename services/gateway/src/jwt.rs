//! JWT bearer tokens from the tenant's OIDC issuer, as an alternative to API keys.
//!
//! Keys come from a JWKS file or URL, loaded at start (the gateway refuses to start
//! without them), reloaded every `refresh_secs` and at most every few seconds when a
//! token names an unknown `kid` (so rotations need no restart). Only asymmetric
//! algorithms are accepted (RS256, ES256, EdDSA): a shared HMAC secret would let whoever
//! verifies tokens also mint them. `iss`, `aud`, `exp` and `sub` are required; `nbf` is
//! checked when present.

mod keys;

use std::sync::RwLock;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use veil_core::config::ConfigError;
use veil_core::types::{Role, TenantId};

use crate::apikeys::Caller;

/// `Caller::key_id` of JWT callers starts with this, followed by the token's `sub`.
pub const PRINCIPAL_PREFIX: &str = "jwt:";

/// Shortest pause between re-reads triggered by unknown key ids (a flood of bogus
/// tokens must not turn into a flood of file reads).
const MIN_RELOAD_GAP: Duration = Duration::from_secs(5);

/// `[service.jwt]`: the OIDC issuer whose tokens the gateway accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JwtSettings {
    /// Expected `iss`; empty disables JWT authentication.
    pub issuer: String,
    /// Expected `aud` (one of the token's audiences).
    pub audience: String,
    /// JWKS file with the issuer's public keys.
    pub jwks_path: String,
    /// JWKS URL (http:// or https://), instead of `jwks_path`.
    pub jwks_url: String,
    /// PEM CA certificates for an https `jwks_url`; empty means the public web roots.
    pub jwks_ca_path: String,
    /// Claim holding the tenant id (a UUID).
    pub tenant_claim: String,
    /// Claim holding the roles: an array of names or a space-separated string.
    pub roles_claim: String,
    /// Clock skew allowed for `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// How often the JWKS file is re-read, in seconds.
    pub refresh_secs: u64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: String::new(),
            jwks_path: String::new(),
            jwks_url: String::new(),
            jwks_ca_path: String::new(),
            tenant_claim: "veil_tenant".into(),
            roles_claim: "veil_roles".into(),
            leeway_secs: 60,
            refresh_secs: 300,
        }
    }
}

impl JwtSettings {
    /// Whether JWT authentication is configured.
    pub fn enabled(&self) -> bool {
        !self.issuer.is_empty()
    }

    /// Checks the section (called from the gateway settings' validation).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            if !self.jwks_path.is_empty() || !self.jwks_url.is_empty() {
                return Err(ConfigError::invalid(
                    "service.jwt.issuer",
                    "is required when a JWKS is configured",
                ));
            }
            return Ok(());
        }
        if self.jwks_path.is_empty() == self.jwks_url.is_empty() {
            return Err(ConfigError::invalid(
                "service.jwt.jwks_path",
                "exactly one of jwks_path and jwks_url must be set",
            ));
        }
        let url = &self.jwks_url;
        let web = url.starts_with("http://") || url.starts_with("https://");
        if !url.is_empty() && !web {
            return Err(ConfigError::invalid(
                "service.jwt.jwks_url",
                "must be an http:// or https:// URL",
            ));
        }
        for (key, value) in [
            ("service.jwt.audience", &self.audience),
            ("service.jwt.tenant_claim", &self.tenant_claim),
            ("service.jwt.roles_claim", &self.roles_claim),
        ] {
            if value.is_empty() {
                return Err(ConfigError::invalid(
                    key,
                    "must be set when service.jwt.issuer is",
                ));
            }
        }
        if self.refresh_secs == 0 {
            return Err(ConfigError::invalid(
                "service.jwt.refresh_secs",
                "must be positive",
            ));
        }
        // Tolerated clock skew: beyond an hour an expiry means little (and a leeway
        // longer than the epoch's age would make every check fail outright).
        if self.leeway_secs > 3600 {
            return Err(ConfigError::invalid(
                "service.jwt.leeway_secs",
                "must be at most 3600",
            ));
        }
        veil_core::config::check_durations(&[(
            "service.jwt.refresh_secs",
            std::time::Duration::from_secs(self.refresh_secs),
        )])
    }
}

/// Why a JWT was refused (logged by kind only, never with the token).
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The JWKS cannot be read, fetched or parsed.
    #[error("cannot load the jwks from {origin}: {reason}")]
    Jwks {
        /// The file or URL.
        origin: String,
        /// What went wrong.
        reason: String,
    },
    /// The token is past `exp`.
    #[error("token expired")]
    Expired,
    /// Anything else: malformed, bad signature, wrong issuer or audience, unknown key.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
}

/// Verifies tokens of one issuer.
pub struct JwtVerifier {
    settings: JwtSettings,
    source: keys::Source,
    keys: RwLock<keys::KeySet>,
    /// Held while reloading, so a burst of requests triggers one reload, not many.
    reloading: tokio::sync::Mutex<()>,
}

/// Roles from a claim holding an array of names or one space-separated string. Unknown
/// names are ignored (issuers put their own roles there too); `service` never counts.
fn roles_from(value: &serde_json::Value) -> Vec<Role> {
    let names: Vec<&str> = match value {
        serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
        serde_json::Value::String(text) => text.split_whitespace().collect(),
        _ => Vec::new(),
    };
    let mut roles: Vec<Role> = names
        .into_iter()
        .filter_map(|n| n.parse::<Role>().ok())
        .filter(|r| *r != Role::Service)
        .collect();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    roles
}

impl JwtVerifier {
    /// Loads the keys; `None` when JWT authentication is not configured.
    pub async fn from_settings(settings: &JwtSettings) -> Result<Option<Self>, JwtError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let source = keys::Source::new(
            &settings.jwks_path,
            &settings.jwks_url,
            &settings.jwks_ca_path,
        )?;
        let keys = source.load().await?;
        Ok(Some(Self {
            settings: settings.clone(),
            source,
            keys: RwLock::new(keys),
            reloading: tokio::sync::Mutex::new(()),
        }))
    }

    fn lookup(&self, kid: Option<&str>) -> (Option<(DecodingKey, Algorithm)>, Duration) {
        let Ok(set) = self.keys.read() else {
            return (None, Duration::ZERO);
        };
        let found = match kid {
            Some(kid) => set.keys.get(kid).cloned(),
            // Without a kid only an unambiguous single key will do.
            None if set.keys.len() == 1 => set.keys.values().next().cloned(),
            None => None,
        };
        (found, set.loaded.elapsed())
    }

    async fn key_for(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        let (found, age) = self.lookup(kid);
        let stale = age >= Duration::from_secs(self.settings.refresh_secs);
        if !(stale || (found.is_none() && age >= MIN_RELOAD_GAP)) {
            return found;
        }
        // Whoever holds the lock reloads; everyone else goes on with the current keys.
        let Ok(_guard) = self.reloading.try_lock() else {
            return found;
        };
        match self.source.load().await {
            Ok(fresh) => {
                if let Ok(mut set) = self.keys.write() {
                    *set = fresh;
                }
                self.lookup(kid).0
            }
            Err(error) => {
                // Keep serving with the keys we have (and retry only after the gap): an
                // unreachable issuer must not lock everyone out.
                tracing::warn!(error = %error, "jwks reload failed");
                if let Ok(mut set) = self.keys.write() {
                    let keep = Duration::from_secs(self.settings.refresh_secs)
                        .saturating_sub(MIN_RELOAD_GAP);
                    set.loaded = std::time::Instant::now()
                        .checked_sub(keep)
                        .unwrap_or_else(std::time::Instant::now);
                }
                found
            }
        }
    }

    /// The caller a token stands for.
    pub async fn verify(&self, token: &str) -> Result<Caller, JwtError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| JwtError::Invalid("malformed"))?;
        let (key, algorithm) = self
            .key_for(header.kid.as_deref())
            .await
            .ok_or(JwtError::Invalid("unknown key"))?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway_secs;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            match error.kind() {
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::InvalidIssuer => JwtError::Invalid("wrong issuer"),
                ErrorKind::InvalidAudience => JwtError::Invalid("wrong audience"),
                ErrorKind::ImmatureSignature => JwtError::Invalid("not yet valid"),
                ErrorKind::InvalidSignature => JwtError::Invalid("bad signature"),
                ErrorKind::InvalidAlgorithm => JwtError::Invalid("wrong algorithm"),
                ErrorKind::MissingRequiredClaim(_) => JwtError::Invalid("missing claim"),
                _ => JwtError::Invalid("malformed"),
            }
        })?;
        let claims = data.claims;
        let subject = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or(JwtError::Invalid("bad sub"))?;
        let roles = claims
            .get(&self.settings.roles_claim)
            .map(roles_from)
            .unwrap_or_default();
        if roles.is_empty() {
            return Err(JwtError::Invalid("no veil role"));
        }
        let tenant = match claims.get(&self.settings.tenant_claim) {
            Some(value) => Some(
                value
                    .as_str()
                    .and_then(|t| t.parse::<TenantId>().ok())
                    .ok_or(JwtError::Invalid("bad tenant claim"))?,
            ),
            None => None,
        };
        // A platform administrator acts across tenants; a tenant token must not carry it,
        // and every other token must name its tenant.
        match (tenant.is_some(), roles.contains(&Role::PlatformAdmin)) {
            (true, true) => return Err(JwtError::Invalid("platform_admin with a tenant")),
            (false, false) => return Err(JwtError::Invalid("missing tenant claim")),
            _ => {}
        }
        Ok(Caller {
            key_id: format!("{PRINCIPAL_PREFIX}{subject}"),
            tenant,
            roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_arrays_or_strings_and_never_include_service() {
        let roles = roles_from(&serde_json::json!([
            "admin", "service", "unknown", "auditor"
        ]));
        assert_eq!(roles, vec![Role::Admin, Role::Auditor]);
        let roles = roles_from(&serde_json::json!("bot agent"));
        assert_eq!(roles, vec![Role::Agent, Role::Bot]);
    }

    #[test]
    fn settings_need_audience_and_refuse_urls() {
        let mut settings = JwtSettings {
            issuer: "https://idp.example".into(),
            ..Default::default()
        };
        assert!(settings.validate().is_err());
        settings.audience = "veil".into();
        settings.jwks_path = "/tmp/jwks.json".into();
        assert!(settings.validate().is_ok());
        settings.jwks_url = "https://idp.example/jwks".into();
        assert!(settings.validate().is_err(), "path and url together");
        settings.jwks_path.clear();
        assert!(settings.validate().is_ok());
        settings.jwks_url = "ftp://idp.example/jwks".into();
        assert!(settings.validate().is_err());
        assert!(JwtSettings::default().validate().is_ok());
    }
}
