//! gRPC edge of the vault: `veil.vault.v1.VaultService`. Each RPC lives in the module
//! of its area; tenant and principal always come from the verified internal token.

mod keys;
mod purge;
mod records;
mod subject;
mod tokens;
mod validate;

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};
use veil_proto::vault::v1::vault_service_server::VaultService;
use veil_proto::vault::v1::{
    DeleteRecordRequest, DeleteRecordResponse, DetokenizeRequest, DetokenizeResponse,
    ExportSubjectRequest, ExportSubjectResponse, GetRecordRequest, GetRecordResponse,
    KeyStatusRequest, KeyStatusResponse, ListRecordsRequest, ListRecordsResponse, PurgeRequest,
    PurgeResponse, PutRecordRequest, PutRecordResponse, RotateMasterKeyRequest,
    RotateMasterKeyResponse, RotateTenantKeyRequest, RotateTenantKeyResponse, ShredSubjectRequest,
    ShredSubjectResponse, TokenizeRequest, TokenizeResponse,
};

pub use records::record_aad;
pub use tokens::{token_aad, token_string};

use crate::state::Vault;

/// Implementation of `veil.vault.v1.VaultService`.
pub struct VaultApi {
    vault: Arc<Vault>,
}

impl VaultApi {
    /// The API over the shared vault state.
    pub fn new(vault: Arc<Vault>) -> Self {
        Self { vault }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: crate::error::VaultResult<T>) -> Reply<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl VaultService for VaultApi {
    async fn put_record(&self, request: Request<PutRecordRequest>) -> Reply<PutRecordResponse> {
        reply(records::put(&self.vault, request).await)
    }

    async fn get_record(&self, request: Request<GetRecordRequest>) -> Reply<GetRecordResponse> {
        reply(records::get(&self.vault, request).await)
    }

    async fn delete_record(
        &self,
        request: Request<DeleteRecordRequest>,
    ) -> Reply<DeleteRecordResponse> {
        reply(records::delete(&self.vault, request).await)
    }

    async fn list_records(
        &self,
        request: Request<ListRecordsRequest>,
    ) -> Reply<ListRecordsResponse> {
        reply(records::list(&self.vault, request).await)
    }

    async fn tokenize(&self, request: Request<TokenizeRequest>) -> Reply<TokenizeResponse> {
        reply(tokens::tokenize(&self.vault, request).await)
    }

    async fn detokenize(&self, request: Request<DetokenizeRequest>) -> Reply<DetokenizeResponse> {
        reply(tokens::detokenize(&self.vault, request).await)
    }

    async fn shred_subject(
        &self,
        request: Request<ShredSubjectRequest>,
    ) -> Reply<ShredSubjectResponse> {
        reply(subject::shred(&self.vault, request).await)
    }

    async fn rotate_tenant_key(
        &self,
        request: Request<RotateTenantKeyRequest>,
    ) -> Reply<RotateTenantKeyResponse> {
        reply(keys::rotate_tenant(&self.vault, request).await)
    }

    async fn rotate_master_key(
        &self,
        request: Request<RotateMasterKeyRequest>,
    ) -> Reply<RotateMasterKeyResponse> {
        reply(keys::rotate_master(&self.vault, request).await)
    }

    async fn key_status(&self, request: Request<KeyStatusRequest>) -> Reply<KeyStatusResponse> {
        reply(keys::status(&self.vault, request).await)
    }

    async fn export_subject(
        &self,
        request: Request<ExportSubjectRequest>,
    ) -> Reply<BoxStream<ExportSubjectResponse>> {
        let receiver = subject::export(self.vault.clone(), request).await?;
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn purge(&self, request: Request<PurgeRequest>) -> Reply<PurgeResponse> {
        reply(purge::purge(&self.vault, request).await)
    }
}
