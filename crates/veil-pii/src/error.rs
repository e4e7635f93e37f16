//! Errors of the PII engine. Messages never contain analyzed text or key material.

use thiserror::Error;

/// A tenant policy that cannot be used.
#[derive(Debug, Error, PartialEq)]
pub enum PolicyError {
    /// A score or threshold outside [0, 1].
    #[error("{field} must be within [0, 1]")]
    OutOfRange {
        /// The offending field.
        field: &'static str,
    },
    /// A custom recognizer's entity name is not `[A-Z][A-Z0-9_]*`.
    #[error("custom entity name {0:?} must be upper case letters, digits and underscores")]
    BadEntityName(String),
    /// A custom regular expression does not compile (or is too large).
    #[error("custom pattern for {entity} does not compile: {reason}")]
    BadPattern {
        /// The custom entity type.
        entity: String,
        /// The compiler's explanation.
        reason: String,
    },
    /// A custom word list is empty or cannot be compiled.
    #[error("custom word list for {0} is empty or invalid")]
    BadWordList(String),
    /// A phone region code is not an ISO 3166 alpha-2 code known to libphonenumber.
    #[error("unknown phone region {0:?}")]
    UnknownRegion(String),
}

/// Anonymization that cannot be carried out.
#[derive(Debug, Error, PartialEq)]
pub enum AnonymizeError {
    /// The operator needs a key the caller did not provide.
    #[error("operator {0} needs a tenant key")]
    MissingKey(&'static str),
    /// Encryption failed (never expected with a valid key).
    #[error("encryption failed")]
    Encryption,
}

/// A value that cannot be decrypted.
#[derive(Debug, Error, PartialEq)]
pub enum DecryptError {
    /// The token is not in the `ENC:` format.
    #[error("not an encrypted token")]
    Malformed,
    /// Wrong key, or the token was altered.
    #[error("token does not decrypt with this key")]
    Authentication,
}
