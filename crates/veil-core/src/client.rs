//! Channels to other Veil services, with TLS (and a client certificate for mTLS) when
//! configured under `[internal_tls]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// TLS for calls to other services.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientTlsSettings {
    /// PEM CA bundle the services' certificates chain to.
    pub ca_path: PathBuf,
    /// PEM client certificate, for services that require mTLS.
    pub cert_path: Option<PathBuf>,
    /// PEM client key.
    pub key_path: Option<PathBuf>,
    /// Name expected in the server certificates, when it differs from the URL host.
    pub domain_name: Option<String>,
}

/// Errors while preparing a channel.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not usable.
    #[error("invalid service url for {service}")]
    Url {
        /// The setting naming the URL.
        service: String,
    },
    /// A TLS file could not be read.
    #[error("cannot read {key}: {source}")]
    File {
        /// The setting naming the file.
        key: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS configuration was rejected.
    #[error("internal_tls: {0}")]
    Tls(#[from] tonic::transport::Error),
}

/// A lazily connecting channel to `url`; `key` names the URL setting in errors.
pub fn channel(
    key: &str,
    url: &str,
    tls: Option<&ClientTlsSettings>,
) -> Result<Channel, ClientError> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|_| ClientError::Url {
            service: key.to_string(),
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if let Some(tls) = tls {
        let read = |key: &'static str, path: &PathBuf| {
            std::fs::read(path).map_err(|source| ClientError::File { key, source })
        };
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(
            "internal_tls.ca_path",
            &tls.ca_path,
        )?));
        if let (Some(cert), Some(key)) = (&tls.cert_path, &tls.key_path) {
            config = config.identity(Identity::from_pem(
                read("internal_tls.cert_path", cert)?,
                read("internal_tls.key_path", key)?,
            ));
        }
        if let Some(domain) = &tls.domain_name {
            config = config.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(config)?;
    }
    Ok(endpoint.connect_lazy())
}
