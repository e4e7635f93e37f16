//! Data-subject requests, deletion certificates and exports (owned by the DSR work).

use tonic::{Request, Response, Status};
use veil_proto::retention::v1::*;

use super::ExportStream;
use crate::state::Retention;

fn todo_rpc() -> Status {
    Status::unimplemented("not yet implemented")
}

pub async fn submit_request(
    _state: &Retention,
    _request: Request<SubmitRequestRequest>,
) -> Result<Response<SubmitRequestResponse>, Status> {
    Err(todo_rpc())
}

pub async fn verify_request(
    _state: &Retention,
    _request: Request<VerifyRequestRequest>,
) -> Result<Response<VerifyRequestResponse>, Status> {
    Err(todo_rpc())
}

pub async fn get_request(
    _state: &Retention,
    _request: Request<GetRequestRequest>,
) -> Result<Response<GetRequestResponse>, Status> {
    Err(todo_rpc())
}

pub async fn list_requests(
    _state: &Retention,
    _request: Request<ListRequestsRequest>,
) -> Result<Response<ListRequestsResponse>, Status> {
    Err(todo_rpc())
}

pub async fn extend_request(
    _state: &Retention,
    _request: Request<ExtendRequestRequest>,
) -> Result<Response<ExtendRequestResponse>, Status> {
    Err(todo_rpc())
}

pub async fn cancel_request(
    _state: &Retention,
    _request: Request<CancelRequestRequest>,
) -> Result<Response<CancelRequestResponse>, Status> {
    Err(todo_rpc())
}

pub async fn get_deletion_certificate(
    _state: &Retention,
    _request: Request<GetDeletionCertificateRequest>,
) -> Result<Response<GetDeletionCertificateResponse>, Status> {
    Err(todo_rpc())
}

pub async fn download_export(
    _state: &Retention,
    _request: Request<DownloadExportRequest>,
) -> Result<Response<ExportStream>, Status> {
    Err(todo_rpc())
}
