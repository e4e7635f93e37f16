//! `veil admin policy get|set`: the policy as the JSON document the gateway stores (see
//! `veil_gateway::policy_store`), with enum values as short names ("mask", "reject").

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use veil_gateway::policy_store;
use veil_proto::gateway::v1::{GetPrivacyPolicyRequest, PrivacyPolicy, SetPrivacyPolicyRequest};

use super::output::time;
use super::{Context, Failure};

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Print the current policy (or a past version).
    Get(GetArgs),
    /// Store a new version from a JSON file (as printed by `get --json`, or its `policy`).
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// Version to show; the current one by default.
    #[arg(long, default_value_t = 0)]
    version: i64,
    /// Tenant id (platform administrators).
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    /// JSON policy file.
    #[arg(long)]
    file: PathBuf,
    /// Fail unless this is still the current version (optimistic concurrency).
    #[arg(long, default_value_t = 0)]
    expected_version: i64,
    /// Tenant id (platform administrators).
    #[arg(long)]
    tenant: Option<String>,
}

fn document(policy: &PrivacyPolicy) -> serde_json::Value {
    json!({
        "version": policy.version,
        "updated_at": time(policy.updated_at.as_ref()),
        "updated_by": policy.updated_by.as_ref().map(|a| a.principal_id.clone()).unwrap_or_default(),
        "policy": policy_store::to_json(policy),
    })
}

fn show(context: &Context, policy: &PrivacyPolicy) {
    let doc = document(policy);
    context.print(doc.clone(), || {
        let header = if policy.version == 0 {
            "policy version 0 (the default; none set yet)".to_string()
        } else {
            format!(
                "policy version {} (updated {} by {})",
                policy.version,
                doc["updated_at"].as_str().unwrap_or(""),
                doc["updated_by"].as_str().unwrap_or("")
            )
        };
        let body = serde_json::to_string_pretty(&doc["policy"]).unwrap_or_default();
        format!("{header}\n{body}")
    });
}

/// Reads a policy file: either the bare policy or `get --json` output with a `policy` key.
fn read(path: &PathBuf) -> Result<PrivacyPolicy, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{} is not JSON: {e}", path.display())))?;
    let value = match value.get("policy") {
        Some(inner) if value.get("version").is_some() => inner.clone(),
        _ => value,
    };
    policy_store::from_json(value).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

pub(crate) async fn run(context: &mut Context, command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Get(args) => {
            let request = context.request(GetPrivacyPolicyRequest {
                tenant_id: args.tenant.unwrap_or_default(),
                version: args.version,
            })?;
            let policy = context
                .client()
                .get_privacy_policy(request)
                .await?
                .into_inner()
                .policy
                .unwrap_or_default();
            show(context, &policy);
        }
        PolicyCommand::Set(args) => {
            let policy = read(&args.file)?;
            let request = context.request(SetPrivacyPolicyRequest {
                tenant_id: args.tenant.unwrap_or_default(),
                policy: Some(policy),
                expected_version: args.expected_version,
            })?;
            let stored = context
                .client()
                .set_privacy_policy(request)
                .await?
                .into_inner()
                .policy
                .unwrap_or_default();
            show(context, &stored);
        }
    }
    Ok(())
}
