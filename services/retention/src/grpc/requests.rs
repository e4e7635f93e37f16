//! Data-subject request RPCs: caller roles, field validation (INVALID_ARGUMENT naming
//! the field, never echoing a value) and dispatch into [`crate::requests`]. Deletion
//! certificates and exports belong to [`crate::certificate`] and [`crate::export`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use veil_core::auth::Principal;
use veil_core::convert::from_timestamp;
use veil_core::error::ServiceError;
use veil_core::subjects::validate_subject_id;
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{
    Actor, Jurisdiction, PageRequest, PageResponse, RequestState, RequestType, SubjectSelector,
};
use veil_proto::retention::v1::*;

use super::ExportStream;
use crate::requests::intake::{self, Submission};
use crate::requests::manage::{self, Closing, Filter};
use crate::requests::{convert, verification};
use crate::state::Retention;

/// Response header set when SubmitRequest returned an already open request of the same
/// subject and type instead of opening a new one.
pub const DUPLICATE_HEADER: &str = "veil-duplicate";
/// Most purpose keys or corrections in one request.
const MAX_ITEMS: usize = 32;
/// Largest corrected value, in bytes.
const MAX_CORRECTION_BYTES: usize = 64 * 1024;
/// Longest reason text.
const MAX_REASON_BYTES: usize = 512;

/// The verified caller of one RPC.
struct Caller {
    principal: Principal,
    tenant: TenantId,
}

impl Caller {
    fn of<T>(request: &Request<T>, roles: &[Role]) -> Result<Self, Status> {
        let principal = Principal::from_request(request)?;
        principal.require_any(roles)?;
        let tenant = principal.tenant()?;
        Ok(Self {
            principal: principal.clone(),
            tenant,
        })
    }

    fn actor(&self) -> Actor {
        // The principal's tenant is the caller's tenant (checked when the caller was made).
        veil_core::convert::principal_actor(&self.principal)
    }

    /// A bot only sees the requests it submitted; staff and services see all.
    fn only_own(&self) -> Option<String> {
        let staff = [Role::PrivacyOfficer, Role::Auditor, Role::Service];
        (!staff.iter().any(|r| self.principal.has_role(*r)))
            .then(|| self.principal.principal_id.to_string())
    }

    /// Whether the caller may vouch for a subject's identity.
    fn may_assert_identity(&self) -> bool {
        self.principal.has_role(Role::PrivacyOfficer) || self.principal.has_role(Role::Service)
    }
}

fn request_id(value: &str) -> Result<Uuid, ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid("request_id", "is required"));
    }
    Uuid::try_parse(value).map_err(|_| ServiceError::invalid("request_id", "must be a uuid"))
}

/// A purpose key: 1 to 64 of `[a-z0-9_]` (consent's rule).
fn purpose_keys(keys: &[String]) -> Result<Vec<String>, ServiceError> {
    if keys.len() > MAX_ITEMS {
        return Err(ServiceError::invalid(
            "purpose_keys",
            format!("must have at most {MAX_ITEMS} items"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let ok = (1..=64).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(ServiceError::invalid(
                format!("purpose_keys[{i}]"),
                "must be 1 to 64 characters of [a-z0-9_]",
            ));
        }
        if !out.contains(key) {
            out.push(key.clone());
        }
    }
    Ok(out)
}

/// A BCP 47 locale: empty, or up to 35 characters of letters, digits and hyphens.
fn locale(value: &str) -> Result<String, ServiceError> {
    let ok = value.len() <= 35
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(value.to_string())
    } else {
        Err(ServiceError::invalid(
            "locale",
            "must be a BCP 47 tag of at most 35 characters",
        ))
    }
}

/// Free text that is recorded and shown (reasons): bounded, no control characters.
fn reason(field: &str, value: &str, required: bool) -> Result<String, ServiceError> {
    let trimmed = value.trim();
    if required && trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if trimmed.len() > MAX_REASON_BYTES || trimmed.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {MAX_REASON_BYTES} bytes without control characters"),
        ));
    }
    Ok(trimmed.to_string())
}

fn idempotency_key(value: &str) -> Result<Option<String>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::invalid(
            "idempotency_key",
            "must be at most 128 printable ascii characters",
        ));
    }
    Ok(Some(value.to_string()))
}

