//! Signed consent receipts: compact JWS (EdDSA) over the ISO/IEC TS 27560 JSON of the
//! records one grant or withdrawal created.

use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use veil_core::config::{AuthSettings, ConfigError};
use veil_core::crypto::jws::{self, JwsError, KeySet};
use veil_core::types::TenantId;
use veil_proto::common::v1::{CollectionMethod, Jurisdiction, LegalBasis};
use veil_proto::consent::v1::{ConsentEventType, ConsentState, RecipientKind};

use crate::domain::enum_label;
use crate::settings::ConsentSettings;
use crate::store::purposes::{ControllerRow, RecipientRow};
use crate::store::records::RecordRow;

/// JWS `typ` of receipts, so no other Veil token is ever accepted as one.
pub const RECEIPT_TYPE: &str = "veil-consent-receipt+jws";
/// `schemaVersion` written into every receipt.
pub const SCHEMA_VERSION: &str = "veil-consent-receipt/1 (ISO/IEC TS 27560:2023)";

/// The key that signs receipts and every key whose receipts still verify.
pub struct ReceiptKeys {
    signing: SigningKey,
    kid: String,
    trusted: KeySet,
    /// True when the internal-token key is used because no receipt key is configured.
    pub borrowed_auth_key: bool,
}

impl std::fmt::Debug for ReceiptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptKeys")
            .field("kid", &self.kid)
            .field("trusted", &self.trusted.len())
            .finish_non_exhaustive()
    }
}

impl ReceiptKeys {
    /// The configured receipt key, or (development) the internal-token key.
    pub fn from_settings(
        consent: &ConsentSettings,
        auth: &AuthSettings,
    ) -> Result<Self, ConfigError> {
        let seed = consent.receipt_signing_key.expose();
        let borrowed = seed.is_empty();
        let (signing, kid) = if borrowed {
            let key = veil_core::auth::signing_key_from_base64(auth.signing_key.expose())
                .map_err(|_| ConfigError::invalid("auth.signing_key", "is not usable"))?;
            (key, auth.key_id.clone())
        } else {
            let key = veil_core::auth::signing_key_from_base64(seed).map_err(|_| {
                ConfigError::invalid(
                    "service.receipt_signing_key",
                    "must be a base64 32-byte ed25519 seed",
                )
            })?;
            let kid = if consent.receipt_key_id.is_empty() {
                jws::jwk_thumbprint(&key.verifying_key())
            } else {
                consent.receipt_key_id.clone()
            };
            (key, kid)
        };
        let mut trusted = KeySet::new().with(kid.clone(), signing.verifying_key());
        for (retired, public) in &consent.retired_receipt_keys {
            let key = veil_core::auth::verifying_key_from_base64(public).map_err(|_| {
                ConfigError::invalid(
                    "service.retired_receipt_keys",
                    "must map key ids to base64 ed25519 public keys",
                )
            })?;
            if retired != &kid {
                trusted.insert(retired.clone(), key);
            }
        }
        Ok(Self {
            signing,
            kid,
            trusted,
            borrowed_auth_key: borrowed,
        })
    }

    /// Key id of new receipts.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs a receipt payload.
    pub fn sign(&self, payload: &Value) -> Result<String, JwsError> {
        jws::sign(&self.signing, &self.kid, RECEIPT_TYPE, payload)
    }

