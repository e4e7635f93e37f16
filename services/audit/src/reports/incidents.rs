//! Incidents with their notification deadlines, and whether they were kept.

use serde_json::json;
use sqlx::PgPool;
use veil_proto::common::v1::{IncidentSeverity, IncidentState};

use super::{Csv, Report, ReportScope, rfc3339};
use crate::error::AuditError;
use crate::incidents::{self, ListFilter};

pub(super) async fn build(pool: &PgPool, scope: ReportScope) -> Result<Report, AuditError> {
    let rows = incidents::list(
        pool,
        &ListFilter {
            tenant: scope.tenant,
            opened_from: scope.from,
            opened_until: scope.until,
            limit: 100_000,
            ..ListFilter::default()
        },
    )
    .await?;
    let now = time::OffsetDateTime::now_utc();
    let mut csv = Csv {
        header: vec![
            "incident_id",
            "rule",
            "severity",
            "state",
            "opened_at",
            "notification_deadline",
            "notified_at",
            "deadline",
            "affected_subjects",
        ],
        rows: Vec::new(),
    };
    let mut list = Vec::new();
    for row in rows {
        // Met when notified in time; missed when notified late or still not notified
        // (nor closed) after the deadline; pending otherwise.
        let deadline = match row.notified_at {
            Some(at) if at <= row.notification_deadline => "met",
            Some(_) => "missed",
            None if row.closed_at.is_some() => "not_required",
            None if now > row.notification_deadline => "missed",
            None => "pending",
        };
        let severity = IncidentSeverity::try_from(i32::from(row.severity))
            .unwrap_or_default()
            .as_str_name();
        let state = IncidentState::try_from(i32::from(row.state))
            .unwrap_or_default()
            .as_str_name();
        csv.rows.push(vec![
            row.incident_id.to_string(),
            row.rule.clone(),
            severity.into(),
            state.into(),
            rfc3339(row.opened_at),
            rfc3339(row.notification_deadline),
            row.notified_at.map(rfc3339).unwrap_or_default(),
            deadline.into(),
            row.affected_subjects.to_string(),
        ]);
        list.push(json!({
            "incident_id": row.incident_id.to_string(),
            "rule": row.rule,
            "severity": severity,
            "state": state,
            "summary": row.summary,
            "opened_at": rfc3339(row.opened_at),
            "notification_deadline": rfc3339(row.notification_deadline),
            "acknowledged_at": row.acknowledged_at.map(rfc3339),
            "notified_at": row.notified_at.map(rfc3339),
            "closed_at": row.closed_at.map(rfc3339),
            "deadline": deadline,
            "affected_subjects": row.affected_subjects,
            "event_count": row.event_ids.len(),
        }));
    }
    Ok(Report {
        json: json!({"incidents": list}),
        csv: Some(csv),
    })
}
