//! Text and JSON renderings of tenants and API keys (never a secret except on creation).

use serde_json::{Value, json};
use veil_proto::common::v1::{Jurisdiction, Role};
use veil_proto::gateway::v1::{ApiKey, Tenant, TenantState};

/// RFC 3339 for a protobuf timestamp; empty when unset.
pub(crate) fn time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(veil_core::convert::from_timestamp)
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn short(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

fn roles(values: &[i32]) -> Vec<String> {
    values
        .iter()
        .map(|r| {
            short(
                Role::try_from(*r).unwrap_or_default().as_str_name(),
                "ROLE_",
            )
        })
        .collect()
}

/// A tenant as JSON.
pub(crate) fn tenant_json(t: &Tenant) -> Value {
    json!({
        "tenant_id": t.tenant_id,
        "name": t.name,
        "slug": t.slug,
        "state": short(TenantState::try_from(t.state).unwrap_or_default().as_str_name(), "TENANT_STATE_"),
        "default_jurisdiction": short(
            Jurisdiction::try_from(t.default_jurisdiction).unwrap_or_default().as_str_name(),
            "JURISDICTION_",
        ),
        "default_locale": t.default_locale,
        "created_at": time(t.created_at.as_ref()),
    })
}

/// A tenant on one line.
pub(crate) fn tenant_line(t: &Tenant) -> String {
    let v = tenant_json(t);
    format!(
        "{}  {}  {:?}  {}  {}",
        t.tenant_id,
        t.slug,
        t.name,
        v["state"].as_str().unwrap_or(""),
        v["created_at"].as_str().unwrap_or("")
    )
}

/// An API key's metadata as JSON.
pub(crate) fn key_json(k: &ApiKey) -> Value {
    json!({
        "key_id": k.key_id,
        "prefix": k.prefix,
        "tenant_id": k.tenant_id,
        "name": k.name,
        "roles": roles(&k.roles),
        "created_at": time(k.created_at.as_ref()),
        "expires_at": time(k.expires_at.as_ref()),
        "revoked_at": time(k.revoked_at.as_ref()),
    })
}

/// An API key on one line.
pub(crate) fn key_line(k: &ApiKey) -> String {
    let mut line = format!(
        "{}  {:?}  roles={}",
        k.prefix,
        k.name,
        roles(&k.roles).join(",")
    );
    if k.expires_at.is_some() {
        line.push_str(&format!("  expires={}", time(k.expires_at.as_ref())));
    }
    if k.revoked_at.is_some() {
        line.push_str(&format!("  revoked={}", time(k.revoked_at.as_ref())));
    }
    line
}
