//! Which tenant an admin call acts on, and list paging.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::PageRequest;

use crate::apikeys::Caller;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 1000;

/// The tenant named by `requested` (empty: the caller's own). A tenant caller naming
/// another tenant gets NOT_FOUND, as if it did not exist, so ids cannot be probed.
pub fn target_tenant(caller: &Caller, requested: &str) -> Result<TenantId, ServiceError> {
    if requested.is_empty() {
        return caller.tenant.ok_or_else(|| {
            ServiceError::invalid("tenant_id", "is required for a platform administrator")
        });
    }
    let named: TenantId = requested
        .parse()
        .map_err(|_| ServiceError::invalid("tenant_id", "must be a UUID"))?;
    match caller.tenant {
        Some(own) if own != named => Err(ServiceError::NotFound(format!("tenant {named}"))),
        _ => Ok(named),
    }
}

/// Page size (default 50, capped at 1000) and the decoded token, if any.
pub fn page(page: Option<&PageRequest>) -> Result<(i64, Option<String>), ServiceError> {
    let Some(page) = page else {
        return Ok((DEFAULT_PAGE, None));
    };
    let size = match i64::from(page.page_size) {
        0 => DEFAULT_PAGE,
        n if n < 0 => {
            return Err(ServiceError::invalid(
                "page.page_size",
                "must not be negative",
            ));
        }
        n => n.min(MAX_PAGE),
    };
    if page.page_token.is_empty() {
        return Ok((size, None));
    }
    let token = URL_SAFE_NO_PAD
        .decode(&page.page_token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ServiceError::invalid("page.page_token", "is not a token of this list"))?;
    Ok((size, Some(token)))
}

/// An opaque page token for `cursor`.
pub fn token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(cursor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use veil_core::types::Role;

    fn caller(tenant: Option<TenantId>) -> Caller {
        Caller {
            key_id: "k".into(),
            tenant,
            roles: vec![Role::Admin],
        }
    }

    #[test]
    fn tenants_are_scoped_to_the_caller() {
        let own: TenantId = "0190f0a0-0000-7000-8000-000000000001".parse().unwrap();
        let other = "0190f0a0-0000-7000-8000-000000000002";
        assert_eq!(target_tenant(&caller(Some(own)), "").unwrap(), own);
        assert!(matches!(
            target_tenant(&caller(Some(own)), other),
            Err(ServiceError::NotFound(_))
        ));
        assert_eq!(
            target_tenant(&caller(None), other).unwrap().to_string(),
            other
        );
        assert!(matches!(
            target_tenant(&caller(None), ""),
            Err(ServiceError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn pages_are_bounded_and_tokens_round_trip() {
        let request = PageRequest {
            page_size: 5000,
            page_token: token("abc"),
        };
        assert_eq!(page(Some(&request)).unwrap(), (1000, Some("abc".into())));
        let bad = PageRequest {
            page_size: -1,
            ..Default::default()
        };
        assert!(page(Some(&bad)).is_err());
    }
}
