//! Clients of the internal services, each call carrying an internal token (reused per
//! audience and principal while fresh) and its own request id.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::Request;
use tonic::transport::Channel;
use veil_core::auth::{Principal, TokenIssuer, attach_bearer};
use veil_core::batch::{Batcher, Limits, STATEMENT_BYTES};
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
    /// Concurrent messages' Tokenize calls, merged (see [`Self::tokenize`]).
    tokenizer: Batcher<TokenizeCall, TokenizeAnswer>,
}

/// One message's Tokenize: its caller, subject, `(entity type, value)` pairs and when
/// the message began.
pub struct TokenizeCall {
    principal: Principal,
    subject_id: String,
    values: Vec<(String, String)>,
    store_value: bool,
    started: time::OffsetDateTime,
}

type TokenizeAnswer = Result<Vec<String>, tonic::Status>;

/// How messages' Tokenize calls are merged: the vault writes a merged call's tokens in
/// one statement (each value sealed, with its token, subject and type: its length plus
/// about 100 bytes), so the statement size bounds a batch too. Two calls in flight
/// rather than four: larger merged calls, a sixth fewer statements, more throughput;
/// one was no better than two (docs/benchmarks.md, gateway).
const TOKENIZE_LIMITS: Limits = Limits {
    name: "vault tokenize",
    calls: 32,
    bytes: STATEMENT_BYTES,
    in_flight: 2,
};

impl TokenizeCall {
    fn size(&self) -> usize {
        self.values.iter().map(|(_, value)| value.len() + 100).sum()
    }
}

impl Clients {
    pub fn new(
        settings: &GatewaySettings,
        tls: Option<&ClientTlsSettings>,
        issuer: Arc<TokenIssuer>,
    ) -> anyhow::Result<Self> {
        let vault = channel("service.vault_url", &settings.vault_url, tls)?;
        Ok(Self {
            consent: channel("service.consent_url", &settings.consent_url, tls)?,
            retention: channel("service.retention_url", &settings.retention_url, tls)?,
            audit: channel("service.audit_url", &settings.audit_url, tls)?,
            tokenizer: Batcher::spawn(TOKENIZE_LIMITS, TokenizeCall::size, {
                let (vault, issuer) = (vault.clone(), issuer.clone());
                move |calls| tokenize_batch(vault.clone(), issuer.clone(), calls)
            }),
            vault,
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
    /// encrypted under the subject's data key so the bot can restore it later. Calls of
    /// concurrent messages of one tenant share a vault round trip. The vault refuses a
    /// subject shredded after `started`, when the message began.
    pub async fn tokenize(
        &self,
        principal: &Principal,
        subject_id: &str,
        values: &[(String, String)],
        store_value: bool,
        started: time::OffsetDateTime,
    ) -> Result<Vec<String>, tonic::Status> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let call = TokenizeCall {
            principal: principal.clone(),
            subject_id: subject_id.to_string(),
            values: values.to_vec(),
            store_value,
            started,
        };
        self.tokenizer
            .call(call)
            .await
            .map_err(ServiceError::from)?
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
        request(&self.issuer, audience, principal, message)
    }
}

/// An internal request: the message with a token for `audience`, the request id and the
/// trace context.
fn request<T>(
    issuer: &TokenIssuer,
    audience: &str,
    principal: &Principal,
    message: T,
) -> Result<Request<T>, tonic::Status> {
    let token = issuer
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

/// Answers a batch of Tokenize calls: one vault call per caller and `store_value`, the
/// merged items split back in order. When a merged call fails, each of its calls is
/// retried alone, so a bad value fails only its own message, with an error that names
/// its own item.
async fn tokenize_batch(
    vault: Channel,
    issuer: Arc<TokenIssuer>,
    calls: Vec<TokenizeCall>,
) -> Vec<TokenizeAnswer> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let same = |g: &&mut Vec<usize>| {
            let first = &calls[g[0]];
            first.store_value == call.store_value
                && first.principal.tenant == call.principal.tenant
                && first.principal.principal_id == call.principal.principal_id
                && first.principal.roles == call.principal.roles
        };
        match groups.iter_mut().find(same) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    let answers = futures::future::join_all(groups.iter().map(|group| {
        let members: Vec<&TokenizeCall> = group.iter().map(|&i| &calls[i]).collect();
        tokenize_group(&vault, &issuer, members)
    }))
    .await;
    let mut out: Vec<Option<TokenizeAnswer>> = (0..calls.len()).map(|_| None).collect();
    for (group, answers) in groups.into_iter().zip(answers) {
        for (i, answer) in group.into_iter().zip(answers) {
            out[i] = Some(answer);
        }
    }
    out.into_iter()
        .map(|a| a.unwrap_or_else(|| Err(tonic::Status::internal("tokenize call lost"))))
        .collect()
}

/// One vault call for calls of one caller; each retried alone when it fails.
async fn tokenize_group(
    vault: &Channel,
    issuer: &TokenIssuer,
    calls: Vec<&TokenizeCall>,
) -> Vec<TokenizeAnswer> {
    let merged = tokenize_once(vault, issuer, &calls).await;
    match merged {
        Ok(mut tokens) => {
            let mut answers = Vec::with_capacity(calls.len());
            for call in calls.iter().rev() {
                answers.push(Ok(tokens.split_off(tokens.len() - call.values.len())));
            }
            answers.reverse();
            answers
        }
        Err(error) if calls.len() == 1 => vec![Err(error)],
        Err(_) => {
            futures::future::join_all(
                calls
                    .iter()
                    .map(|call| tokenize_once(vault, issuer, std::slice::from_ref(call))),
            )
            .await
        }
    }
}

/// The tokens of every value of `calls`, in order, from one vault call.
async fn tokenize_once(
    vault: &Channel,
    issuer: &TokenIssuer,
    calls: &[&TokenizeCall],
) -> TokenizeAnswer {
    let first = calls
        .first()
        .ok_or_else(|| tonic::Status::internal("empty tokenize batch"))?;
    let items: Vec<TokenizeItem> = calls
        .iter()
        .flat_map(|call| {
            call.values.iter().map(|(entity_type, value)| TokenizeItem {
                subject_id: call.subject_id.clone(),
                entity_type: entity_type.clone(),
                value: value.clone(),
            })
        })
        .collect();
    let count = items.len();
    let request = request(
        issuer,
        "vault",
        &first.principal,
        TokenizeRequest {
            items,
            store_value: first.store_value,
            // The earliest: a refusal is retried call by call, each with its own.
            started_at: calls
                .iter()
                .map(|call| call.started)
                .min()
                .map(veil_core::convert::timestamp),
        },
    )?;
    let response = VaultServiceClient::new(vault.clone())
        .tokenize(request)
        .await?
        .into_inner();
    if response.tokens.len() != count {
        return Err(tonic::Status::internal("vault returned a short token list"));
    }
    Ok(response.tokens.into_iter().map(|t| t.token).collect())
}