/// Corrections of a rectification request: a field key or vault token and a new value.
fn corrections(
    request_type: RequestType,
    items: &[Correction],
) -> Result<Vec<(String, String)>, ServiceError> {
    if request_type != RequestType::Rectification {
        if !items.is_empty() {
            return Err(ServiceError::invalid(
                "corrections",
                "are only for REQUEST_TYPE_RECTIFICATION",
            ));
        }
        return Ok(Vec::new());
    }
    // Empty is allowed (an in-chat "correct my data"): the request then waits in
    // AWAITING_INPUT for a submission that brings the values.
    if items.len() > MAX_ITEMS {
        return Err(ServiceError::invalid(
            "corrections",
            format!("must have at most {MAX_ITEMS} items"),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = &item.field;
        let field_ok = if intake::is_token(field) {
            field.len() == 26
                && field[4..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        } else {
            (1..=64).contains(&field.len())
                && field.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
                })
        };
        if !field_ok {
            return Err(ServiceError::invalid(
                format!("corrections[{i}].field"),
                "must be a vault token or 1 to 64 characters of [a-z0-9_.-]",
            ));
        }
        if item.new_value.is_empty() {
            return Err(ServiceError::invalid(
                format!("corrections[{i}].new_value"),
                "is required",
            ));
        }
        if item.new_value.len() > MAX_CORRECTION_BYTES {
            return Err(ServiceError::invalid(
                format!("corrections[{i}].new_value"),
                format!("must be at most {MAX_CORRECTION_BYTES} bytes"),
            ));
        }
        out.push((field.clone(), item.new_value.clone()));
    }
    Ok(out)
}

fn subject_selector(
    state: &Retention,
    tenant: &TenantId,
    selector: Option<&SubjectSelector>,
) -> Result<Option<SubjectRef>, ServiceError> {
    match selector.and_then(|s| s.subject.as_ref()) {
        None => Ok(None),
        Some(Subject::SubjectId(id)) => {
            validate_subject_id("subject.subject_id", id)?;
            Ok(Some(state.subjects.subject_ref(tenant, id)))
        }
        Some(Subject::SubjectRef(reference)) => reference.parse().map(Some).map_err(|_| {
            ServiceError::invalid("subject.subject_ref", "must be 64 lowercase hex characters")
        }),
    }
}

fn page_size(page: Option<&PageRequest>) -> Result<i64, ServiceError> {
    match page.map(|p| p.page_size).unwrap_or(0) {
        0 => Ok(50),
        n if n < 0 => Err(ServiceError::invalid(
            "page.page_size",
            "must not be negative",
        )),
        n => Ok(i64::from(n.min(1000))),
    }
}

fn page_cursor(page: Option<&PageRequest>) -> Result<Option<Uuid>, ServiceError> {
    let token = page.map(|p| p.page_token.as_str()).unwrap_or("");
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| ServiceError::invalid("page.page_token", "is not a token from this api"))
}

/// The FAILED_PRECONDITION of a request a legal hold blocks: names hold and request.
fn held(request_id: Uuid, hold_id: &str) -> Status {
    Status::failed_precondition(format!(
        "request {request_id} is on hold: blocked by legal hold {hold_id}; it resumes by itself \
         when the hold is released"
    ))
}

pub async fn submit_request(
    state: &Retention,
    request: Request<SubmitRequestRequest>,
) -> Result<Response<SubmitRequestResponse>, Status> {
    let caller = Caller::of(&request, &[Role::Bot, Role::PrivacyOfficer, Role::Service])?;
    let message = request.into_inner();
    validate_subject_id("subject_id", &message.subject_id)?;
    let request_type = match RequestType::try_from(message.request_type) {
        Ok(RequestType::Unspecified) | Err(_) => {
            return Err(
                ServiceError::invalid("request_type", "must be a known request type").into(),
            );
        }
        Ok(t) => t,
    };
    let channel = match RequestChannel::try_from(message.channel) {
        Ok(RequestChannel::Unspecified) => RequestChannel::Api,
        Ok(c) => c,
        Err(_) => return Err(ServiceError::invalid("channel", "is not a known channel").into()),
    };
    let jurisdiction = Jurisdiction::try_from(message.jurisdiction)
        .map_err(|_| ServiceError::invalid("jurisdiction", "is not a known jurisdiction"))?;
    let submission = Submission {
        tenant: caller.tenant,
        subject_ref: state
            .subjects
            .subject_ref(&caller.tenant, &message.subject_id),
        subject_id: message.subject_id,
        request_type,
        channel,
        jurisdiction,
        locale: locale(&message.locale)?,
        purpose_keys: purpose_keys(&message.purpose_keys)?,
        corrections: corrections(request_type, &message.corrections)?,
        identity_asserted: message.identity_verified && caller.may_assert_identity(),
        idempotency_key: idempotency_key(&message.idempotency_key)?,
        actor: caller.actor(),
    };
    let submitted = intake::submit(state, submission).await?;
    if let Some(hold_id) = &submitted.held_by {
        return Err(held(submitted.row.request_id, hold_id));
    }
    let mut response = Response::new(SubmitRequestResponse {
        request: Some(convert::to_proto(&submitted.row)),
        challenge: submitted.challenge,
    });
    if submitted.duplicate {
        response
            .metadata_mut()
            .insert(DUPLICATE_HEADER, MetadataValue::from_static("true"));
    }
    Ok(response)
}

