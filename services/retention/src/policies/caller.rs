//! The verified caller of a policy, hold or sweep RPC, and the fields every one of them
//! validates the same way (subject selectors, page tokens, free-text notes).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::{Request, Status};
use veil_core::auth::Principal;
use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_core::subjects::{SubjectKeys, validate_subject_id};
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{Actor, PageRequest, SubjectSelector};

/// Default and largest page sizes (AIP-158 as in every Veil list RPC).
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 1000;

/// A caller holding one of the RPC's roles, acting in one tenant.
pub struct Caller {
    pub principal: Principal,
    pub tenant: TenantId,
}

impl Caller {
    /// PERMISSION_DENIED unless the caller holds one of `roles` and is bound to a tenant.
    pub fn of<T>(request: &Request<T>, roles: &[Role]) -> Result<Self, Status> {
        let principal = Principal::from_request(request)?;
        principal.require_any(roles)?;
        Ok(Self {
            tenant: principal.tenant()?,
            principal: principal.clone(),
        })
    }

    /// Who acted, for records and events.
    pub fn actor(&self) -> Actor {
        // The principal's tenant is the caller's tenant (checked when the caller was made).
        veil_core::convert::principal_actor(&self.principal)
    }

    /// Event context of this caller, about `subject` if any.
    pub fn context(&self, subject: Option<&SubjectRef>) -> EventContext {
        EventContext {
            tenant: Some(self.tenant),
            subject_ref: subject.cloned(),
            actor: Some(self.actor()),
            request_id: self.principal.request_id.to_string(),
        }
    }
}

/// The subject ref a selector names: the HMAC of a subject id, or a given ref. `None`
/// when no selector is given; a selector naming nothing is INVALID_ARGUMENT.
pub fn subject_ref(
    subjects: &SubjectKeys,
    tenant: &TenantId,
    field: &str,
    selector: Option<&SubjectSelector>,
) -> Result<Option<SubjectRef>, ServiceError> {
    let Some(selector) = selector else {
        return Ok(None);
    };
    match selector.subject.as_ref() {
        Some(Subject::SubjectId(id)) => {
            validate_subject_id(&format!("{field}.subject_id"), id)?;
            Ok(Some(subjects.subject_ref(tenant, id)))
        }
        Some(Subject::SubjectRef(reference)) => reference.parse().map(Some).map_err(|_| {
            ServiceError::invalid(
                format!("{field}.subject_ref"),
                "must be 64 lowercase hex characters",
            )
        }),
        None => Err(ServiceError::invalid(
            field,
            "names no subject: set subject_id or subject_ref, or leave it unset",
        )),
    }
}

/// Free text kept in the retention schema and shown to officers (reasons, case
/// references): at most `max` bytes, no control characters. Never echoed in errors.
pub fn note(field: &str, value: &str, max: usize, required: bool) -> Result<(), ServiceError> {
    if required && value.trim().is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {max} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Page size of a list request.
pub fn page_size(page: Option<&PageRequest>) -> Result<i64, ServiceError> {
    match page.map(|p| p.page_size).unwrap_or(0) {
        0 => Ok(DEFAULT_PAGE),
        n if n < 0 => Err(ServiceError::invalid(
            "page.page_size",
            "must not be negative",
        )),
        n => Ok(i64::from(n).min(MAX_PAGE)),
    }
}

/// The cursor inside an opaque page token; `None` for the first page.
pub fn page_cursor(page: Option<&PageRequest>) -> Result<Option<String>, ServiceError> {
    let token = page.map(|p| p.page_token.as_str()).unwrap_or("");
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| ServiceError::invalid("page.page_token", "is not a token from this api"))
}

/// The opaque page token of a cursor.
pub fn page_token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(cursor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = page_token("3:marketing");
        let page = PageRequest {
            page_size: 0,
            page_token: token,
        };
        assert_eq!(
            page_cursor(Some(&page)).unwrap().as_deref(),
            Some("3:marketing")
        );
        let bad = PageRequest {
            page_size: 0,
            page_token: "%%%".into(),
        };
        assert!(page_cursor(Some(&bad)).is_err());
        assert_eq!(page_size(None).unwrap(), 50);
        let huge = PageRequest {
            page_size: 5000,
            page_token: String::new(),
        };
        assert_eq!(page_size(Some(&huge)).unwrap(), 1000);
    }

    #[test]
    fn notes_are_bounded_and_never_echoed() {
        assert!(note("reason", "litigation 2026-17", 500, true).is_ok());
        assert!(note("reason", "  ", 500, true).is_err());
        assert!(note("case_reference", "", 200, false).is_ok());
        let error = note("reason", "secret\nvalue", 500, true).unwrap_err();
        assert!(error.to_string().contains("reason"));
        assert!(!error.to_string().contains("secret"));
    }
}
