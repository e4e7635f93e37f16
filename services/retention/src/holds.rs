//! Legal holds: the one place every destructive path (sweeps, DSR erasure, admin deletes)
//! asks whether a subject's data may go.

use sqlx::PgConnection;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};

/// An active hold that blocks destruction of a subject's data.
#[derive(Debug, Clone)]
pub struct BlockingHold {
    pub hold_id: String,
    /// Empty for a tenant-wide hold.
    pub subject_ref: String,
    pub reason: String,
}

/// The first active hold over `subject` (or over the whole tenant), if any.
pub async fn blocking_hold(
    _conn: &mut PgConnection,
    _tenant: TenantId,
    _subject: &SubjectRef,
) -> Result<Option<BlockingHold>, ServiceError> {
    // Filled in by the legal-holds work; until then nothing is held.
    Ok(None)
}
