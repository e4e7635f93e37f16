//! Subject pseudonyms: the external subject id is personal data, so services outside the
//! vault keep `subject_ref = HMAC-SHA256(tenant key, subject id)` instead.

use crate::config::{ConfigError, PrivacySettings};
use std::net::IpAddr;

use crate::crypto::{
    KeyBytes, PEER_KEY_LABEL, PSEUDONYM_KEY_LABEL, derive_key, peer_ref, subject_ref,
};
use crate::types::{SubjectRef, TenantId};

/// Longest external subject id accepted, in bytes.
pub const MAX_SUBJECT_ID_BYTES: usize = 256;

/// Derives per-tenant pseudonym keys (and the installation's peer key) from the
/// deployment's root secret.
#[derive(Clone)]
pub struct SubjectKeys {
    root: KeyBytes,
    peer: KeyBytes,
}

impl std::fmt::Debug for SubjectKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKeys(..)")
    }
}

impl SubjectKeys {
    /// Reads `privacy.subject_key`.
    pub fn from_settings(settings: &PrivacySettings) -> Result<Self, ConfigError> {
        let root = KeyBytes::from_base64(settings.subject_key.expose()).map_err(|_| {
            ConfigError::invalid("privacy.subject_key", "must be 32 bytes in base64")
        })?;
        Ok(Self::from_key(root))
    }

    /// Keys from raw bytes (tests, `veil up` with generated secrets).
    pub fn from_key(root: KeyBytes) -> Self {
        let peer = derive_key(
            &root,
            &TenantId::from_uuid(uuid::Uuid::nil()),
            PEER_KEY_LABEL,
        );
        Self { root, peer }
    }

    /// The subject ref of `subject_id` within `tenant`.
    pub fn subject_ref(&self, tenant: &TenantId, subject_id: &str) -> SubjectRef {
        subject_ref(
            &derive_key(&self.root, tenant, PSEUDONYM_KEY_LABEL),
            subject_id,
        )
    }

    /// A tenant's own key for one use (`label`), derived from the root secret like the
    /// pseudonym key; each use takes its own label so no key serves two primitives.
    pub fn tenant_key(&self, tenant: &TenantId, label: &str) -> KeyBytes {
        derive_key(&self.root, tenant, label)
    }

    /// The keyed pseudonym of a caller's network address, for grouping authentication
    /// failures without storing addresses. An IPv6 caller is named by its /64 (one host
    /// or site commonly holds the whole prefix and could rotate through it); an
    /// IPv4-mapped address by its IPv4 address.
    pub fn peer_ref(&self, address: IpAddr) -> String {
        match address.to_canonical() {
            IpAddr::V4(v4) => peer_ref(&self.peer, &v4.octets()),
            IpAddr::V6(v6) => peer_ref(&self.peer, &v6.octets()[..8]),
        }
    }
}

/// Checks an external subject id from a request; `field` names it in the error.
pub fn validate_subject_id(
    field: &str,
    subject_id: &str,
) -> Result<(), crate::error::ServiceError> {
    if subject_id.is_empty() {
        return Err(crate::error::ServiceError::invalid(
            field,
            "must not be empty",
        ));
    }
    if subject_id.len() > MAX_SUBJECT_ID_BYTES {
        return Err(crate::error::ServiceError::invalid(
            field,
            format!("must be at most {MAX_SUBJECT_ID_BYTES} bytes"),
        ));
    }
    if subject_id.chars().any(char::is_control) {
        return Err(crate::error::ServiceError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(byte: u8) -> SubjectKeys {
        SubjectKeys::from_key(KeyBytes::from_array([byte; 32]))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn peer_refs_name_an_address_without_showing_it() {
        let k = keys(1);
        let one = k.peer_ref(ip("203.0.113.7"));
        assert_eq!(one, k.peer_ref(ip("203.0.113.7")), "stable");
        assert!(one.starts_with("peer_") && one.len() == 5 + 24, "{one}");
        assert_ne!(one, k.peer_ref(ip("203.0.113.8")));
        assert_ne!(one, keys(2).peer_ref(ip("203.0.113.7")), "keyed");
        // An IPv4 caller seen over an IPv6 socket is the same peer.
        assert_eq!(one, k.peer_ref(ip("::ffff:203.0.113.7")));
    }

    #[test]
    fn an_ipv6_peer_is_its_slash_64() {
        let k = keys(1);
        let a = k.peer_ref(ip("2001:db8:1:2::1"));
        assert_eq!(a, k.peer_ref(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(a, k.peer_ref(ip("2001:db8:1:3::1")));
    }
}
