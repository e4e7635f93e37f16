//! A scripted conversation through a running stack, printed turn by turn, followed by
//! the audit log entries it produced.
//!
//! Walking-skeleton version: the gateway's full pipeline (restore, notices, privacy
//! commands, inclusion proofs) arrives with the gateway and audit issues.

use std::time::Duration;

use tonic::Request;
use tonic::transport::Channel;
use veil_core::auth::{Principal, TokenIssuer, attach_bearer};
use veil_core::types::{RequestId, Role, TenantId};
use veil_proto::audit::v1::GetEntryRequest;
use veil_proto::audit::v1::audit_service_client::AuditServiceClient;
use veil_proto::audit::v1::get_entry_request::Key;
use veil_proto::common::v1::Role as ProtoRole;
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    CreateApiKeyRequest, CreateTenantRequest, MessageContext, MessageRole, ProcessMessageRequest,
};

/// The scripted turns: (role, text).
const SCRIPT: &[(MessageRole, &str)] = &[
    (
        MessageRole::User,
        "Hi, I can't log in. My account email is anna.keller@example.org.",
    ),
    (
        MessageRole::Assistant,
        "Thanks! I sent a reset link to anna.keller@example.org; check your inbox.",
    ),
    (
        MessageRole::User,
        "Got it. Please also copy my colleague ben@example.com on the ticket.",
    ),
];

fn with_bearer<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    attach_bearer(&mut request, token)?;
    Ok(request)
}

/// Where the demo talks to.
pub struct DemoTarget {
    /// Gateway gRPC URL.
    pub gateway_url: String,
    /// Audit gRPC URL, read directly with an internal token (the gateway proxy for
    /// audit arrives with the gateway issue).
    pub audit_url: String,
    /// Platform bootstrap key of the gateway.
    pub bootstrap_key: String,
    /// Mints the internal token for the audit read.
    pub issuer: TokenIssuer,
}

/// Runs the demo and prints what happens.
pub async fn run(target: DemoTarget) -> anyhow::Result<()> {
    let gateway = Channel::from_shared(target.gateway_url.clone())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut admin = AdminServiceClient::new(gateway.clone());
    let slug = format!("demo-{}", &uuid_suffix());
    let created = admin
        .create_tenant(with_bearer(
            CreateTenantRequest {
                name: "Demo shop".into(),
                slug: slug.clone(),
                create_admin_key: true,
                ..Default::default()
            },
            &target.bootstrap_key,
        )?)
        .await?
        .into_inner();
    let tenant = created.tenant.unwrap_or_default();
    let admin_key = created.admin_key.map(|k| k.secret).unwrap_or_default();
    println!("tenant {} ({})", tenant.slug, tenant.tenant_id);
    let bot_key = admin
        .create_api_key(with_bearer(
            CreateApiKeyRequest {
                name: "demo bot".into(),
                roles: vec![ProtoRole::Bot as i32],
                ..Default::default()
            },
            &admin_key,
        )?)
        .await?
        .into_inner()
        .created
        .map(|k| k.secret)
        .unwrap_or_default();

    let mut pipeline = PrivacyGatewayServiceClient::new(gateway);
    for (role, text) in SCRIPT {
        let response = pipeline
            .process_message(with_bearer(
                ProcessMessageRequest {
                    context: Some(MessageContext {
                        conversation_id: format!("{slug}-conversation"),
                        subject_id: "customer-4711".into(),
                        role: *role as i32,
                        channel: "web".into(),
                        ..Default::default()
                    }),
                    text: (*text).to_string(),
                },
                &bot_key,
            )?)
            .await?
            .into_inner();
        println!();
        println!("{:<9} {}", role_label(*role), text);
        println!("{:<9} {}", "LLM sees", response.redacted_text);
    }

    let tenant_id: TenantId = tenant.tenant_id.parse()?;
    show_audit(&target, tenant_id).await
}

/// Reads the audit log from the start (as a platform auditor) until the demo's events
/// have been appended, then prints them.
async fn show_audit(target: &DemoTarget, tenant: TenantId) -> anyhow::Result<()> {
    let expected = 3 + SCRIPT.len();
    let channel = Channel::from_shared(target.audit_url.clone())?
        .connect()
        .await?;
    let mut audit = AuditServiceClient::new(channel);
    let principal = Principal {
        tenant: None,
        principal_id: "veil-demo".parse()?,
        roles: vec![Role::PlatformAdmin],
        request_id: RequestId::generate(),
    };
    let tenant = tenant.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut found = Vec::new();
    let mut index = 0u64;
    while found.len() < expected && tokio::time::Instant::now() < deadline {
        let token = target.issuer.mint_for("audit", &principal)?;
        let request = with_bearer(
            GetEntryRequest {
                key: Some(Key::LeafIndex(index)),
            },
            &token,
        )?;
        match audit.get_entry(request).await {
            Ok(response) => {
                index += 1;
                if let Some(entry) = response
                    .into_inner()
                    .entry
                    .filter(|e| e.tenant_id == tenant)
                {
                    found.push(entry);
                }
            }
            // The end of the log for now: the consumer has not appended the rest yet.
            Err(status) if status.code() == tonic::Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => return Err(status.into()),
        }
    }
    println!();
    println!(
        "audit log entries of this tenant ({} of {expected}):",
        found.len()
    );
    for entry in &found {
        println!(
            "  #{:<5} {:<28} leaf {}",
            entry.leaf_index,
            entry.event_type,
            hex_prefix(&entry.leaf_hash)
        );
    }
    if found.len() < expected {
        anyhow::bail!("audit log did not receive every demo event in time");
    }
    Ok(())
}

fn role_label(role: MessageRole) -> &'static str {
    match role {
        MessageRole::User => "USER",
        MessageRole::Assistant => "BOT",
        _ => "OTHER",
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn uuid_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}
