//! `GetEntry`, `Query` and `AccessLog`.

use prost::Message;
use tonic::{Request, Response, Status};
use veil_core::auth::Principal;
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_core::types::SubjectRef;
use veil_proto::audit::v1::get_entry_request::Key;
use veil_proto::audit::v1::{
    AccessLogRequest, AccessLogResponse, AccessRecord, AuditEntry, GetEntryRequest,
    GetEntryResponse, QueryRequest, QueryResponse,
};
use veil_proto::common::v1::PageResponse;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;

use super::AuditApi;
use super::scope::{ENTRY_READERS, READERS, page, tenant_scope, time_range, token};
use crate::store::{self, EntryFilter, EntryKey, EntryRow};

/// Most event types one query may name.
const MAX_EVENT_TYPES: usize = 100;

/// Event types that record someone seeing a subject's original data.
pub const ACCESS_EVENT_TYPES: [&str; 2] = ["vault.revealed", "gateway.text_restored"];

/// The wire form of a stored entry (the envelope decoded alongside its bytes).
pub(crate) fn entry_to_proto(row: EntryRow) -> AuditEntry {
    let event = Event::decode(row.envelope.as_slice()).ok();
    AuditEntry {
        leaf_index: u64::try_from(row.idx).unwrap_or_default(),
        event_id: row.event_id.to_string(),
        event_type: row.event_type,
        tenant_id: row.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
        subject_ref: row.subject_ref.unwrap_or_default(),
        actor: event.as_ref().and_then(|e| e.actor.clone()),
        source: event.as_ref().map(|e| e.source).unwrap_or_default(),
        occurred_at: Some(timestamp(row.occurred_at)),
        appended_at: Some(timestamp(row.appended_at)),
        leaf_data: row.envelope,
        leaf_hash: row.leaf_hash,
        event,
    }
}

pub(super) async fn get_entry(
    api: &AuditApi,
    request: Request<GetEntryRequest>,
) -> Result<Response<GetEntryResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(ENTRY_READERS)?;
    let tenant = tenant_scope(principal)?;
    let key = match request.into_inner().key {
        Some(Key::LeafIndex(idx)) => EntryKey::Index(
            i64::try_from(idx).map_err(|_| ServiceError::invalid("leaf_index", "too large"))?,
        ),
        Some(Key::EventId(id)) => EntryKey::EventId(
            id.parse()
                .map_err(|_| ServiceError::invalid("event_id", "must be a UUID"))?,
        ),
        None => {
            return Err(ServiceError::invalid("key", "leaf_index or event_id is required").into());
        }
    };
    let row = store::entry(&api.pool, key, tenant)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::NotFound("audit entry".into()))?;
    Ok(Response::new(GetEntryResponse {
        entry: Some(entry_to_proto(row)),
    }))
}

fn subject_ref(value: &str, field: &str) -> Result<Option<String>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    let parsed: SubjectRef = value
        .parse()
        .map_err(|_| ServiceError::invalid(field, "must be 64 lowercase hex characters"))?;
    Ok(Some(parsed.as_str().to_owned()))
}

fn cursor(value: Option<String>, field: &str) -> Result<i64, Status> {
    value
        .map(|v| v.parse::<i64>())
        .transpose()
        .map_err(|_| Status::from(ServiceError::invalid(field, "is not a token of this list")))
        .map(|v| v.unwrap_or(-1))
}

