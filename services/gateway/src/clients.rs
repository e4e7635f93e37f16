//! Clients of the internal services, each call carrying an internal token (reused per
//! audience and principal while fresh) and its own request id.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::Request;
use tonic::transport::Channel;
use veil_core::auth::{Principal, TokenIssuer, attach_bearer};
use veil_core::client::{ClientTlsSettings, channel};
use veil_core::error::ServiceError;
use veil_proto::common::v1::{SubjectSelector, subject_selector};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_proto::vault::v1::{DetokenizeRequest, DetokenizeResult, TokenizeItem, TokenizeRequest};

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

    /// The retention client.
    pub fn retention(&self) -> RetentionServiceClient<Channel> {
        RetentionServiceClient::new(self.retention.clone())
    }

    /// Tokens for `(entity type, value)` pairs of one subject; the vault keeps each value
    /// encrypted under the subject's data key so the bot can restore it later.
    pub async fn tokenize(
        &self,
        principal: &Principal,
        subject_id: &str,
        values: &[(String, String)],
        store_value: bool,
    ) -> Result<Vec<String>, tonic::Status> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let items = values
            .iter()
            .map(|(entity_type, value)| TokenizeItem {
                subject_id: subject_id.to_string(),
                entity_type: entity_type.clone(),
                value: value.clone(),
            })
            .collect();
        let request = self.request("vault", principal, TokenizeRequest { items, store_value })?;
        let response = VaultServiceClient::new(self.vault.clone())
            .tokenize(request)
            .await?
            .into_inner();
        if response.tokens.len() != values.len() {
            return Err(tonic::Status::internal("vault returned a short token list"));
        }
        Ok(response.tokens.into_iter().map(|t| t.token).collect())
    }

    /// The originals of `tokens` for the subject (restoring text to that same subject).
    pub async fn detokenize(
        &self,
        principal: &Principal,
        subject_ref: &str,
        tokens: Vec<String>,
    ) -> Result<Vec<DetokenizeResult>, tonic::Status> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let request = self.request(
            "vault",
            principal,
            DetokenizeRequest {
                tokens,
                purpose: "restore_to_subject".into(),
                subject: Some(SubjectSelector {
                    subject: Some(subject_selector::Subject::SubjectRef(
                        subject_ref.to_string(),
                    )),
                }),
            },
        )?;
        Ok(VaultServiceClient::new(self.vault.clone())
            .detokenize(request)
            .await?
            .into_inner()
            .results)
    }

    /// Wraps `message` in a request to `audience` on behalf of `principal`, carrying an
    /// internal token (reused while fresh, so the service verifies it once), the request
    /// id and the trace context.
    pub fn request<T>(
        &self,
        audience: &str,
        principal: &Principal,
        message: T,
    ) -> Result<Request<T>, tonic::Status> {
        let token = self
            .issuer
            .token_for(audience, principal)
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
