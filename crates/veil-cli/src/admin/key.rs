//! `veil admin key create|list|revoke`.

use clap::{Args, Subcommand};
use serde_json::json;
use veil_proto::common::v1::PageRequest;
use veil_proto::gateway::v1::{CreateApiKeyRequest, ListApiKeysRequest, RevokeApiKeyRequest};

use super::output::{key_json, key_line};
use super::{Context, Failure};

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create an API key; its secret is printed once and never again.
    Create(CreateArgs),
    /// List API keys (metadata only).
    List(ListArgs),
    /// Revoke an API key; it stops working on its next request.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Label, for example "support-bot production".
    #[arg(long)]
    name: String,
    /// Role: bot, agent, privacy_officer, auditor or admin (repeat for several).
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// Expire after this many days (1 to 36,500).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    expires_in_days: Option<u32>,
    /// Tenant id (platform administrators).
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Include revoked keys.
    #[arg(long)]
    include_revoked: bool,
    /// Tenant id (platform administrators).
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// Key id or prefix (veil_...).
    key_id: String,
    /// Why, for the audit log (no personal data).
    #[arg(long, default_value = "")]
    reason: String,
    /// Tenant id (platform administrators).
    #[arg(long)]
    tenant: Option<String>,
}

fn role(name: &str) -> Result<i32, Failure> {
    let role: veil_core::types::Role = name
        .parse()
        .map_err(|_| Failure::Usage(format!("unknown role {name:?}")))?;
    Ok(veil_core::convert::role_to_proto(role) as i32)
}

pub(crate) async fn run(context: &mut Context, command: KeyCommand) -> Result<(), Failure> {
    match command {
        KeyCommand::Create(args) => {
            let roles = args
                .roles
                .iter()
                .map(|r| role(r))
                .collect::<Result<Vec<_>, _>>()?;
            let expires_at = args.expires_in_days.map(|days| {
                veil_core::convert::timestamp(
                    time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days)),
                )
            });
            let request = context.request(CreateApiKeyRequest {
                tenant_id: args.tenant.unwrap_or_default(),
                name: args.name,
                roles,
                expires_at,
            })?;
            let created = context
                .client()
                .create_api_key(request)
                .await?
                .into_inner()
                .created
                .unwrap_or_default();
            let meta = created.api_key.unwrap_or_default();
            let json = json!({ "api_key": key_json(&meta), "secret": created.secret });
            context.print(json, || {
                format!(
                    "created key {}\nsecret (shown once, store it now): {}",
                    key_line(&meta),
                    created.secret
                )
            });
        }
        KeyCommand::List(args) => {
            let mut keys = Vec::new();
            let mut token = String::new();
            loop {
                let request = context.request(ListApiKeysRequest {
                    tenant_id: args.tenant.clone().unwrap_or_default(),
                    page: Some(PageRequest {
                        page_size: 200,
                        page_token: token,
                    }),
                    include_revoked: args.include_revoked,
                })?;
                let page = context.client().list_api_keys(request).await?.into_inner();
                keys.extend(page.api_keys);
                token = page.page.unwrap_or_default().next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            let json = json!(keys.iter().map(key_json).collect::<Vec<_>>());
            context.print(json, || {
                keys.iter().map(key_line).collect::<Vec<_>>().join("\n")
            });
        }
        KeyCommand::Revoke(args) => {
            let request = context.request(RevokeApiKeyRequest {
                tenant_id: args.tenant.unwrap_or_default(),
                key_id: args.key_id,
                reason: args.reason,
            })?;
            let key = context
                .client()
                .revoke_api_key(request)
                .await?
                .into_inner()
                .api_key
                .unwrap_or_default();
            context.print(key_json(&key), || format!("revoked key {}", key_line(&key)));
        }
    }
    Ok(())
}
