//! Collecting a subject's data from every service for an export: gateway transcripts
//! (restored), consent records, vault records and tokens, and the audit access log.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tonic::Streaming;
use veil_core::convert::from_timestamp;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::audit::v1::AccessLogRequest;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{ExportChunk, PageRequest, SubjectSelector};

use crate::certificate::document::rfc3339;
use crate::state::Retention;

/// Access-log entries read per page.
const ACCESS_PAGE: i32 = 1000;

/// Sections by name, each a list of JSON objects, plus which service gave each.
#[derive(Debug, Default, Clone)]
pub struct Collected {
    /// Section name -> items, in the order the service streamed them.
    pub sections: BTreeMap<String, Vec<Value>>,
    /// Section name -> service label.
    pub sources: BTreeMap<String, &'static str>,
}

impl Collected {
    /// Items per section (numbers only, safe to store).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.sections
            .iter()
            .map(|(name, items)| (name.clone(), items.len()))
            .collect()
    }
}

fn selector(subject: &SubjectRef) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(Subject::SubjectRef(subject.as_str().to_string())),
    })
}

fn unavailable(service: &str, status: &tonic::Status) -> ServiceError {
    ServiceError::Unavailable(format!(
        "{service} export unavailable ({:?})",
        status.code()
    ))
}

/// Everything every service holds about `subject`.
pub async fn collect(
    state: &Retention,
    tenant: TenantId,
    subject: &SubjectRef,
    request_id: &str,
) -> Result<Collected, ServiceError> {
    let mut collected = Collected::default();
    let gateway = state
        .peers
        .gateway(tenant)
        .export_subject(veil_proto::gateway::v1::ExportSubjectRequest {
            subject: selector(subject),
            request_id: request_id.to_string(),
        })
        .await
        .map_err(|s| unavailable("gateway", &s))?
        .into_inner();
    read_stream(gateway, "gateway", &mut collected, |r| r.chunk).await?;
    let consent = state
        .peers
        .consent(tenant)
        .export_subject(veil_proto::consent::v1::ExportSubjectRequest {
            subject: selector(subject),
            request_id: request_id.to_string(),
        })
        .await
        .map_err(|s| unavailable("consent", &s))?
        .into_inner();
    read_stream(consent, "consent", &mut collected, |r| r.chunk).await?;
    let vault = state
        .peers
        .vault(tenant)
        .export_subject(veil_proto::vault::v1::ExportSubjectRequest {
            subject: selector(subject),
            request_id: request_id.to_string(),
        })
        .await;
    match vault {
        Ok(stream) => {
            read_stream(stream.into_inner(), "vault", &mut collected, |r| r.chunk).await?
        }
        // The vault answers NOT_FOUND for a subject it holds nothing of: nothing to export.
        Err(status) if status.code() == tonic::Code::NotFound => {}
        Err(status) => return Err(unavailable("vault", &status)),
    }
    let accesses = access_log(state, tenant, subject).await?;
    collected.sources.insert("access_log".into(), "audit");
    collected.sections.insert("access_log".into(), accesses);
    Ok(collected)
}

/// Reads a stream of export chunks into sections (JSON Lines, one object per line).
async fn read_stream<T>(
    mut stream: Streaming<T>,
    service: &'static str,
    collected: &mut Collected,
    chunk_of: impl Fn(T) -> Option<ExportChunk>,
) -> Result<(), ServiceError> {
    loop {
        let message = stream
            .message()
            .await
            .map_err(|s| unavailable(service, &s))?;
        let Some(chunk) = message.and_then(&chunk_of) else {
            return Ok(());
        };
        let items = collected.sections.entry(chunk.section.clone()).or_default();
        collected.sources.insert(chunk.section.clone(), service);
        for line in chunk.json_lines.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let value: Value = serde_json::from_slice(line).map_err(|_| {
                ServiceError::Unavailable(format!("{service} export line is not JSON"))
            })?;
            items.push(value);
        }
        if chunk.last {
            return Ok(());
        }
    }
}

/// The audit log's record of who saw or revealed the subject's data.
async fn access_log(
    state: &Retention,
    tenant: TenantId,
    subject: &SubjectRef,
) -> Result<Vec<Value>, ServiceError> {
    let mut audit = state.peers.audit(tenant);
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let response = audit
            .access_log(AccessLogRequest {
                subject: selector(subject),
                occurred: None,
                page: Some(PageRequest {
                    page_size: ACCESS_PAGE,
                    page_token,
                }),
            })
            .await
            .map_err(|s| unavailable("audit", &s))?
            .into_inner();
        for access in response.accesses {
            let actor = access.actor.unwrap_or_default();
            let counts: BTreeMap<String, i64> = access.counts.into_iter().collect();
            items.push(json!({
                "occurred_at": access.occurred_at.as_ref().and_then(from_timestamp).map(rfc3339),
                "actor_kind": actor.kind().as_str_name().trim_start_matches("ACTOR_KIND_").to_ascii_lowercase(),
                "actor": actor.principal_id,
                "event_type": access.event_type,
                "purpose": access.purpose,
                "counts": counts,
                "event_id": access.event_id,
                "audit_leaf_index": access.leaf_index,
            }));
        }
        page_token = response.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            return Ok(items);
        }
    }
}
