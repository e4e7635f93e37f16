//! NATS connection from settings.

use std::time::Duration;

use crate::config::NatsSettings;

/// Errors while connecting to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The client could not be created.
    #[error("cannot connect to nats: {0}")]
    Connect(String),
}

/// Connects to NATS. The client keeps reconnecting in the background, so a broker that
/// is down at start-up or later only delays event delivery (the outbox keeps the events).
pub async fn connect(
    settings: &NatsSettings,
    name: &str,
) -> Result<async_nats::Client, BrokerError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .require_tls(settings.tls_required);
    if let Some(ca) = &settings.tls_ca_path {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (
        &settings.tls_client_cert_path,
        &settings.tls_client_key_path,
    ) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let servers: Vec<&str> = settings.url.split(',').map(str::trim).collect();
    let addrs: Vec<async_nats::ServerAddr> = servers
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| BrokerError::Connect("invalid setting nats.url".into()))?;
    options
        .connect(addrs)
        .await
        .map_err(|e| BrokerError::Connect(e.to_string()))
}
