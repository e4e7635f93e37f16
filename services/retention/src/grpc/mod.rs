//! `veil.retention.v1.RetentionService`: each RPC delegates to the module that owns it —
//! [`policies`] (policies, legal holds, sweeps) and [`requests`] (data-subject requests,
//! certificates, exports).

mod policies;
mod requests;

use std::sync::Arc;

use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};
use veil_proto::retention::v1::retention_service_server::RetentionService;
use veil_proto::retention::v1::*;

use crate::state::Retention;

/// The gRPC face of the retention service.
pub struct RetentionApi {
    state: Arc<Retention>,
}

impl RetentionApi {
    pub fn new(state: Arc<Retention>) -> Self {
        Self { state }
    }
}

/// The stream `DownloadExport` answers with.
pub type ExportStream = BoxStream<DownloadExportResponse>;

#[tonic::async_trait]
impl RetentionService for RetentionApi {
    async fn set_policy(
        &self,
        request: Request<SetPolicyRequest>,
    ) -> Result<Response<SetPolicyResponse>, Status> {
        policies::set_policy(&self.state, request).await
    }

    async fn list_policies(
        &self,
        request: Request<ListPoliciesRequest>,
    ) -> Result<Response<ListPoliciesResponse>, Status> {
        policies::list_policies(&self.state, request).await
    }

    async fn delete_policy(
        &self,
        request: Request<DeletePolicyRequest>,
    ) -> Result<Response<DeletePolicyResponse>, Status> {
        policies::delete_policy(&self.state, request).await
    }

    async fn place_hold(
        &self,
        request: Request<PlaceHoldRequest>,
    ) -> Result<Response<PlaceHoldResponse>, Status> {
        policies::place_hold(&self.state, request).await
    }

    async fn release_hold(
        &self,
        request: Request<ReleaseHoldRequest>,
    ) -> Result<Response<ReleaseHoldResponse>, Status> {
        policies::release_hold(&self.state, request).await
    }

    async fn list_holds(
        &self,
        request: Request<ListHoldsRequest>,
    ) -> Result<Response<ListHoldsResponse>, Status> {
        policies::list_holds(&self.state, request).await
    }

    async fn run_sweep(
        &self,
        request: Request<RunSweepRequest>,
    ) -> Result<Response<RunSweepResponse>, Status> {
        policies::run_sweep(&self.state, request).await
    }

    async fn submit_request(
        &self,
        request: Request<SubmitRequestRequest>,
    ) -> Result<Response<SubmitRequestResponse>, Status> {
        requests::submit_request(&self.state, request).await
    }

    async fn verify_request(
        &self,
        request: Request<VerifyRequestRequest>,
    ) -> Result<Response<VerifyRequestResponse>, Status> {
        requests::verify_request(&self.state, request).await
    }

    async fn get_request(
        &self,
        request: Request<GetRequestRequest>,
    ) -> Result<Response<GetRequestResponse>, Status> {
        requests::get_request(&self.state, request).await
    }

    async fn list_requests(
        &self,
        request: Request<ListRequestsRequest>,
    ) -> Result<Response<ListRequestsResponse>, Status> {
        requests::list_requests(&self.state, request).await
    }

    async fn extend_request(
        &self,
        request: Request<ExtendRequestRequest>,
    ) -> Result<Response<ExtendRequestResponse>, Status> {
        requests::extend_request(&self.state, request).await
    }

    async fn cancel_request(
        &self,
        request: Request<CancelRequestRequest>,
    ) -> Result<Response<CancelRequestResponse>, Status> {
        requests::cancel_request(&self.state, request).await
    }

    async fn get_deletion_certificate(
        &self,
        request: Request<GetDeletionCertificateRequest>,
    ) -> Result<Response<GetDeletionCertificateResponse>, Status> {
        requests::get_deletion_certificate(&self.state, request).await
    }

    async fn download_export(
        &self,
        request: Request<DownloadExportRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        requests::download_export(&self.state, request).await
    }
}
