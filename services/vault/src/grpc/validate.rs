//! Request validation at the gRPC edge: every check names the field it rejects and never
//! echoes the value.

use tonic::{Request, Status};
use uuid::Uuid;
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::subjects::{SubjectKeys, validate_subject_id};
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::SubjectSelector;
use veil_proto::common::v1::subject_selector::Subject;

use crate::error::{VaultResult, invalid};

/// Most purpose keys or labels on one record.
pub const MAX_LIST_ITEMS: usize = 32;
/// Length of a token: prefix + 22 base64url characters (128 bits).
pub const TOKEN_LEN: usize = 26;

/// The verified caller, after checking it holds one of `roles`.
pub fn caller<'r, T>(request: &'r Request<T>, roles: &[Role]) -> Result<&'r Principal, Status> {
    let principal = Principal::from_request(request)?;
    principal.require_any(roles)?;
    Ok(principal)
}

/// The caller's tenant, after checking it holds one of `roles`.
pub fn tenant_caller<T>(
    request: &Request<T>,
    roles: &[Role],
) -> Result<(Principal, TenantId), Status> {
    let principal = caller(request, roles)?;
    let tenant = principal.tenant()?;
    Ok((principal.clone(), tenant))
}

/// The subject ref a selector names: the HMAC of a subject id, or a given ref.
pub fn subject_ref(
    subjects: &SubjectKeys,
    tenant: &TenantId,
    field: &str,
    selector: Option<&SubjectSelector>,
) -> VaultResult<SubjectRef> {
    match selector.and_then(|s| s.subject.as_ref()) {
        Some(Subject::SubjectId(id)) => {
            validate_subject_id(&format!("{field}.subject_id"), id)?;
            Ok(subjects.subject_ref(tenant, id))
        }
        Some(Subject::SubjectRef(reference)) => reference.parse().map_err(|_| {
            invalid(
                format!("{field}.subject_ref"),
                "must be 64 lowercase hex characters",
            )
        }),
        None => Err(invalid(field, "is required")),
    }
}

/// The subject ref of an external subject id field.
pub fn subject_from_id(
    subjects: &SubjectKeys,
    tenant: &TenantId,
    field: &str,
    subject_id: &str,
) -> VaultResult<SubjectRef> {
    validate_subject_id(field, subject_id)?;
    Ok(subjects.subject_ref(tenant, subject_id))
}

/// A record id: a UUID.
pub fn record_id(field: &str, value: &str) -> VaultResult<Uuid> {
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    Uuid::try_parse(value).map_err(|_| invalid(field, "must be a uuid"))
}

/// A lowercase key such as a category, field or purpose: 1 to 64 of `[a-z0-9_.-]`.
pub fn key_name(field: &str, value: &str) -> VaultResult<()> {
    let ok = (1..=64).contains(&value.len())
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "must be 1 to 64 characters of [a-z0-9_.-]"))
    }
}

/// A stated purpose of a reveal: required, a purpose key.
pub fn purpose(field: &str, value: &str) -> VaultResult<()> {
    if value.is_empty() {
        return Err(invalid(field, "is required: state why the value is needed"));
    }
    key_name(field, value)
}

/// An entity type such as `EMAIL_ADDRESS`: 1 to 64 of `[A-Za-z0-9_]`.
pub fn entity_type(field: &str, value: &str) -> VaultResult<()> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "must be 1 to 64 characters of [A-Za-z0-9_]"))
    }
}

/// A token as produced by `Tokenize`.
pub fn token(field: &str, value: &str) -> VaultResult<()> {
    let ok = value.len() == TOKEN_LEN && super::tokens::token_bytes(value).is_some();
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "is not a vault token"))
    }
}

/// Free text that goes to the audit log (a reason): at most 256 bytes, no control
/// characters.
pub fn note(field: &str, value: &str) -> VaultResult<()> {
    if value.len() > 256 || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "must be at most 256 bytes without control characters",
        ));
    }
    Ok(())
}

/// A MIME type: at most 128 printable ASCII characters.
pub fn content_type(field: &str, value: &str) -> VaultResult<()> {
    if value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(invalid(
            field,
            "must be at most 128 printable ascii characters",
        ));
    }
    Ok(())
}

/// A value to encrypt: not empty and within `max` bytes (oversize is RESOURCE_EXHAUSTED,
/// the code of every size limit).
pub fn value_size(field: &str, len: usize, max: usize) -> VaultResult<()> {
    if len == 0 {
        return Err(invalid(field, "must not be empty"));
    }
    if len > max {
        return Err(ServiceError::ResourceExhausted(format!(
            "{field}: must be at most {max} bytes"
        ))
        .into());
    }
    Ok(())
}

/// A batch: not empty and within `max` items.
pub fn batch_size(field: &str, len: usize, max: usize) -> VaultResult<()> {
    if len == 0 {
        return Err(invalid(field, "must not be empty"));
    }
    if len > max {
        return Err(ServiceError::ResourceExhausted(format!(
            "{field}: at most {max} items per call"
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_and_names() {
        assert!(token("t", "tok_ysXrm57zCkrsBQsDumh6Ww").is_ok());
        assert!(token("t", "tok_ysXrm57zCkrsBQsDumh6W").is_err());
        assert!(token("t", "tik_ysXrm57zCkrsBQsDumh6Ww").is_err());
        assert!(token("t", "tok_ysXrm57zCkrsBQsDumh6W=").is_err());
        assert!(key_name("c", "contact").is_ok());
        assert!(key_name("c", "Contact").is_err());
        assert!(key_name("c", "").is_err());
        assert!(entity_type("e", "EMAIL_ADDRESS").is_ok());
        assert!(entity_type("e", "EMAIL ADDRESS").is_err());
        assert!(purpose("p", "").is_err());
        assert!(note("r", "a\nb").is_err());
    }

    #[test]
    fn size_limits_use_their_codes() {
        let status: Status = value_size("value", 0, 10).unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let status: Status = value_size("value", 11, 10).unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("value"));
        let status: Status = batch_size("items", 1001, 1000).unwrap_err().into();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    }
}
