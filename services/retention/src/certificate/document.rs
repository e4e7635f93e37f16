//! The deletion certificate's JSON document and its one canonical encoding.
//!
//! Canonical form: compact JSON, object members in lexicographic order (the structs
//! below declare their fields sorted and maps are `BTreeMap`s), integers only, UTF-8.
//! That is the RFC 8785 (JCS) form for these documents, so a verifier can re-encode
//! the parsed payload and compare bytes. The JWS payload is exactly these bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `type` of every certificate document.
pub const DOCUMENT_TYPE: &str = "veil-deletion-certificate";
/// `version` of the document layout described in docs/retention.md.
pub const DOCUMENT_VERSION: u32 = 1;
/// `issuer` of every certificate.
pub const ISSUER: &str = "veil-retention";

/// What the certificate says. Field order is the canonical (sorted) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateDocument {
    pub certificate_id: String,
    /// RFC 3339, UTC, microseconds.
    pub issued_at: String,
    pub issuer: String,
    /// Recipients told of the erasure (GDPR Art. 19), sorted by id.
    pub recipients: Vec<RecipientNotice>,
    pub request_id: String,
    /// One entry per service that erased, sorted by service name.
    pub services: Vec<ServiceErasure>,
    /// The subject's pseudonym (HMAC of its id); never the raw id.
    pub subject_ref: String,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
}

/// What one service erased. Field order is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceErasure {
    /// RFC 3339, UTC.
    pub completed_at: String,
    /// Items erased per kind, for example {"turns": 120}.
    pub counts: BTreeMap<String, i64>,
    /// "consent", "gateway" or "vault".
    pub service: String,
}

/// A recipient registered in consent that was told of the erasure. Field order is
/// canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientNotice {
    pub name: String,
    pub recipient_id: String,
}

impl CertificateDocument {
    /// The canonical JSON text.
    pub fn canonical_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// RFC 3339 text of an instant in UTC, truncated to microseconds (what Postgres keeps).
pub fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let micros = at
        .replace_nanosecond(at.nanosecond() / 1000 * 1000)
        .unwrap_or(at);
    micros.format(&Rfc3339).unwrap_or_default()
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> CertificateDocument {
        CertificateDocument {
            certificate_id: "c1".into(),
            issued_at: "2026-01-31T12:00:00.123456Z".into(),
            issuer: ISSUER.into(),
            recipients: vec![RecipientNotice {
                name: "CRM \"Ä\" <x>".into(),
                recipient_id: "crm".into(),
            }],
            request_id: "r1".into(),
            services: vec![ServiceErasure {
                completed_at: "2026-01-31T12:00:00Z".into(),
                counts: BTreeMap::from([("z".into(), 1), ("a".into(), 2)]),
                service: "gateway".into(),
            }],
            subject_ref: "ab".repeat(32),
            tenant_id: "t".into(),
            kind: DOCUMENT_TYPE.into(),
            version: DOCUMENT_VERSION,
        }
    }

    #[test]
    fn encoding_is_sorted_and_survives_a_reencode_of_the_parsed_value() {
        let json = sample().canonical_json().unwrap();
        // serde_json::Value sorts object members: re-encoding must not change a byte.
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), json);
        assert!(json.starts_with(r#"{"certificate_id":"c1","issued_at":"#));
        assert!(json.contains(r#""counts":{"a":2,"z":1}"#));
        assert!(json.ends_with(r#""type":"veil-deletion-certificate","version":1}"#));
        let back: CertificateDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn times_are_utc_with_microseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_706_702_400_123_456_789).unwrap();
        assert_eq!(rfc3339(at), "2024-01-31T12:00:00.123456Z");
    }
}
