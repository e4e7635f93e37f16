//! Request rows as `veil.retention.v1.DataSubjectRequest`.

use sqlx::PgConnection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_proto::retention::v1::DataSubjectRequest;

use super::extensions;
use super::store::RequestRow;

/// RFC 3339 text of an instant, for messages.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The proto of `row` alone (no extensions or saga progress).
pub fn to_proto(row: &RequestRow) -> DataSubjectRequest {
    DataSubjectRequest {
        request_id: row.request_id.to_string(),
        request_type: row.request_type as i32,
        state: row.state as i32,
        subject_ref: row.subject_ref.to_string(),
        channel: row.channel,
        jurisdiction: row.jurisdiction as i32,
        locale: row.locale.clone(),
        purpose_keys: row.purpose_keys.clone(),
        received_at: Some(timestamp(row.received_at)),
        verified_at: row.verified_at.map(timestamp),
        due_at: Some(timestamp(row.due_at)),
        extensions: Vec::new(),
        completed_at: row.completed_at.map(timestamp),
        closing_reason: row.closing_reason.clone(),
        progress: Vec::new(),
        certificate_id: row.certificate_id.clone().unwrap_or_default(),
        export_ready: row.export_ready,
        overdue: row.overdue || (row.is_open() && row.due_at < OffsetDateTime::now_utc()),
        submitted_by: Some(row.submitted_by.clone()),
        correction_record_ids: row.correction_tokens.clone(),
    }
}

/// The full proto of `row`: with its extensions and the per-service saga progress.
pub async fn to_full_proto(
    conn: &mut PgConnection,
    row: &RequestRow,
) -> Result<DataSubjectRequest, ServiceError> {
    let mut proto = to_proto(row);
    proto.extensions = extensions::list(conn, row).await?;
    proto.progress = crate::saga::progress(conn, row).await?;
    Ok(proto)
}
