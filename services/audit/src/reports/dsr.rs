//! Data-subject requests: due dates, and whether each was met or missed.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::PgPool;
use veil_core::convert::from_timestamp;
use veil_proto::common::v1::{Jurisdiction, RequestState, RequestType};
use veil_proto::events::v1::event::Payload;

use super::{Csv, Report, ReportScope, rfc3339, scan};
use crate::error::AuditError;

#[derive(Default)]
struct Request {
    request_type: i32,
    jurisdiction: i32,
    received_at: Option<time::OffsetDateTime>,
    due_at: Option<time::OffsetDateTime>,
    state: i32,
    closed_at: Option<time::OffsetDateTime>,
    overdue_reported: bool,
}

fn closes(state: i32) -> bool {
    [
        RequestState::Completed as i32,
        RequestState::Rejected as i32,
        RequestState::Cancelled as i32,
    ]
    .contains(&state)
}

/// "met", "missed", "open" or "overdue", judged at `now`.
fn status(request: &Request, now: time::OffsetDateTime) -> &'static str {
    match (request.closed_at, request.due_at) {
        (Some(closed), Some(due)) if closed <= due => "met",
        (Some(_), Some(_)) => "missed",
        (Some(_), None) => "met",
        (None, Some(due)) if now > due || request.overdue_reported => "overdue",
        (None, _) => "open",
    }
}

pub(super) async fn build(pool: &PgPool, scope: ReportScope) -> Result<Report, AuditError> {
    let mut requests: BTreeMap<String, Request> = BTreeMap::new();
    let types = [
        "retention.request_received",
        "retention.request_state_changed",
        "retention.request_overdue",
    ];
    // Requests received in the period; their later steps are read to the end of the log.
    scan(
        pool,
        scope.tenant,
        &types,
        scope.from,
        None,
        |row, event| match event.payload {
            Some(Payload::RetentionRequestReceived(received)) => {
                if scope.until.is_some_and(|until| row.occurred_at >= until) {
                    return;
                }
                let request = requests.entry(received.request_id).or_default();
                request.request_type = received.request_type;
                request.jurisdiction = received.jurisdiction;
                request.received_at = Some(row.occurred_at);
                request.due_at = received.due_at.as_ref().and_then(from_timestamp);
                request.state = RequestState::Received as i32;
            }
            Some(Payload::RetentionRequestStateChanged(changed)) => {
                let Some(request) = requests.get_mut(&changed.request_id) else {
                    return;
                };
                request.state = changed.to_state;
                if let Some(due) = changed.due_at.as_ref().and_then(from_timestamp) {
                    request.due_at = Some(due);
                }
                if closes(changed.to_state) {
                    request.closed_at = Some(row.occurred_at);
                }
            }
            Some(Payload::RetentionRequestOverdue(overdue)) => {
                if let Some(request) = requests.get_mut(&overdue.request_id) {
                    request.overdue_reported = true;
                }
            }
            _ => {}
        },
    )
    .await?;
    let now = time::OffsetDateTime::now_utc();
    let mut csv = Csv {
        header: vec![
            "request_id",
            "request_type",
            "jurisdiction",
            "received_at",
            "due_at",
            "state",
            "closed_at",
            "status",
        ],
        rows: Vec::new(),
    };
    let mut list = Vec::new();
    let mut totals: BTreeMap<&'static str, i64> = BTreeMap::new();
    for (id, request) in &requests {
        let status = status(request, now);
        *totals.entry(status).or_default() += 1;
        let request_type = RequestType::try_from(request.request_type)
            .unwrap_or_default()
            .as_str_name();
        let jurisdiction = Jurisdiction::try_from(request.jurisdiction)
            .unwrap_or_default()
            .as_str_name();
        let state = RequestState::try_from(request.state)
            .unwrap_or_default()
            .as_str_name();
        let fmt = |at: Option<time::OffsetDateTime>| at.map(rfc3339).unwrap_or_default();
        csv.rows.push(vec![
            id.clone(),
            request_type.into(),
            jurisdiction.into(),
            fmt(request.received_at),
            fmt(request.due_at),
            state.into(),
            fmt(request.closed_at),
            status.into(),
        ]);
        list.push(json!({
            "request_id": id,
            "request_type": request_type,
            "jurisdiction": jurisdiction,
            "received_at": request.received_at.map(rfc3339),
            "due_at": request.due_at.map(rfc3339),
            "state": state,
            "closed_at": request.closed_at.map(rfc3339),
            "status": status,
        }));
    }
    Ok(Report {
        json: json!({"requests": list, "totals": totals}),
        csv: Some(csv),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn met_missed_open_and_overdue() {
        let now = datetime!(2025-03-01 0:00 UTC);
        let due = Some(datetime!(2025-02-01 0:00 UTC));
        let met = Request {
            due_at: due,
            closed_at: Some(datetime!(2025-01-20 0:00 UTC)),
            ..Request::default()
        };
        let missed = Request {
            due_at: due,
            closed_at: Some(datetime!(2025-02-02 0:00 UTC)),
            ..Request::default()
        };
        let overdue = Request {
            due_at: due,
            ..Request::default()
        };
        let open = Request {
            due_at: Some(datetime!(2025-04-01 0:00 UTC)),
            ..Request::default()
        };
        assert_eq!(status(&met, now), "met");
        assert_eq!(status(&missed, now), "missed");
        assert_eq!(status(&overdue, now), "overdue");
        assert_eq!(status(&open, now), "open");
    }
}
