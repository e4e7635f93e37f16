//! The vault's error type: the shared [`ServiceError`] kinds plus data loss.

use veil_core::crypto::CryptoError;
use veil_core::error::ServiceError;

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// One of the shared kinds, mapped to its status by `veil-core`.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The caller was rejected by the internal-token checks (unauthenticated, missing
    /// role, no tenant); already a status.
    #[error("{}", .0.message())]
    Caller(#[from] tonic::Status),
    /// Stored ciphertext or a wrapped key failed authentication: tampered or corrupted
    /// data. DATA_LOSS, since retrying cannot help; `what` names the kind of data.
    #[error("{what} failed authentication: tampered or corrupted data")]
    Corrupt {
        /// For example "record ciphertext".
        what: &'static str,
    },
}

impl VaultError {
    /// Maps a failed open of stored data: authentication failures are data loss, anything
    /// else (a missing master version, a provider outage) keeps its own meaning.
    pub fn from_crypto(what: &'static str, error: CryptoError) -> Self {
        match error {
            CryptoError::Decrypt | CryptoError::Truncated | CryptoError::KeyLength => {
                Self::Corrupt { what }
            }
            CryptoError::Provider(_) => {
                Self::Service(ServiceError::Unavailable("key provider unavailable".into()))
            }
            other => Self::Service(ServiceError::internal(other)),
        }
    }
}

impl From<sqlx::Error> for VaultError {
    fn from(error: sqlx::Error) -> Self {
        Self::Service(error.into())
    }
}

impl From<VaultError> for tonic::Status {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Service(inner) => inner.into(),
            VaultError::Caller(status) => status,
            VaultError::Corrupt { .. } => {
                tracing::error!(error = %error, "stored ciphertext failed authentication");
                tonic::Status::data_loss(error.to_string())
            }
        }
    }
}

/// Result alias of the vault.
pub type VaultResult<T> = Result<T, VaultError>;

/// Shorthand for an INVALID_ARGUMENT naming `field`.
pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> VaultError {
    VaultError::Service(ServiceError::invalid(field, reason))
}

/// What a call gets that began before a shred of one of its subjects (a new data key
/// would put back what the shred destroyed).
pub fn shredded_in_flight() -> VaultError {
    ServiceError::FailedPrecondition(
        "a subject of this call was shredded after the call began; nothing was stored".into(),
    )
    .into()
}

/// Shorthand for a NOT_FOUND of `what`.
pub fn not_found(what: impl Into<String>) -> VaultError {
    VaultError::Service(ServiceError::NotFound(what.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let status: tonic::Status =
            VaultError::from_crypto("record ciphertext", CryptoError::Decrypt).into();
        assert_eq!(status.code(), tonic::Code::DataLoss);
        assert!(status.message().starts_with("record ciphertext"));
        let status: tonic::Status = not_found("record").into();
        assert_eq!(status.code(), tonic::Code::NotFound);
        let status: tonic::Status =
            VaultError::from_crypto("x", CryptoError::Provider("down".into())).into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
}