    /// Verifies a receipt and returns its payload.
    pub fn verify(&self, token: &str) -> Result<Value, JwsError> {
        jws::verify(token, RECEIPT_TYPE, &self.trusted)
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> String {
        self.trusted.to_jwks().to_string()
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3339 text of an instant (UTC).
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// ISO 8601 duration of a number of seconds.
pub fn iso_duration(secs: i64) -> String {
    format!("PT{secs}S")
}

/// Readable label of a legal basis.
pub fn basis_label(value: i32) -> String {
    let name = LegalBasis::try_from(value)
        .unwrap_or_default()
        .as_str_name();
    enum_label(name, "LEGAL_BASIS_")
}

/// Readable label of a collection method.
pub fn method_label(value: i32) -> String {
    let name = CollectionMethod::try_from(value)
        .unwrap_or_default()
        .as_str_name();
    enum_label(name, "COLLECTION_METHOD_")
}

/// Readable label of a jurisdiction.
pub fn jurisdiction_label(value: i32) -> String {
    let name = Jurisdiction::try_from(value)
        .unwrap_or_default()
        .as_str_name();
    enum_label(name, "JURISDICTION_")
}

/// Readable label of a consent event type.
pub fn event_type_label(value: i32) -> String {
    let name = ConsentEventType::try_from(value)
        .unwrap_or_default()
        .as_str_name();
    enum_label(name, "CONSENT_EVENT_TYPE_")
}

/// Readable label of a consent state.
pub fn state_label(value: i32) -> String {
    let name = ConsentState::try_from(value)
        .unwrap_or_default()
        .as_str_name();
    enum_label(name, "CONSENT_STATE_")
}

/// What a receipt covers.
pub struct ReceiptContent<'a> {
    pub receipt_id: Uuid,
    pub issued_at: OffsetDateTime,
    pub tenant: TenantId,
    pub subject_ref: &'a str,
    pub controller: &'a ControllerRow,
    pub records: &'a [RecordRow],
    pub recipients: &'a [RecipientRow],
}

/// The receipt JSON: the ISO/IEC TS 27560 record header, PII processing, party
/// identification and event sections for every record.
pub fn payload(content: &ReceiptContent<'_>) -> Value {
    let first = content.records.first();
    let notice = first.and_then(|r| r.notice_id).map(|id| {
        json!({
            "id": id.to_string(),
            "version": first.map(|r| r.notice_version).unwrap_or_default(),
            "sha256": first.map(|r| r.notice_sha256.clone()).unwrap_or_default(),
        })
    });
    let purposes: Vec<Value> = content
        .records
        .iter()
        .map(|r| {
            json!({
                "recordId": r.id.to_string(),
                "purpose": r.purpose_key,
                "purposeVersion": r.purpose_version,
                "lawfulBasis": basis_label(r.legal_basis),
                "piiInformation": r.pii_categories,
                "piiControllers": [content.tenant.to_string()],
                "recipients": r.recipient_keys,
                "collectionMethod": method_label(r.collection_method),
                "retentionPeriod": r.retention_secs.map(iso_duration),
                "jurisdiction": jurisdiction_label(r.jurisdiction),
                "withdrawalMethod": r.withdrawal_method,
            })
        })
        .collect();
    let events: Vec<Value> = content
        .records
        .iter()
        .map(|r| {
            json!({
                "recordId": r.id.to_string(),
                "eventTime": rfc3339(r.event_time),
                "eventType": event_type_label(r.event_type),
                "eventState": state_label(r.state),
                "validFrom": rfc3339(r.valid_from),
                "expiresAt": r.expires_at.map(rfc3339),
                "eventBy": r.recorded_by.as_ref().map(|a| a.0.clone()),
                "preferenceConflict": r.preference_conflict,
                "supersedes": r.supersedes_record_id.map(|id| id.to_string()),
            })
        })
        .collect();
    let mut parties = vec![json!({
        "partyId": content.tenant.to_string(),
        "partyName": content.controller.name,
        "partyContact": content.controller.contact,
        "partyType": "controller",
    })];
    parties.extend(content.recipients.iter().map(|r| {
        let kind = RecipientKind::try_from(r.kind)
            .unwrap_or_default()
            .as_str_name();
        json!({
            "partyId": r.key,
            "partyName": r.name,
            "partyType": enum_label(kind, "RECIPIENT_KIND_"),
            "country": r.country,
            "transferMechanism": r.transfer_mechanism,
            "dataSharingTerms": r.data_sharing_terms,
        })
    }));
    json!({
        "schemaVersion": SCHEMA_VERSION,
        "iss": "veil-consent",
        "receiptId": content.receipt_id.to_string(),
        "issuedAt": rfc3339(content.issued_at),
        "record": {
            "recordIds": content.records.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
            "piiPrincipalId": content.subject_ref,
        },
        "piiProcessing": {
            "language": first.map(|r| r.language.clone()).unwrap_or_default(),
            "privacyNotice": notice,
            "purposes": purposes,
        },
        "partyIdentification": parties,
        "event": events,
    })
}

/// Record ids a receipt payload names.
pub fn record_ids(payload: &Value) -> Vec<String> {
    payload
        .pointer("/record/recordIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: &str) -> (ConsentSettings, AuthSettings) {
        let consent = ConsentSettings {
            receipt_signing_key: veil_core::types::Personal::new(seed.to_string()),
            ..ConsentSettings::default()
        };
        let auth = AuthSettings {
            signing_key: veil_core::types::Personal::new(base64_key(7)),
            key_id: "internal".into(),
            ..AuthSettings::default()
        };
        (consent, auth)
    }

    fn base64_key(byte: u8) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    #[test]
    fn receipts_round_trip_and_reject_other_types() {
        let (consent, auth) = settings(&base64_key(1));
        let keys = ReceiptKeys::from_settings(&consent, &auth).expect("keys");
        assert!(!keys.borrowed_auth_key);
        let token = keys
            .sign(&json!({"record": {"recordIds": ["a"]}}))
            .expect("sign");
        let payload = keys.verify(&token).expect("verify");
        assert_eq!(record_ids(&payload), vec!["a".to_string()]);
        let other =
            jws::sign(&keys.signing, keys.kid(), "veil-internal+jwt", &json!({})).expect("sign");
        assert_eq!(keys.verify(&other), Err(JwsError::Type));
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert!(keys.verify(&tampered).is_err());
    }

    #[test]
    fn without_a_receipt_key_the_internal_key_signs() {
        let (consent, auth) = settings("");
        let keys = ReceiptKeys::from_settings(&consent, &auth).expect("keys");
        assert!(keys.borrowed_auth_key);
        assert_eq!(keys.kid(), "internal");
        assert!(keys.jwks().contains("\"kid\":\"internal\""));
    }

    #[test]
    fn retired_keys_still_verify() {
        let (old_consent, auth) = settings(&base64_key(2));
        let old = ReceiptKeys::from_settings(&old_consent, &auth).expect("old");
        let token = old.sign(&json!({})).expect("sign");
        let (mut consent, auth) = settings(&base64_key(3));
        consent.retired_receipt_keys.insert(
            old.kid().to_string(),
            veil_core::auth::verifying_key_to_base64(&old.signing.verifying_key()),
        );
        let new = ReceiptKeys::from_settings(&consent, &auth).expect("new");
        assert!(new.verify(&token).is_ok());
        assert_ne!(new.kid(), old.kid());
    }
}
