//! All five services in one process (`veil up`, and the end-to-end tests): each keeps its
//! own settings, schema, listeners and metrics; the gateway is pointed at the addresses
//! the others actually bound.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;
use veil_core::app::Service;
use veil_core::config::{Settings, Sources};
use veil_core::types::Personal;

/// Settings of every service.
pub struct StackSettings {
    /// Gateway settings; its service URLs are replaced by the bound addresses.
    pub gateway: veil_gateway::Config,
    /// Consent settings.
    pub consent: veil_consent::ServiceConfig,
    /// Vault settings.
    pub vault: veil_vault::Config,
    /// Retention settings.
    pub retention: veil_retention::Config,
    /// Audit settings.
    pub audit: veil_audit::Config,
}

impl StackSettings {
    /// Loads every service's layered settings (defaults, `deploy/config/<name>.toml`, env).
    pub fn load(sources: &Sources) -> anyhow::Result<Self> {
        Ok(Self {
            gateway: Settings::load(veil_gateway::NAME, sources)?,
            consent: Settings::load(veil_consent::NAME, sources)?,
            vault: Settings::load(veil_vault::NAME, sources)?,
            retention: Settings::load(veil_retention::NAME, sources)?,
            audit: Settings::load(veil_audit::NAME, sources)?,
        })
    }

    /// For a throwaway stack (tests, `veil bench`): `bootstrap` as the platform-admin
    /// key and a freshly generated vault master key, which nothing outlives.
    pub fn with_throwaway_keys(mut self, bootstrap: &str) -> Self {
        self.gateway.service.bootstrap_admin_key = Personal::new(bootstrap.to_string());
        let master = veil_core::crypto::KeyBytes::generate().to_base64();
        self.vault
            .service
            .master_keys
            .insert("1".into(), Personal::new(master.to_string()));
        self
    }
}

/// The five built services, listening but not yet serving.
pub struct Stack {
    /// `(name, service)` in start order; the gateway comes last.
    pub services: Vec<(&'static str, Service)>,
}

impl Stack {
    /// Builds the internal services, then the gateway pointed at them.
    pub async fn build(mut settings: StackSettings) -> anyhow::Result<Self> {
        let consent = veil_consent::build_with(settings.consent).await?;
        let vault = veil_vault::build(settings.vault).await?;
        let audit = veil_audit::build(settings.audit).await?;
        // With internal TLS the services are reached over https (their certificates must
        // name the host, or `internal_tls.domain_name` must say which name to expect).
        let scheme = if settings.gateway.internal_tls.is_some() {
            "https"
        } else {
            "http"
        };
        // Retention and the gateway call each other: the gateway's listener is bound
        // first so retention can be told where it is.
        let gateway_addr = veil_core::server::reserve(veil_core::config::parse_addr(
            "server.grpc_addr",
            &settings.gateway.server.grpc_addr,
        )?)?;
        settings.gateway.server.grpc_addr = gateway_addr.to_string();
        let peers = &mut settings.retention.service;
        peers.gateway_url = url(scheme, gateway_addr);
        peers.consent_url = url(scheme, consent.grpc_addr());
        peers.vault_url = url(scheme, vault.grpc_addr());
        peers.audit_url = url(scheme, audit.grpc_addr());
        let retention = veil_retention::build(settings.retention).await?;
        let urls = &mut settings.gateway.service;
        urls.consent_url = url(scheme, consent.grpc_addr());
        urls.vault_url = url(scheme, vault.grpc_addr());
        urls.retention_url = url(scheme, retention.grpc_addr());
        urls.audit_url = url(scheme, audit.grpc_addr());
        let gateway = veil_gateway::build(settings.gateway).await?;
        Ok(Self {
            services: vec![
                (veil_consent::NAME, consent),
                (veil_vault::NAME, vault),
                (veil_retention::NAME, retention),
                (veil_audit::NAME, audit),
                (veil_gateway::NAME, gateway),
            ],
        })
    }

    /// The gRPC address of `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.services
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.grpc_addr())
    }

    /// Serves every service until `shutdown`; the first failure stops the others.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for (name, service) in self.services {
            let token = shutdown.clone();
            tasks.spawn(async move { (name, service.run_until_stopped(token).await) });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let (name, result) = joined?;
            if let Err(error) = result {
                tracing::error!(
                    service = name,
                    error = format!("{error:#}"),
                    "service failed"
                );
                shutdown.cancel();
                first_error.get_or_insert(error.context(format!("veil-{name}")));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{addr}")
}
