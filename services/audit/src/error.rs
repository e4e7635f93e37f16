//! Errors of the audit service's own work (writer, tree, heads, incidents).

use veil_core::error::ServiceError;
use veil_core::merkle::MerkleError;

/// What went wrong below the gRPC edge.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Postgres failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A tree computation failed (usually a node missing from the store).
    #[error("merkle tree: {0}")]
    Merkle(#[from] MerkleError),
    /// Writing an event to the outbox failed.
    #[error("outbox: {0}")]
    Events(#[from] veil_core::events::EventsError),
    /// Writing or reading the JSON Lines export failed.
    #[error("export: {0}")]
    Export(#[from] crate::export::ExportError),
    /// Stored state contradicts itself (a bug or tampering).
    #[error("inconsistent audit state: {0}")]
    Inconsistent(String),
}

impl From<AuditError> for ServiceError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::Db(db) => ServiceError::from(db),
            other => ServiceError::internal(other),
        }
    }
}

impl From<AuditError> for tonic::Status {
    fn from(error: AuditError) -> Self {
        ServiceError::from(error).into()
    }
}
