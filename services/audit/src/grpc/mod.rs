//! gRPC edge of the audit service: each method checks roles and scope, converts the
//! request and delegates to the module that does the work.

mod entries;
mod export;
mod incidents;
mod proofs;
mod reports;
pub(crate) mod scope;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures::Stream;
use tonic::{Request, Response, Status};
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::subjects::SubjectKeys;
use veil_proto::audit::v1::audit_service_server::AuditService;
use veil_proto::audit::v1::{
    AccessLogRequest, AccessLogResponse, ExportRequest, ExportResponse, GetConsistencyProofRequest,
    GetConsistencyProofResponse, GetEntryRequest, GetEntryResponse, GetInclusionProofRequest,
    GetInclusionProofResponse, GetReportRequest, GetReportResponse, GetSignedTreeHeadRequest,
    GetSignedTreeHeadResponse, ListIncidentsRequest, ListIncidentsResponse, QueryRequest,
    QueryResponse, UpdateIncidentRequest, UpdateIncidentResponse,
};

use crate::heads::Heads;
use crate::node_cache::NodeCache;

pub(crate) use entries::entry_to_proto;
pub(crate) use proofs::head_to_proto;
pub use proofs::inclusion_proof;

/// Implementation of `veil.audit.v1.AuditService`.
pub struct AuditApi {
    pool: sqlx::PgPool,
    heads: Heads,
    subjects: SubjectKeys,
    events: EventsConfig,
    relay: RelayHandle,
    cache: Arc<NodeCache>,
    /// Largest signed tree size seen; heads only grow, so a proof up to it needs no
    /// query to check the size.
    signed_size: AtomicU64,
}

impl AuditApi {
    /// The API over the service's pool, head signer and subject keys.
    pub fn new(
        pool: sqlx::PgPool,
        heads: Heads,
        subjects: SubjectKeys,
        events: EventsConfig,
        relay: RelayHandle,
        cache: Arc<NodeCache>,
    ) -> Self {
        Self {
            pool,
            heads,
            subjects,
            events,
            relay,
            cache,
            signed_size: AtomicU64::new(0),
        }
    }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<ExportResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn get_signed_tree_head(
        &self,
        request: Request<GetSignedTreeHeadRequest>,
    ) -> Result<Response<GetSignedTreeHeadResponse>, Status> {
        proofs::signed_tree_head(self, request).await
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<GetInclusionProofResponse>, Status> {
        proofs::inclusion(self, request).await
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        proofs::consistency(self, request).await
    }

    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<GetEntryResponse>, Status> {
        entries::get_entry(self, request).await
    }

    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<QueryResponse>, Status> {
        entries::query(self, request).await
    }

    async fn access_log(
        &self,
        request: Request<AccessLogRequest>,
    ) -> Result<Response<AccessLogResponse>, Status> {
        entries::access_log(self, request).await
    }

    async fn get_report(
        &self,
        request: Request<GetReportRequest>,
    ) -> Result<Response<GetReportResponse>, Status> {
        reports::get_report(self, request).await
    }

    async fn list_incidents(
        &self,
        request: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        incidents::list(self, request).await
    }

    async fn update_incident(
        &self,
        request: Request<UpdateIncidentRequest>,
    ) -> Result<Response<UpdateIncidentResponse>, Status> {
        incidents::update(self, request).await
    }

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        export::export(self, request).await
    }
}