pub async fn verify_request(
    state: &Retention,
    request: Request<VerifyRequestRequest>,
) -> Result<Response<VerifyRequestResponse>, Status> {
    let caller = Caller::of(&request, &[Role::Bot, Role::PrivacyOfficer, Role::Service])?;
    let message = request.into_inner();
    let id = request_id(&message.request_id)?;
    if !verification::well_formed(&message.code) {
        return Err(ServiceError::invalid("code", "must be 8 digits").into());
    }
    let only = caller.only_own();
    let verified = intake::verify(
        state,
        caller.tenant,
        id,
        &message.code,
        caller.actor(),
        only.as_deref(),
    )
    .await?;
    if let Some(hold_id) = &verified.held_by {
        return Err(held(verified.row.request_id, hold_id));
    }
    Ok(Response::new(VerifyRequestResponse {
        request: Some(convert::to_proto(&verified.row)),
        verified: verified.verified,
        attempts_remaining: verified.attempts_remaining,
    }))
}

pub async fn get_request(
    state: &Retention,
    request: Request<GetRequestRequest>,
) -> Result<Response<GetRequestResponse>, Status> {
    let caller = Caller::of(
        &request,
        &[
            Role::Bot,
            Role::PrivacyOfficer,
            Role::Auditor,
            Role::Service,
        ],
    )?;
    let id = request_id(&request.get_ref().request_id)?;
    let only = caller.only_own();
    let found = manage::get(state, caller.tenant, id, only.as_deref()).await?;
    Ok(Response::new(GetRequestResponse {
        request: Some(found),
    }))
}

pub async fn list_requests(
    state: &Retention,
    request: Request<ListRequestsRequest>,
) -> Result<Response<ListRequestsResponse>, Status> {
    let caller = Caller::of(&request, &[Role::PrivacyOfficer, Role::Auditor])?;
    let message = request.into_inner();
    let mut states = Vec::new();
    for (i, value) in message.states.iter().enumerate() {
        match RequestState::try_from(*value) {
            Ok(RequestState::Unspecified) | Err(_) => {
                return Err(ServiceError::invalid(format!("states[{i}]"), "is not a state").into());
            }
            // Each once: the list becomes a query parameter.
            Ok(s) if !states.contains(&s) => states.push(s),
            Ok(_) => {}
        }
    }
    let mut request_types = Vec::new();
    for (i, value) in message.request_types.iter().enumerate() {
        match RequestType::try_from(*value) {
            Ok(RequestType::Unspecified) | Err(_) => {
                return Err(
                    ServiceError::invalid(format!("request_types[{i}]"), "is not a type").into(),
                );
            }
            Ok(t) if !request_types.contains(&t) => request_types.push(t),
            Ok(_) => {}
        }
    }
    let bound = |field: &str, ts: Option<&prost_types::Timestamp>| {
        ts.map(|t| from_timestamp(t).ok_or_else(|| ServiceError::invalid(field, "is out of range")))
            .transpose()
    };
    let due = message.due.as_ref();
    let filter = Filter {
        states,
        request_types,
        overdue_only: message.overdue_only,
        subject: subject_selector(state, &caller.tenant, message.subject.as_ref())?,
        due_from: bound("due.start", due.and_then(|d| d.start.as_ref()))?,
        due_to: bound("due.end", due.and_then(|d| d.end.as_ref()))?,
        after: page_cursor(message.page.as_ref())?,
        limit: page_size(message.page.as_ref())?,
    };
    let (rows, more) = manage::list(state, caller.tenant, &filter).await?;
    let next_page_token = match rows.last() {
        Some(last) if more => URL_SAFE_NO_PAD.encode(last.request_id.as_bytes()),
        _ => String::new(),
    };
    Ok(Response::new(ListRequestsResponse {
        requests: rows.iter().map(convert::to_proto).collect(),
        page: Some(PageResponse { next_page_token }),
    }))
}

