//! Layered, typed configuration.
//!
//! Order of precedence (lowest first): defaults in code (`Default` impls), then
//! `deploy/config/<service>.toml` (directory overridable with `VEIL_CONFIG_DIR`), then
//! environment variables `VEIL_<SECTION>__<KEY>`. The result is validated before any
//! service starts, and every error names the key that is wrong.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::events::EventsConfig;
use crate::types::Personal;

/// A configuration error; the message always names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layered sources could not be read or did not deserialize.
    #[error("invalid configuration: {0}")]
    Load(String),
    /// A value deserialized but is not acceptable.
    #[error("invalid setting {key}: {reason}")]
    Invalid {
        /// Dotted key, e.g. `database.url`.
        key: String,
        /// Why the value was rejected (never the value itself: it may be a secret).
        reason: String,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Settings shared by every service, plus the service's own section `S` under `[service]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Settings<S = NoExtra> {
    /// gRPC and metrics listeners.
    pub server: ServerSettings,
    /// The service's Postgres database and schema.
    pub database: DatabaseSettings,
    /// NATS connection.
    pub nats: NatsSettings,
    /// Event stream and subject names.
    pub events: EventsConfig,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Internal service tokens.
    pub auth: AuthSettings,
    /// Pseudonymization of subject ids.
    pub privacy: PrivacySettings,
    /// TLS for calls this service makes to other Veil services; absent means plaintext.
    pub internal_tls: Option<crate::client::ClientTlsSettings>,
    /// The service's own settings.
    pub service: S,
}

/// Placeholder for services without a section of their own.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct NoExtra {}

/// A service section that can check itself after loading.
pub trait Validate {
    /// Checks the values; the error names the key (prefixed with `service.`).
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

impl Validate for NoExtra {}

/// Listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: String,
    /// Prometheus metrics listen address; port 0 picks a free port.
    pub metrics_addr: String,
    /// Largest accepted or sent gRPC message.
    pub max_message_bytes: usize,
    /// Seconds to keep reporting NOT_SERVING before the listener closes (load balancers).
    pub shutdown_grace_secs: u64,
    /// Upper bound on draining in-flight calls after the listener closed.
    pub drain_timeout_secs: u64,
    /// TLS for the gRPC listener; absent means plaintext.
    pub tls: Option<TlsSettings>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            grpc_addr: "127.0.0.1:50051".into(),
            metrics_addr: "127.0.0.1:9101".into(),
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace_secs: 0,
            drain_timeout_secs: 10,
            tls: None,
        }
    }
}

/// Server-side TLS; with `client_ca_path` clients must present a certificate (mTLS).
#[derive(Debug, Clone, Deserialize)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key.
    pub key_path: PathBuf,
    /// PEM CA bundle that client certificates must chain to.
    pub client_ca_path: Option<PathBuf>,
}

/// Postgres settings. TLS is configured in the URL (`sslmode=verify-full&sslrootcert=...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `postgres://` URL; a secret because it may hold a password.
    pub url: Personal<String>,
    /// Schema owned by this service.
    pub schema: String,
    /// Pool size.
    pub max_connections: u32,
    /// Seconds to wait for a connection.
    pub connect_timeout_secs: u64,
    /// Run the service's migrations at start-up.
    pub migrate: bool,
    /// Connections plan every prepared statement once (`plan_cache_mode =
    /// force_generic_plan`). Not a setting: a service turns it on when its hot
    /// statements are written and tested for generic plans and Postgres would otherwise
    /// re-plan them on every call, which can cost more than running them.
    #[serde(skip)]
    pub generic_plans: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Personal::new("postgres://postgres@127.0.0.1:5432/veil".to_string()),
            schema: String::new(),
            max_connections: 16,
            connect_timeout_secs: 10,
            migrate: true,
            generic_plans: false,
        }
    }
}

/// NATS connection settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NatsSettings {
    /// Server URL(s), comma separated.
    pub url: String,
    /// Require TLS to the server.
    pub tls_required: bool,
    /// PEM CA bundle for the server certificate.
    pub tls_ca_path: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub tls_client_cert_path: Option<PathBuf>,
    /// Client key for mutual TLS.
    pub tls_client_key_path: Option<PathBuf>,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            tls_required: false,
            tls_ca_path: None,
            tls_client_cert_path: None,
            tls_client_key_path: None,
        }
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (production).
    #[default]
    Json,
    /// Human-readable (development).
    Pretty,
}

