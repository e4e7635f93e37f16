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
    /// A custom regular-expression recognizer is refused: its pattern is too long,
    /// does not compile or compiles too large, or its context words exceed the limits.
    #[error("custom regex recognizer for {entity}: {reason}")]
    BadPattern {
        /// The custom entity type.
        entity: String,
        /// What is wrong, starting with the field (`pattern`, `context`).
        reason: String,
    },
    /// A custom word list is empty, too long or cannot be compiled.
    #[error(
        "custom word list for {0} is empty, invalid or too large (at most {max_words} \
         words of at most {max_chars} characters)",
        max_words = crate::custom::MAX_WORDS,
        max_chars = crate::custom::MAX_WORD_CHARS
    )]
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
