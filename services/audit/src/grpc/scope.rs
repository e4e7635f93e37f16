//! Who may see what: roles per method, tenant scope and paging cursors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;
use uuid::Uuid;
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::types::Role;
use veil_proto::common::v1::{PageRequest, TimeRange};

/// Roles that read the audit log.
pub const READERS: &[Role] = &[Role::Auditor, Role::PrivacyOfficer, Role::PlatformAdmin];
/// Roles that read single entries, proofs and access logs: the readers, and services
/// acting in a tenant (retention anchors deletion certificates and builds exports).
pub const ENTRY_READERS: &[Role] = &[
    Role::Auditor,
    Role::PrivacyOfficer,
    Role::PlatformAdmin,
    Role::Service,
];
/// Roles that move incidents along.
pub const INCIDENT_HANDLERS: &[Role] = &[Role::PrivacyOfficer, Role::PlatformAdmin];

/// Default and largest page sizes (AIP-158 as in common.proto).
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 1_000;

/// The tenant a caller reads: None means every tenant (platform administrators only).
pub fn tenant_scope(principal: &Principal) -> Result<Option<Uuid>, Status> {
    if principal.has_role(Role::PlatformAdmin) {
        return Ok(None);
    }
    Ok(Some(principal.tenant()?.as_uuid()))
}

/// Page size and the cursor to resume after.
pub fn page(page: Option<&PageRequest>, prefix: &str) -> Result<(i64, Option<String>), Status> {
    let Some(page) = page else {
        return Ok((DEFAULT_PAGE, None));
    };
    let size = match i64::from(page.page_size) {
        0 => DEFAULT_PAGE,
        n if n < 0 => {
            return Err(ServiceError::invalid("page.page_size", "must not be negative").into());
        }
        n => n.min(MAX_PAGE),
    };
    if page.page_token.is_empty() {
        return Ok((size, None));
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(&page.page_token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(prefix).map(str::to_owned))
        .ok_or_else(|| ServiceError::invalid("page.page_token", "is not a token of this list"))?;
    Ok((size, Some(decoded)))
}

/// An opaque token for the cursor `value` of a list called `prefix`.
pub fn token(prefix: &str, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{prefix}{value}"))
}

/// Bounds of a time range; an unset bound is open.
pub fn time_range(
    range: Option<&TimeRange>,
    field: &str,
) -> Result<(Option<time::OffsetDateTime>, Option<time::OffsetDateTime>), Status> {
    let Some(range) = range else {
        return Ok((None, None));
    };
    let convert = |ts: Option<&prost_types::Timestamp>, which: &str| {
        ts.map(|ts| {
            veil_core::convert::from_timestamp(ts)
                .ok_or_else(|| ServiceError::invalid(format!("{field}.{which}"), "out of range"))
        })
        .transpose()
    };
    let start = convert(range.start.as_ref(), "start")?;
    let end = convert(range.end.as_ref(), "end")?;
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        return Err(ServiceError::invalid(field, "end is before start").into());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_list() {
        let page_request = PageRequest {
            page_size: 5000,
            page_token: token("q:", "42"),
        };
        assert_eq!(
            page(Some(&page_request), "q:").unwrap(),
            (1000, Some("42".to_string()))
        );
        assert!(page(Some(&page_request), "i:").is_err());
        assert_eq!(page(None, "q:").unwrap(), (50, None));
    }
}