/// Logs and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// `json` or `pretty`.
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info,veil=debug`.
    pub log_level: String,
    /// OTLP/gRPC endpoint; traces are exported only when set.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            log_level: "info,async_nats=warn".into(),
            otlp_endpoint: None,
        }
    }
}

/// Keys for internal service tokens (Ed25519).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Base64 32-byte Ed25519 seed used to mint tokens for calls this service makes.
    pub signing_key: Personal<String>,
    /// Key id published with tokens signed by `signing_key`.
    pub key_id: String,
    /// Extra trusted public keys (key id -> base64 public key), e.g. during rotation.
    pub trusted_keys: BTreeMap<String, String>,
    /// Lifetime of minted tokens.
    pub token_ttl_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            signing_key: Personal::new(String::new()),
            key_id: "k1".into(),
            trusted_keys: BTreeMap::new(),
            token_ttl_secs: 60,
        }
    }
}

/// Keys for subject pseudonyms.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct PrivacySettings {
    /// Base64 root secret (32 bytes or more) from which each tenant's subject-ref key is
    /// derived; every service of one deployment must share it.
    pub subject_key: Personal<String>,
}

/// Where configuration comes from; tests pass their own environment map.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Directory holding `<service>.toml`; defaults to `$VEIL_CONFIG_DIR` or `deploy/config`.
    pub config_dir: Option<PathBuf>,
    /// Environment to read instead of the process environment.
    pub env: Option<std::collections::HashMap<String, String>>,
}

impl<S: DeserializeOwned + Validate + Default> Settings<S> {
    /// Loads defaults, the service's file and the environment, then validates.
    pub fn load(service: &str, sources: &Sources) -> Result<Self, ConfigError> {
        let dir = sources
            .config_dir
            .clone()
            .or_else(|| std::env::var_os("VEIL_CONFIG_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("deploy/config"));
        let file = dir.join(format!("{service}.toml"));
        let env = ::config::Environment::with_prefix("VEIL")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("auth.trusted_keys")
            .with_list_parse_key("service.trusted_proxies")
            .source(sources.env.clone());
        let built = ::config::Config::builder()
            .add_source(::config::File::from(file).required(false))
            .add_source(env)
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let mut settings: Self = built
            .try_deserialize()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        if settings.database.schema.is_empty() {
            settings.database.schema = service.to_string();
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every section; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_addr("server.grpc_addr", &self.server.grpc_addr)?;
        parse_addr("server.metrics_addr", &self.server.metrics_addr)?;
        if self.server.max_message_bytes < 1024 {
            return Err(ConfigError::invalid(
                "server.max_message_bytes",
                "must be at least 1024",
            ));
        }
        let url = self.database.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::invalid(
                "database.url",
                "must be a postgres:// or postgresql:// URL",
            ));
        }
        url.parse::<sqlx::postgres::PgConnectOptions>()
            .map_err(|_| ConfigError::invalid("database.url", "is not a valid postgres URL"))?;
        if !is_identifier(&self.database.schema) {
            return Err(ConfigError::invalid(
                "database.schema",
                "must be a lowercase identifier (a-z, 0-9, _)",
            ));
        }
        if !(1..=600).contains(&self.database.connect_timeout_secs) {
            return Err(ConfigError::invalid(
                "database.connect_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        check_durations(&[
            (
                "server.shutdown_grace_secs",
                Duration::from_secs(self.server.shutdown_grace_secs),
            ),
            (
                "server.drain_timeout_secs",
                Duration::from_secs(self.server.drain_timeout_secs),
            ),
        ])?;
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        for part in self.nats.url.split(',') {
            let part = part.trim();
            if !(part.starts_with("nats://") || part.starts_with("tls://")) {
                return Err(ConfigError::invalid(
                    "nats.url",
                    "must be nats:// or tls:// URLs separated by commas",
                ));
            }
        }
        self.events
            .validate()
            .map_err(|reason| ConfigError::invalid("events", reason))?;
        if self.auth.token_ttl_secs == 0 || self.auth.token_ttl_secs > 3600 {
            return Err(ConfigError::invalid(
                "auth.token_ttl_secs",
                "must be between 1 and 3600",
            ));
        }
        self.service.validate()
    }
}

/// The longest duration any setting may name: 100 years. Times computed from settings
/// (now plus or minus a period, a monotonic deadline) then stay in range; a larger value
/// would make them panic.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 36_525 * 864);

/// Why a duration setting longer than [`MAX_DURATION`] is refused.
pub const TOO_LONG: &str = "must be at most 100 years";

/// Checks duration settings `(key, value)`: each at most [`MAX_DURATION`].
pub fn check_durations(settings: &[(&str, Duration)]) -> Result<(), ConfigError> {
    match too_long(settings) {
        Some(key) => Err(ConfigError::invalid(key, TOO_LONG)),
        None => Ok(()),
    }
}

/// The first of `settings` longer than [`MAX_DURATION`], by key.
pub fn too_long<'a>(settings: &[(&'a str, Duration)]) -> Option<&'a str> {
    settings
        .iter()
        .find(|(_, value)| *value > MAX_DURATION)
        .map(|(key, _)| *key)
}

/// The largest allowed clock skew between replicas (`service.clock_skew_ms`): clocks
/// further apart need fixing, not waiting.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A clock-skew setting in milliseconds as a duration, refused (naming `key`) above
/// [`MAX_CLOCK_SKEW`].
pub fn clock_skew(key: &str, ms: u64) -> Result<Duration, ConfigError> {
    let skew = Duration::from_millis(ms);
    if skew > MAX_CLOCK_SKEW {
        return Err(ConfigError::invalid(
            key,
            "must be at most 60000 (a minute)",
        ));
    }
    Ok(skew)
}

/// A setting of whole days as a duration.
pub fn days(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 86_400)
}

/// Parses a listen address, naming `key` on failure.
pub fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::invalid(key, "must be host:port with an IP address host"))
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_with(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sources = Sources {
            config_dir: Some(PathBuf::from("/nonexistent")),
            env: Some(env),
        };
        Settings::load("vault", &sources)
    }

    #[test]
    fn defaults_are_valid_and_schema_follows_service() {
        let settings = load_with(&[]).expect("defaults load");
        assert_eq!(settings.database.schema, "vault");
        assert_eq!(settings.server.max_message_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn environment_overrides_defaults() {
        let settings = load_with(&[
            ("VEIL_SERVER__GRPC_ADDR", "127.0.0.1:0"),
            ("VEIL_DATABASE__MAX_CONNECTIONS", "3"),
        ])
        .expect("loads");
        assert_eq!(settings.server.grpc_addr, "127.0.0.1:0");
        assert_eq!(settings.database.max_connections, 3);
    }

    #[test]
    fn bad_database_url_names_the_key_without_the_value() {
        let err = load_with(&[("VEIL_DATABASE__URL", "nonsense-secret")])
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        assert!(!err.contains("nonsense-secret"), "{err}");
    }

    #[test]
    fn bad_number_names_the_key() {
        let err = load_with(&[("VEIL_DATABASE__MAX_CONNECTIONS", "many")])
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("max_connections"), "{err}");
    }

    #[test]
    fn durations_beyond_any_clock_are_refused_by_key() {
        // Each of these once panicked when a time was computed from it.
        for (var, key) in [
            (
                "VEIL_SERVER__DRAIN_TIMEOUT_SECS",
                "server.drain_timeout_secs",
            ),
            (
                "VEIL_SERVER__SHUTDOWN_GRACE_SECS",
                "server.shutdown_grace_secs",
            ),
            (
                "VEIL_DATABASE__CONNECT_TIMEOUT_SECS",
                "database.connect_timeout_secs",
            ),
            (
                "VEIL_EVENTS__RELAY__CLEANUP_INTERVAL_SECS",
                "relay.cleanup_interval_secs",
            ),
            (
                "VEIL_EVENTS__CONSUMER__PROCESSED_RETENTION_DAYS",
                "consumer.processed_retention_days",
            ),
        ] {
            let err = load_with(&[(var, &u64::MAX.to_string())])
                .expect_err(var)
                .to_string();
            assert!(err.contains(key), "{err}");
        }
        let century = MAX_DURATION.as_secs().to_string();
        assert!(load_with(&[("VEIL_SERVER__DRAIN_TIMEOUT_SECS", &century)]).is_ok());
    }

    #[test]
    fn bad_address_names_the_key() {
        let err = load_with(&[("VEIL_SERVER__METRICS_ADDR", "localhost")])
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("server.metrics_addr"), "{err}");
    }

    #[test]
    fn file_layer_sits_between_defaults_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("consent.toml"),
            "[server]\ngrpc_addr = \"127.0.0.1:50052\"\nmetrics_addr = \"127.0.0.1:9102\"\n",
        )
        .expect("write");
        let sources = Sources {
            config_dir: Some(dir.path().to_path_buf()),
            env: Some(HashMap::from([(
                "VEIL_SERVER__METRICS_ADDR".to_string(),
                "127.0.0.1:9999".to_string(),
            )])),
        };
        let settings: Settings = Settings::load("consent", &sources).expect("loads");
        assert_eq!(settings.server.grpc_addr, "127.0.0.1:50052");
        assert_eq!(settings.server.metrics_addr, "127.0.0.1:9999");
    }
}