pub(super) async fn query(
    api: &AuditApi,
    request: Request<QueryRequest>,
) -> Result<Response<QueryResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(READERS)?;
    let tenant = tenant_scope(principal)?;
    let request = request.into_inner();
    let (limit, after) = page(request.page.as_ref(), "query:")?;
    let (from, until) = time_range(request.occurred.as_ref(), "occurred")?;
    // The list becomes a query parameter, matched against every entry scanned.
    if request.event_types.len() > MAX_EVENT_TYPES {
        return Err(ServiceError::invalid("event_types", "must have at most 100 entries").into());
    }
    for (i, event_type) in request.event_types.iter().enumerate() {
        if event_type.is_empty() || event_type.len() > 100 {
            return Err(ServiceError::invalid(
                format!("event_types[{i}]"),
                "must be 1 to 100 characters",
            )
            .into());
        }
    }
    let actor = Some(request.actor_principal_id).filter(|a| !a.is_empty());
    if actor.as_ref().is_some_and(|a| a.len() > 256) {
        return Err(
            ServiceError::invalid("actor_principal_id", "must be at most 256 bytes").into(),
        );
    }
    let filter = EntryFilter {
        tenant,
        subject_ref: subject_ref(&request.subject_ref, "subject_ref")?,
        actor_id: actor,
        event_types: request.event_types,
        occurred_from: from,
        occurred_until: until,
        after: cursor(after, "page.page_token")?,
        limit: limit + 1,
    };
    let mut rows = store::query(&api.pool, &filter)
        .await
        .map_err(ServiceError::from)?;
    let next = next_token(&mut rows, limit, "query:");
    Ok(Response::new(QueryResponse {
        entries: rows.into_iter().map(entry_to_proto).collect(),
        page: Some(PageResponse {
            next_page_token: next,
        }),
    }))
}

/// Trims the extra row fetched to learn whether there is a next page.
fn next_token(rows: &mut Vec<EntryRow>, limit: i64, prefix: &str) -> String {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last()
            .map(|row| token(prefix, &row.idx.to_string()))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

pub(super) async fn access_log(
    api: &AuditApi,
    request: Request<AccessLogRequest>,
) -> Result<Response<AccessLogResponse>, Status> {
    let principal = Principal::from_request(&request)?.clone();
    principal.require_any(ENTRY_READERS)?;
    let tenant = tenant_scope(&principal)?;
    let request = request.into_inner();
    let subject = match request.subject.and_then(|s| s.subject) {
        Some(Subject::SubjectRef(value)) => subject_ref(&value, "subject.subject_ref")?
            .ok_or_else(|| ServiceError::invalid("subject.subject_ref", "must not be empty"))?,
        Some(Subject::SubjectId(id)) => {
            veil_core::subjects::validate_subject_id("subject.subject_id", &id)?;
            // The pseudonym is per tenant, so an id only means something inside one.
            let tenant = principal.tenant()?;
            api.subjects.subject_ref(&tenant, &id).as_str().to_owned()
        }
        None => return Err(ServiceError::invalid("subject", "is required").into()),
    };
    let (limit, after) = page(request.page.as_ref(), "access:")?;
    let (from, until) = time_range(request.occurred.as_ref(), "occurred")?;
    let filter = EntryFilter {
        tenant,
        subject_ref: Some(subject.clone()),
        actor_id: None,
        event_types: ACCESS_EVENT_TYPES.iter().map(|t| t.to_string()).collect(),
        occurred_from: from,
        occurred_until: until,
        after: cursor(after, "page.page_token")?,
        limit: limit + 1,
    };
    let mut rows = store::query(&api.pool, &filter)
        .await
        .map_err(ServiceError::from)?;
    let next = next_token(&mut rows, limit, "access:");
    Ok(Response::new(AccessLogResponse {
        subject_ref: subject,
        accesses: rows.into_iter().map(access_record).collect(),
        page: Some(PageResponse {
            next_page_token: next,
        }),
    }))
}

fn access_record(row: EntryRow) -> AccessRecord {
    let event = Event::decode(row.envelope.as_slice()).ok();
    let (purpose, counts) = match event.as_ref().and_then(|e| e.payload.clone()) {
        Some(Payload::VaultRevealed(revealed)) => (revealed.purpose, revealed.counts),
        Some(Payload::GatewayTextRestored(restored)) => (String::new(), restored.entity_counts),
        _ => (String::new(), Default::default()),
    };
    AccessRecord {
        occurred_at: Some(timestamp(row.occurred_at)),
        actor: event.and_then(|e| e.actor),
        event_type: row.event_type,
        purpose,
        counts,
        event_id: row.event_id.to_string(),
        leaf_index: u64::try_from(row.idx).unwrap_or_default(),
    }
}
