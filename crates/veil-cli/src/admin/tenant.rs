//! `veil admin tenant create|get|list`.

use clap::{Args, Subcommand};
use serde_json::json;
use veil_proto::common::v1::{Jurisdiction, PageRequest};
use veil_proto::gateway::v1::{CreateTenantRequest, GetTenantRequest, ListTenantsRequest};

use super::output::{key_json, key_line, tenant_json, tenant_line};
use super::{Context, Failure};

#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Create a tenant (platform administrators only).
    Create(CreateArgs),
    /// Show a tenant (default: the caller's own).
    Get(GetArgs),
    /// List tenants (a tenant administrator sees only its own).
    List(ListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Display name.
    #[arg(long)]
    name: String,
    /// Unique handle, 3 to 63 characters of [a-z0-9-].
    #[arg(long)]
    slug: String,
    /// Default jurisdiction, for example eu_gdpr or us_ca_ccpa.
    #[arg(long)]
    jurisdiction: Option<String>,
    /// Default locale (BCP 47).
    #[arg(long)]
    locale: Option<String>,
    /// Also create an admin API key and print its secret (once).
    #[arg(long)]
    with_admin_key: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// Tenant id (platform administrators).
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only tenants whose slug starts with this.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Include suspended tenants.
    #[arg(long)]
    include_suspended: bool,
    /// Tenants fetched per call.
    #[arg(long, default_value_t = 100)]
    page_size: i32,
}

/// `eu_gdpr` or `JURISDICTION_EU_GDPR` → the enum value.
pub(crate) fn jurisdiction(name: &str) -> Result<i32, Failure> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("JURISDICTION_") {
        upper
    } else {
        format!("JURISDICTION_{upper}")
    };
    Jurisdiction::from_str_name(&full)
        .map(|j| j as i32)
        .ok_or_else(|| Failure::Usage(format!("unknown jurisdiction {name:?}")))
}

pub(crate) async fn run(context: &mut Context, command: TenantCommand) -> Result<(), Failure> {
    match command {
        TenantCommand::Create(args) => {
            let request = CreateTenantRequest {
                name: args.name,
                slug: args.slug,
                default_jurisdiction: args
                    .jurisdiction
                    .as_deref()
                    .map(jurisdiction)
                    .transpose()?
                    .unwrap_or(0),
                default_locale: args.locale.unwrap_or_default(),
                create_admin_key: args.with_admin_key,
            };
            let request = context.request(request)?;
            let created = context.client().create_tenant(request).await?.into_inner();
            let tenant = created.tenant.unwrap_or_default();
            let key = created.admin_key;
            let json = json!({
                "tenant": tenant_json(&tenant),
                "admin_key": key.as_ref().map(|k| json!({
                    "api_key": k.api_key.as_ref().map(key_json),
                    "secret": k.secret,
                })),
            });
            context.print(json, || {
                let mut text = format!("created tenant {}", tenant_line(&tenant));
                if let Some(key) = &key {
                    let meta = key.api_key.clone().unwrap_or_default();
                    text.push_str(&format!(
                        "\nadmin key {}\nsecret (shown once, store it now): {}",
                        key_line(&meta),
                        key.secret
                    ));
                }
                text
            });
        }
        TenantCommand::Get(args) => {
            let request = context.request(GetTenantRequest {
                tenant_id: args.tenant.unwrap_or_default(),
            })?;
            let tenant = context
                .client()
                .get_tenant(request)
                .await?
                .into_inner()
                .tenant
                .unwrap_or_default();
            context.print(tenant_json(&tenant), || tenant_line(&tenant));
        }
        TenantCommand::List(args) => {
            if !(1..=1000).contains(&args.page_size) {
                return Err(Failure::Usage("--page-size must be 1 to 1000".into()));
            }
            let mut tenants = Vec::new();
            let mut token = String::new();
            loop {
                let request = context.request(ListTenantsRequest {
                    page: Some(PageRequest {
                        page_size: args.page_size,
                        page_token: token,
                    }),
                    slug_prefix: args.prefix.clone(),
                    include_suspended: args.include_suspended,
                })?;
                let page = context.client().list_tenants(request).await?.into_inner();
                tenants.extend(page.tenants);
                token = page.page.unwrap_or_default().next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            let json = json!(tenants.iter().map(tenant_json).collect::<Vec<_>>());
            context.print(json, || {
                tenants
                    .iter()
                    .map(tenant_line)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
