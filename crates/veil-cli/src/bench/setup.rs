//! Connections to the benchmark gateway and the tenant the load runs as.

use std::time::Duration;

use tonic::Request;
use tonic::transport::{Channel, Endpoint};
use veil_core::auth::attach_bearer;
use veil_proto::common::v1::{LegalBasis, Role as ProtoRole};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{Purpose, UpsertPurposeRequest};
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::{CreateApiKeyRequest, CreateTenantRequest};

/// The purpose asked for with `--purposes`; contract-based, so it is allowed without
/// a consent record but still costs a consent check per message.
pub const PURPOSE: &str = "support";

/// `count` separate HTTP/2 connections to `url`, polling until the server accepts.
pub async fn channels(url: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        match endpoint.connect().await {
            Ok(channel) => out.push(channel),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("cannot connect to the gateway at {url}: {error}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Ok(out)
}

fn bearer<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    attach_bearer(&mut request, token)?;
    Ok(request)
}

/// Creates the benchmark tenant and returns its bot key; with `purposes` also the
/// purpose the messages ask for.
pub async fn tenant(gateway: Channel, bootstrap: &str, purposes: bool) -> anyhow::Result<String> {
    let mut admin = AdminServiceClient::new(gateway.clone());
    let created = admin
        .create_tenant(bearer(
            CreateTenantRequest {
                name: "Benchmark".into(),
                slug: "bench".into(),
                create_admin_key: true,
                ..Default::default()
            },
            bootstrap,
        )?)
        .await?
        .into_inner();
    let admin_key = created.admin_key.unwrap_or_default().secret;
    let mut key = async |role: ProtoRole| -> anyhow::Result<String> {
        Ok(admin
            .create_api_key(bearer(
                CreateApiKeyRequest {
                    name: format!("bench {}", role.as_str_name()),
                    roles: vec![role as i32],
                    ..Default::default()
                },
                &admin_key,
            )?)
            .await?
            .into_inner()
            .created
            .unwrap_or_default()
            .secret)
    };
    let bot = key(ProtoRole::Bot).await?;
    if purposes {
        let officer = key(ProtoRole::PrivacyOfficer).await?;
        ConsentServiceClient::new(gateway)
            .upsert_purpose(bearer(
                UpsertPurposeRequest {
                    purpose: Some(Purpose {
                        key: PURPOSE.into(),
                        name: "Customer support".into(),
                        legal_basis: LegalBasis::Contract as i32,
                        consent_required: false,
                        ..Default::default()
                    }),
                },
                &officer,
            )?)
            .await?;
    }
    Ok(bot)
}