pub async fn extend_request(
    state: &Retention,
    request: Request<ExtendRequestRequest>,
) -> Result<Response<ExtendRequestResponse>, Status> {
    let caller = Caller::of(&request, &[Role::PrivacyOfficer])?;
    let message = request.into_inner();
    let id = request_id(&message.request_id)?;
    let by = match message.extend_by {
        None => return Err(ServiceError::invalid("extend_by", "is required").into()),
        Some(d) if d.seconds < 0 || d.nanos < 0 || (d.seconds == 0 && d.nanos == 0) => {
            return Err(ServiceError::invalid("extend_by", "must be positive").into());
        }
        Some(d) => time::Duration::seconds(d.seconds),
    };
    let why = reason("reason", &message.reason, true)?;
    let extended = manage::extend(state, caller.tenant, id, by, &why, caller.actor()).await?;
    Ok(Response::new(ExtendRequestResponse {
        request: Some(extended),
    }))
}

pub async fn cancel_request(
    state: &Retention,
    request: Request<CancelRequestRequest>,
) -> Result<Response<CancelRequestResponse>, Status> {
    let caller = Caller::of(&request, &[Role::Bot, Role::PrivacyOfficer])?;
    let message = request.into_inner();
    let id = request_id(&message.request_id)?;
    let closing = match CancelOutcome::try_from(message.outcome) {
        Ok(CancelOutcome::Unspecified | CancelOutcome::Cancelled) => Closing::Cancelled,
        Ok(CancelOutcome::Rejected) => Closing::Rejected,
        Err(_) => return Err(ServiceError::invalid("outcome", "is not a known outcome").into()),
    };
    if closing == Closing::Rejected && !caller.principal.has_role(Role::PrivacyOfficer) {
        return Err(Status::permission_denied(
            "rejecting a request requires the role privacy_officer",
        ));
    }
    let why = reason("reason", &message.reason, closing == Closing::Rejected)?;
    let only = caller.only_own();
    let closed = manage::close(
        state,
        caller.tenant,
        id,
        closing,
        &why,
        caller.actor(),
        only.as_deref(),
    )
    .await?;
    Ok(Response::new(CancelRequestResponse {
        request: Some(closed),
    }))
}

pub async fn get_deletion_certificate(
    state: &Retention,
    request: Request<GetDeletionCertificateRequest>,
) -> Result<Response<GetDeletionCertificateResponse>, Status> {
    crate::certificate::get_deletion_certificate(state, request).await
}

pub async fn download_export(
    state: &Retention,
    request: Request<DownloadExportRequest>,
) -> Result<Response<ExportStream>, Status> {
    crate::export::download::download_export(state, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_belong_to_rectification_only() {
        let one = vec![Correction {
            field: "contact.email".into(),
            new_value: "new@example.org".into(),
        }];
        assert!(corrections(RequestType::Rectification, &one).is_ok());
        assert!(corrections(RequestType::Erasure, &one).is_err());
        assert_eq!(
            corrections(RequestType::Rectification, &[]).ok(),
            Some(vec![])
        );
        let bad = vec![Correction {
            field: "Contact Email".into(),
            new_value: "x".into(),
        }];
        let error = corrections(RequestType::Rectification, &bad).expect_err("bad field");
        assert!(error.to_string().contains("corrections[0].field"));
        let token = vec![Correction {
            field: "tok_AAAAAAAAAAAAAAAAAAAAAA".into(),
            new_value: "x".into(),
        }];
        assert!(corrections(RequestType::Rectification, &token).is_ok());
    }

    #[test]
    fn validation_errors_name_the_field_and_never_the_value() {
        let secret = "Secret Purpose!";
        let error = purpose_keys(&["ok".into(), secret.into()]).expect_err("bad key");
        let text = error.to_string();
        assert!(text.contains("purpose_keys[1]"));
        assert!(!text.contains(secret));
        assert!(locale("de-CH").is_ok());
        assert!(locale("de_CH!").is_err());
        assert!(reason("reason", "  ", true).is_err());
        assert_eq!(reason("reason", "", false).ok(), Some(String::new()));
        assert!(idempotency_key("a key").is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        let page = PageRequest {
            page_size: 0,
            page_token: URL_SAFE_NO_PAD.encode(id.as_bytes()),
        };
        assert_eq!(page_cursor(Some(&page)).ok(), Some(Some(id)));
        let bad = PageRequest {
            page_size: -1,
            page_token: "!!".into(),
        };
        assert!(page_cursor(Some(&bad)).is_err());
        assert!(page_size(Some(&bad)).is_err());
    }
}
