//! `GetReport`.

use tonic::{Request, Response, Status};
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_proto::audit::v1::{GetReportRequest, GetReportResponse, ReportFormat, ReportKind};

use super::AuditApi;
use super::scope::{READERS, tenant_scope, time_range};
use crate::reports::{self, ReportScope};
use crate::store::tree;

pub(super) async fn get_report(
    api: &AuditApi,
    request: Request<GetReportRequest>,
) -> Result<Response<GetReportResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(READERS)?;
    let tenant = tenant_scope(principal)?;
    let request = request.into_inner();
    let kind = match ReportKind::try_from(request.kind) {
        Ok(ReportKind::Unspecified) | Err(_) => {
            return Err(ServiceError::invalid("kind", "a report kind is required").into());
        }
        Ok(kind) => kind,
    };
    let format = ReportFormat::try_from(request.format)
        .map_err(|_| ServiceError::invalid("format", "unknown format"))?;
    let (from, until) = time_range(request.period.as_ref(), "period")?;
    // Read first: the report covers at least the entries of this size.
    let tree_size = tree::size(&api.pool).await.map_err(ServiceError::from)?;
    let report = reports::build(
        &api.pool,
        kind,
        ReportScope {
            tenant,
            from,
            until,
        },
    )
    .await?;
    let (content_type, content) = match format {
        ReportFormat::Csv => match report.csv {
            Some(csv) => ("text/csv", csv.render().into_bytes()),
            None => {
                return Err(ServiceError::invalid("format", "this report has no CSV form").into());
            }
        },
        ReportFormat::Json | ReportFormat::Unspecified => (
            "application/json",
            serde_json::to_vec_pretty(&report.json).map_err(ServiceError::internal)?,
        ),
    };
    Ok(Response::new(GetReportResponse {
        kind: kind as i32,
        content_type: content_type.into(),
        content,
        generated_at: Some(veil_core::convert::now()),
        tree_size,
    }))
}
