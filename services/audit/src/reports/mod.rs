//! Compliance reports computed from the log (and the incident table), as JSON and,
//! where the report is a table, CSV.

mod consent;
mod dsr;
mod incidents;
mod processing;

use prost::Message;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use veil_proto::audit::v1::ReportKind;
use veil_proto::events::v1::Event;

use crate::error::AuditError;
use crate::store::{self, EntryFilter};

/// What a report covers.
#[derive(Debug, Clone, Copy)]
pub struct ReportScope {
    /// None: every tenant (platform administrators).
    pub tenant: Option<Uuid>,
    /// Start of the period (inclusive); None is the beginning of the log.
    pub from: Option<time::OffsetDateTime>,
    /// End of the period (exclusive); None is now.
    pub until: Option<time::OffsetDateTime>,
}

/// A computed report: the JSON document and, for tabular reports, its CSV rows.
#[derive(Debug, Clone)]
pub struct Report {
    /// The whole report.
    pub json: Value,
    /// Header and rows when the report is a table.
    pub csv: Option<Csv>,
}

/// A CSV table.
#[derive(Debug, Clone, Default)]
pub struct Csv {
    /// Column names.
    pub header: Vec<&'static str>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// RFC 4180 text: cells with commas, quotes or line breaks are quoted.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
            let rendered: Vec<String> = cells.map(escape).collect();
            out.push_str(&rendered.join(","));
            out.push_str("\r\n");
        };
        line(&mut self.header.iter().copied(), &mut out);
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str), &mut out);
        }
        out
    }
}

fn escape(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// Computes `kind` over `scope`.
pub async fn build(
    pool: &PgPool,
    kind: ReportKind,
    scope: ReportScope,
) -> Result<Report, AuditError> {
    let mut report = match kind {
        ReportKind::RecordsOfProcessing => processing::build(pool, scope).await?,
        ReportKind::DsrDeadlines => dsr::build(pool, scope).await?,
        ReportKind::ConsentSummary => consent::build(pool, scope).await?,
        ReportKind::Incidents | ReportKind::Unspecified => incidents::build(pool, scope).await?,
    };
    if let Value::Object(map) = &mut report.json {
        map.insert("report".into(), json!(report_name(kind)));
        map.insert(
            "tenant_id".into(),
            json!(scope.tenant.map(|t| t.to_string())),
        );
        map.insert(
            "period".into(),
            json!({"start": scope.from.map(rfc3339), "end": scope.until.map(rfc3339)}),
        );
    }
    Ok(report)
}

fn report_name(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::RecordsOfProcessing => "records_of_processing",
        ReportKind::DsrDeadlines => "dsr_deadlines",
        ReportKind::ConsentSummary => "consent_summary",
        ReportKind::Incidents | ReportKind::Unspecified => "incidents",
    }
}

/// An instant as RFC 3339.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Entries read per query while scanning.
const SCAN_PAGE: i64 = 5_000;

/// Calls `each` with every decoded event of `event_types` in the scope's tenant whose
/// time is in `[from, until)`, oldest first.
async fn scan(
    pool: &PgPool,
    tenant: Option<Uuid>,
    event_types: &[&str],
    from: Option<time::OffsetDateTime>,
    until: Option<time::OffsetDateTime>,
    mut each: impl FnMut(&store::EntryRow, Event),
) -> Result<(), AuditError> {
    let mut filter = EntryFilter {
        limit: SCAN_PAGE,
        ..scope_filter(tenant, event_types, from, until)
    };
    loop {
        let rows = store::query(pool, &filter).await?;
        for row in &rows {
            if let Ok(event) = Event::decode(row.envelope.as_slice()) {
                each(row, event);
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == SCAN_PAGE => filter.after = last.idx,
            _ => return Ok(()),
        }
    }
}

/// The entries of `event_types` in a tenant (None: every one) and period, from the start.
fn scope_filter(
    tenant: Option<Uuid>,
    event_types: &[&str],
    from: Option<time::OffsetDateTime>,
    until: Option<time::OffsetDateTime>,
) -> EntryFilter {
    EntryFilter {
        tenant,
        event_types: event_types.iter().map(|t| t.to_string()).collect(),
        occurred_from: from,
        occurred_until: until,
        after: -1,
        ..EntryFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let csv = Csv {
            header: vec!["a", "b"],
            rows: vec![
                vec!["x,y".into(), "say \"hi\"".into()],
                vec!["1".into(), "2".into()],
            ],
        };
        assert_eq!(csv.render(), "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n1,2\r\n");
    }
}
