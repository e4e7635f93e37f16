//! Clients of the internal services, each call carrying a freshly minted internal token.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::Request;
use tonic::transport::Channel;
use veil_core::auth::{Principal, TokenIssuer, attach_bearer};
use veil_core::client::{ClientTlsSettings, channel};
use veil_core::error::ServiceError;
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;

use crate::settings::GatewaySettings;

/// Lazily connected channels to the internal services.
#[derive(Clone)]
pub struct Clients {
    consent: Channel,
    vault: Channel,
    retention: Channel,
    audit: Channel,
    issuer: Arc<TokenIssuer>,
}

impl Clients {
    pub fn new(
        settings: &GatewaySettings,
        tls: Option<&ClientTlsSettings>,
        issuer: Arc<TokenIssuer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            consent: channel("service.consent_url", &settings.consent_url, tls)?,
            vault: channel("service.vault_url", &settings.vault_url, tls)?,
            retention: channel("service.retention_url", &settings.retention_url, tls)?,
            audit: channel("service.audit_url", &settings.audit_url, tls)?,
            issuer,
        })
    }

    /// Channels by service name, for the proxy.
    pub fn upstreams(&self) -> HashMap<&'static str, Channel> {
        HashMap::from([
            ("consent", self.consent.clone()),
            ("vault", self.vault.clone()),
            ("retention", self.retention.clone()),
            ("audit", self.audit.clone()),
        ])
    }

    /// The consent client.
    pub fn consent(&self) -> ConsentServiceClient<Channel> {
        ConsentServiceClient::new(self.consent.clone())
    }

    /// Wraps `message` in a request to `audience` on behalf of `principal`, carrying a
    /// fresh internal token, the request id and the trace context.
    pub fn request<T>(
        &self,
        audience: &str,
        principal: &Principal,
        message: T,
    ) -> Result<Request<T>, tonic::Status> {
        let token = self
            .issuer
            .mint_for(audience, principal)
            .map_err(ServiceError::internal)?;
        let mut request = Request::new(message);
        attach_bearer(&mut request, &token)?;
        if let Ok(value) = principal.request_id.as_str().parse() {
            request
                .metadata_mut()
                .insert(veil_core::rpc_layer::REQUEST_ID_HEADER, value);
        }
        veil_core::telemetry::inject_metadata(request.metadata_mut());
        Ok(request)
    }
}
