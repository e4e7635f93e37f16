//! Subject pseudonyms: the external subject id is personal data, so services outside the
//! vault keep `subject_ref = HMAC-SHA256(tenant key, subject id)` instead.

use crate::config::{ConfigError, PrivacySettings};
use crate::crypto::{KeyBytes, PSEUDONYM_KEY_LABEL, derive_key, subject_ref};
use crate::types::{SubjectRef, TenantId};

/// Longest external subject id accepted, in bytes.
pub const MAX_SUBJECT_ID_BYTES: usize = 256;

/// Derives per-tenant pseudonym keys from the deployment's root secret.
#[derive(Clone)]
pub struct SubjectKeys {
    root: KeyBytes,
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
        Ok(Self { root })
    }

    /// Keys from raw bytes (tests, `veil up` with generated secrets).
    pub fn from_key(root: KeyBytes) -> Self {
        Self { root }
    }

    /// The subject ref of `subject_id` within `tenant`.
    pub fn subject_ref(&self, tenant: &TenantId, subject_id: &str) -> SubjectRef {
        subject_ref(
            &derive_key(&self.root, tenant, PSEUDONYM_KEY_LABEL),
            subject_id,
        )
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
