//! The `veil retention` subcommands.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{PageRequest, SubjectSelector};
use veil_proto::retention::v1::*;

use super::names::{
    action, action_name, category, category_name, period_secs, period_text, service_name,
};
use super::{Context, Failure};

#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Create or replace the policy of a category (and purpose).
    Set(SetPolicyArgs),
    /// List the tenant's policies.
    List(ListPoliciesArgs),
    /// Delete a policy by id.
    Delete(IdArgs),
}

#[derive(Debug, Args)]
pub(super) struct SetPolicyArgs {
    /// transcript, vault_record, consent_record, audit_event, export or dsr_record.
    #[arg(long)]
    category: String,
    /// How long data is kept: 90d, 12h, 2w, 3600s (at least 1h, at most the platform cap).
    #[arg(long)]
    period: String,
    /// delete, anonymize, crypto_shred or restrict.
    #[arg(long)]
    action: String,
    /// Only data collected for this purpose; every purpose without its own policy if unset.
    #[arg(long, default_value = "")]
    purpose: String,
}

#[derive(Debug, Args)]
pub(super) struct ListPoliciesArgs {
    /// Only this category.
    #[arg(long)]
    category: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct IdArgs {
    /// The id.
    id: String,
}

#[derive(Debug, Subcommand)]
pub(super) enum HoldCommand {
    /// Place a legal hold on a subject, or on the whole tenant without --subject/--subject-ref.
    Place(PlaceHoldArgs),
    /// Release a hold.
    Release(ReleaseHoldArgs),
    /// List holds in force (or all with --include-released).
    List(ListHoldsArgs),
}

#[derive(Debug, Args)]
pub(super) struct PlaceHoldArgs {
    /// The subject's id as the chatbot knows it.
    #[arg(long, conflicts_with = "subject_ref")]
    subject: Option<String>,
    /// The subject's pseudonym (64 hex characters).
    #[arg(long)]
    subject_ref: Option<String>,
    /// Why (shown when an erasure is refused); no personal data.
    #[arg(long)]
    reason: String,
    /// External case or matter reference.
    #[arg(long, default_value = "")]
    case_reference: String,
    /// When the hold ends by itself (RFC 3339); open-ended if unset.
    #[arg(long)]
    expires_at: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct ReleaseHoldArgs {
    /// The hold id.
    id: String,
    /// Why the hold ends.
    #[arg(long)]
    reason: String,
}

#[derive(Debug, Args)]
pub(super) struct ListHoldsArgs {
    /// Only this subject's holds.
    #[arg(long)]
    subject: Option<String>,
    /// Released and expired holds too.
    #[arg(long)]
    include_released: bool,
}

#[derive(Debug, Args)]
pub(super) struct SweepArgs {
    /// Only count what would go; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only these categories (repeatable); every category with a policy if unset.
    #[arg(long = "category")]
    categories: Vec<String>,
}

fn time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(veil_core::convert::from_timestamp)
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn category_arg(name: &str) -> Result<i32, Failure> {
    category(name).map(|c| c as i32).ok_or_else(|| {
        Failure::Usage(format!(
            "--category {name}: use transcript, vault_record, consent_record, audit_event, \
             export or dsr_record"
        ))
    })
}

fn policy_json(p: &RetentionPolicy) -> Value {
    json!({
        "policy_id": p.policy_id,
        "category": category_name(p.category),
        "purpose_key": p.purpose_key,
        "period_secs": p.period.as_ref().map(|d| d.seconds).unwrap_or_default(),
        "action": action_name(p.action),
        "updated_at": time(p.updated_at.as_ref()),
        "updated_by": p.updated_by.as_ref().map(|a| a.principal_id.clone()).unwrap_or_default(),
    })
}

fn policy_line(p: &RetentionPolicy) -> String {
    let purpose = if p.purpose_key.is_empty() {
        "*"
    } else {
        &p.purpose_key
    };
    format!(
        "{}  {:<15} {:<12} {:>6}  {}",
        p.policy_id,
        category_name(p.category),
        purpose,
        period_text(p.period.as_ref().map(|d| d.seconds).unwrap_or_default()),
        action_name(p.action),
    )
}

fn hold_json(h: &LegalHold) -> Value {
    json!({
        "hold_id": h.hold_id,
        "subject_ref": h.subject_ref,
        "tenant_wide": h.subject_ref.is_empty(),
        "reason": h.reason,
        "case_reference": h.case_reference,
        "placed_at": time(h.placed_at.as_ref()),
        "expires_at": time(h.expires_at.as_ref()),
        "released_at": time(h.released_at.as_ref()),
        "release_reason": h.release_reason,
    })
}

fn hold_line(h: &LegalHold) -> String {
    let scope = if h.subject_ref.is_empty() {
        "tenant-wide".to_string()
    } else {
        format!("subject {}", h.subject_ref)
    };
    let state = if h.released_at.is_some() {
        format!("released {}", time(h.released_at.as_ref()))
    } else if h.expires_at.is_some() {
        format!("until {}", time(h.expires_at.as_ref()))
    } else {
        "open-ended".to_string()
    };
    format!("{}  {scope}  {state}  {}", h.hold_id, h.reason)
}

pub(super) async fn policy(context: &mut Context, command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Set(a) => {
            let period = period_secs(&a.period).ok_or_else(|| {
                Failure::Usage(format!(
                    "--period {}: use e.g. 90d, 12h, 2w or 3600s",
                    a.period
                ))
            })?;
            let action = action(&a.action).ok_or_else(|| {
                Failure::Usage(format!(
                    "--action {}: use delete, anonymize, crypto_shred or restrict",
                    a.action
                ))
            })?;
            let request = context.request(SetPolicyRequest {
                policy: Some(RetentionPolicy {
                    category: category_arg(&a.category)?,
                    purpose_key: a.purpose,
                    period: Some(prost_types::Duration {
                        seconds: period,
                        nanos: 0,
                    }),
                    action: action as i32,
                    ..Default::default()
                }),
            })?;
            let response = context.client().set_policy(request).await?.into_inner();
            let policy = response.policy.unwrap_or_default();
            let mut doc = policy_json(&policy);
            doc["created"] = json!(response.created);
            context.print(doc, || {
                let verb = if response.created {
                    "created"
                } else {
                    "updated"
                };
                format!("{verb}: {}", policy_line(&policy))
            });
        }
        PolicyCommand::List(a) => {
            let category = a.category.as_deref().map(category_arg).transpose()?;
            let mut policies = Vec::new();
            let mut token = String::new();
            loop {
                let request = context.request(ListPoliciesRequest {
                    category: category.unwrap_or(0),
                    page: Some(PageRequest {
                        page_size: 1000,
                        page_token: token,
                    }),
                })?;
                let page = context.client().list_policies(request).await?.into_inner();
                policies.extend(page.policies);
                token = page.page.unwrap_or_default().next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            let doc = Value::Array(policies.iter().map(policy_json).collect());
            context.print(doc, || {
                if policies.is_empty() {
                    "no policies".to_string()
                } else {
                    policies
                        .iter()
                        .map(policy_line)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
        }
        PolicyCommand::Delete(a) => {
            let request = context.request(DeletePolicyRequest { policy_id: a.id })?;
            let policy = context
                .client()
                .delete_policy(request)
                .await?
                .into_inner()
                .policy
                .unwrap_or_default();
            context.print(policy_json(&policy), || {
                format!("deleted: {}", policy_line(&policy))
            });
        }
    }
    Ok(())
}

pub(super) async fn hold(context: &mut Context, command: HoldCommand) -> Result<(), Failure> {
    match command {
        HoldCommand::Place(a) => {
            let subject = match (a.subject, a.subject_ref) {
                (Some(id), _) => Some(Subject::SubjectId(id)),
                (None, Some(reference)) => Some(Subject::SubjectRef(reference)),
                (None, None) => None,
            };
            let expires_at = a
                .expires_at
                .as_deref()
                .map(|text| {
                    time::OffsetDateTime::parse(
                        text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map(veil_core::convert::timestamp)
                    .map_err(|_| Failure::Usage(format!("--expires-at {text}: use RFC 3339")))
                })
                .transpose()?;
            let request = context.request(PlaceHoldRequest {
                subject: subject.map(|s| SubjectSelector { subject: Some(s) }),
                reason: a.reason,
                case_reference: a.case_reference,
                expires_at,
            })?;
            let hold = context
                .client()
                .place_hold(request)
                .await?
                .into_inner()
                .hold
                .unwrap_or_default();
            context.print(hold_json(&hold), || format!("placed: {}", hold_line(&hold)));
        }
        HoldCommand::Release(a) => {
            let request = context.request(ReleaseHoldRequest {
                hold_id: a.id,
                reason: a.reason,
            })?;
            let hold = context
                .client()
                .release_hold(request)
                .await?
                .into_inner()
                .hold
                .unwrap_or_default();
            context.print(hold_json(&hold), || {
                format!("released: {}", hold_line(&hold))
            });
        }
        HoldCommand::List(a) => {
            let mut holds = Vec::new();
            let mut token = String::new();
            loop {
                let request = context.request(ListHoldsRequest {
                    subject: a.subject.clone().map(|id| SubjectSelector {
                        subject: Some(Subject::SubjectId(id)),
                    }),
                    include_released: a.include_released,
                    page: Some(PageRequest {
                        page_size: 1000,
                        page_token: token,
                    }),
                })?;
                let page = context.client().list_holds(request).await?.into_inner();
                holds.extend(page.holds);
                token = page.page.unwrap_or_default().next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            let doc = Value::Array(holds.iter().map(hold_json).collect());
            context.print(doc, || {
                if holds.is_empty() {
                    "no holds".to_string()
                } else {
                    holds.iter().map(hold_line).collect::<Vec<_>>().join("\n")
                }
            });
        }
    }
    Ok(())
}

pub(super) async fn sweep(context: &mut Context, a: SweepArgs) -> Result<(), Failure> {
    let categories = a
        .categories
        .iter()
        .map(|c| category_arg(c))
        .collect::<Result<Vec<_>, _>>()?;
    let request = context.request(RunSweepRequest {
        dry_run: a.dry_run,
        categories,
    })?;
    let response = context.client().run_sweep(request).await?.into_inner();
    let results: Vec<Value> = response
        .results
        .iter()
        .map(|r| {
            let outcome = r.outcome.clone().unwrap_or_default();
            json!({
                "service": service_name(r.service),
                "category": category_name(r.category),
                "purpose_key": r.purpose_key,
                "action": action_name(r.action),
                "cutoff": time(r.cutoff.as_ref()),
                "counts": outcome.counts,
                "held_skipped": outcome.held_skipped,
                "more_remaining": outcome.more_remaining,
                "error": r.error,
            })
        })
        .collect();
    let doc = json!({
        "sweep_id": response.sweep_id,
        "dry_run": response.dry_run,
        "blocked_by_hold": response.blocked_by_hold,
        "started_at": time(response.started_at.as_ref()),
        "finished_at": time(response.finished_at.as_ref()),
        "results": results,
    });
    context.print(doc, || {
        let mode = if response.dry_run { "dry run" } else { "sweep" };
        if response.blocked_by_hold {
            return format!(
                "{mode} {}: blocked by a tenant-wide legal hold",
                response.sweep_id
            );
        }
        let mut lines = vec![format!("{mode} {}", response.sweep_id)];
        for r in &response.results {
            let outcome = r.outcome.clone().unwrap_or_default();
            let mut counts: Vec<String> = outcome
                .counts
                .iter()
                .map(|(kind, n)| format!("{kind}={n}"))
                .collect();
            counts.sort();
            let purpose = if r.purpose_key.is_empty() {
                "*"
            } else {
                &r.purpose_key
            };
            let status = if r.error.is_empty() {
                format!("{} held={}", counts.join(" "), outcome.held_skipped)
            } else {
                format!("error: {}", r.error)
            };
            lines.push(format!(
                "  {:<9} {:<15} {:<10} {:<13} {status}",
                service_name(r.service),
                category_name(r.category),
                purpose,
                action_name(r.action),
            ));
        }
        lines.join("\n")
    });
    Ok(())
}
