//! Text and JSON renderings of data-subject requests and certificates.

use serde_json::{Value, json};
use veil_proto::common::v1::{Jurisdiction, RequestState, RequestType, VeilService};
use veil_proto::retention::v1::{DataSubjectRequest, DeletionCertificate, RequestChannel};

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

pub(crate) fn state_name(value: i32) -> String {
    short(
        RequestState::try_from(value)
            .unwrap_or_default()
            .as_str_name(),
        "REQUEST_STATE_",
    )
}

pub(crate) fn type_name(value: i32) -> String {
    short(
        RequestType::try_from(value)
            .unwrap_or_default()
            .as_str_name(),
        "REQUEST_TYPE_",
    )
}

fn service_name(value: i32) -> String {
    short(
        VeilService::try_from(value)
            .unwrap_or_default()
            .as_str_name(),
        "VEIL_SERVICE_",
    )
}

/// A request as JSON.
pub(crate) fn request_json(r: &DataSubjectRequest) -> Value {
    json!({
        "request_id": r.request_id,
        "request_type": type_name(r.request_type),
        "state": state_name(r.state),
        "subject_ref": r.subject_ref,
        "channel": short(RequestChannel::try_from(r.channel).unwrap_or_default().as_str_name(), "REQUEST_CHANNEL_"),
        "jurisdiction": short(Jurisdiction::try_from(r.jurisdiction).unwrap_or_default().as_str_name(), "JURISDICTION_"),
        "locale": r.locale,
        "purpose_keys": r.purpose_keys,
        "received_at": time(r.received_at.as_ref()),
        "verified_at": time(r.verified_at.as_ref()),
        "due_at": time(r.due_at.as_ref()),
        "completed_at": time(r.completed_at.as_ref()),
        "overdue": r.overdue,
        "closing_reason": r.closing_reason,
        "certificate_id": r.certificate_id,
        "export_ready": r.export_ready,
        "extensions": r.extensions.iter().map(|e| json!({
            "extended_by_days": e.extended_by.as_ref().map(|d| d.seconds / 86_400).unwrap_or(0),
            "reason": e.reason,
            "extended_at": time(e.extended_at.as_ref()),
        })).collect::<Vec<_>>(),
        "progress": r.progress.iter().map(|p| json!({
            "service": service_name(p.service),
            "done": p.done,
            "counts": p.outcome.as_ref().map(|o| o.counts.clone()).unwrap_or_default(),
            "error": p.error,
        })).collect::<Vec<_>>(),
        "correction_record_ids": r.correction_record_ids,
    })
}

/// A request on one line: id, type, state, due date, flags.
pub(crate) fn request_line(r: &DataSubjectRequest) -> String {
    let mut line = format!(
        "{}  {:<20} {:<20} due {}",
        r.request_id,
        type_name(r.request_type),
        state_name(r.state),
        time(r.due_at.as_ref())
    );
    if r.overdue {
        line.push_str("  OVERDUE");
    }
    if !r.closing_reason.is_empty() {
        line.push_str(&format!("  ({})", r.closing_reason));
    }
    line
}

/// A request in full, for `status`.
pub(crate) fn request_text(r: &DataSubjectRequest) -> String {
    let mut text = request_line(r);
    text.push_str(&format!(
        "\n  subject_ref {}\n  received {}  verified {}  completed {}",
        r.subject_ref,
        time(r.received_at.as_ref()),
        or_dash(time(r.verified_at.as_ref())),
        or_dash(time(r.completed_at.as_ref())),
    ));
    for e in &r.extensions {
        text.push_str(&format!(
            "\n  extended by {} days on {}: {}",
            e.extended_by
                .as_ref()
                .map(|d| d.seconds / 86_400)
                .unwrap_or(0),
            time(e.extended_at.as_ref()),
            e.reason
        ));
    }
    for p in &r.progress {
        let state = if p.done { "done" } else { "pending" };
        text.push_str(&format!("\n  {:<8} {state}", service_name(p.service)));
        if let Some(outcome) = &p.outcome {
            let mut counts: Vec<_> = outcome.counts.iter().collect();
            counts.sort();
            for (kind, n) in counts {
                text.push_str(&format!(" {kind}={n}"));
            }
        }
        if !p.error.is_empty() {
            text.push_str(&format!(" error: {}", p.error));
        }
    }
    if !r.certificate_id.is_empty() {
        text.push_str(&format!("\n  certificate {}", r.certificate_id));
    }
    if r.export_ready {
        text.push_str("\n  export ready: veil dsr export");
    }
    text
}

fn or_dash(text: String) -> String {
    if text.is_empty() { "-".into() } else { text }
}

/// A certificate as JSON: the signed document, its signature and its audit anchor.
pub(crate) fn certificate_json(c: &DeletionCertificate) -> Value {
    let document: Value = serde_json::from_str(&c.certificate_json)
        .unwrap_or(Value::String(c.certificate_json.clone()));
    json!({
        "certificate_id": c.certificate_id,
        "request_id": c.request_id,
        "issued_at": time(c.issued_at.as_ref()),
        "certificate": document,
        "jws": c.jws,
        "key_id": c.key_id,
        "anchored": c.anchored,
        "audit_leaf_index": c.audit_leaf_index,
        "tree_size": c.tree_head.as_ref().map(|t| t.tree_size).unwrap_or(0),
    })
}
