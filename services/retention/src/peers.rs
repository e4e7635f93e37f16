//! Clients of the services retention drives (sweeps, erasure, exports, rectification),
//! each call carrying an internal token of the `retention` service principal acting in
//! one tenant.

use std::sync::Arc;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use veil_core::auth::{BearerMinter, TokenIssuer};
use veil_core::client::{ClientTlsSettings, channel};
use veil_core::types::{PrincipalId, Role, TenantId};
use veil_proto::audit::v1::audit_service_client::AuditServiceClient;
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::gateway::v1::gateway_internal_service_client::GatewayInternalServiceClient;
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;

use crate::settings::RetentionSettings;

/// A client whose calls carry a freshly minted internal token.
pub type Authed = InterceptedService<Channel, BearerMinter>;

/// Lazily connected channels to the other services.
#[derive(Clone)]
pub struct Peers {
    gateway: Channel,
    vault: Channel,
    consent: Channel,
    audit: Channel,
    issuer: Arc<TokenIssuer>,
    principal: PrincipalId,
}

impl Peers {
    pub fn new(
        settings: &RetentionSettings,
        tls: Option<&ClientTlsSettings>,
        issuer: Arc<TokenIssuer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            gateway: channel("service.gateway_url", &settings.gateway_url, tls)?,
            vault: channel("service.vault_url", &settings.vault_url, tls)?,
            consent: channel("service.consent_url", &settings.consent_url, tls)?,
            audit: channel("service.audit_url", &settings.audit_url, tls)?,
            issuer,
            principal: crate::NAME.parse()?,
        })
    }

    fn minter(&self, audience: &str, tenant: TenantId) -> BearerMinter {
        BearerMinter::new(
            self.issuer.clone(),
            audience,
            self.principal.clone(),
            Some(tenant),
            vec![Role::Service],
        )
    }

    /// The gateway's internal service, as retention acting in `tenant`.
    pub fn gateway(&self, tenant: TenantId) -> GatewayInternalServiceClient<Authed> {
        GatewayInternalServiceClient::with_interceptor(
            self.gateway.clone(),
            self.minter("gateway", tenant),
        )
    }

    /// The vault, as retention acting in `tenant`.
    pub fn vault(&self, tenant: TenantId) -> VaultServiceClient<Authed> {
        VaultServiceClient::with_interceptor(self.vault.clone(), self.minter("vault", tenant))
    }

    /// The consent service, as retention acting in `tenant`.
    pub fn consent(&self, tenant: TenantId) -> ConsentServiceClient<Authed> {
        ConsentServiceClient::with_interceptor(self.consent.clone(), self.minter("consent", tenant))
    }

    /// The audit service, as retention acting in `tenant`.
    pub fn audit(&self, tenant: TenantId) -> AuditServiceClient<Authed> {
        AuditServiceClient::with_interceptor(self.audit.clone(), self.minter("audit", tenant))
    }
}
