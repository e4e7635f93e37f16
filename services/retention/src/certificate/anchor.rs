//! `GetDeletionCertificate`: the stored certificate plus where the audit log holds its
//! anchor (leaf index, inclusion proof against the latest signed tree head).

use tonic::{Code, Request, Response, Status};
use uuid::Uuid;
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::types::{Role, TenantId};
use veil_proto::audit::v1::get_entry_request::Key;
use veil_proto::audit::v1::{GetEntryRequest, GetInclusionProofRequest, GetSignedTreeHeadRequest};
use veil_proto::retention::v1::{
    DeletionCertificate, GetDeletionCertificateRequest, GetDeletionCertificateResponse,
};

use super::store::{self, CertificateRow};
use crate::state::Retention;

/// Roles that may read certificates (the proto's list).
const READERS: &[Role] = &[Role::Bot, Role::PrivacyOfficer, Role::Auditor];

/// The RPC body; `grpc::requests` delegates here.
pub async fn get_deletion_certificate(
    state: &Retention,
    request: Request<GetDeletionCertificateRequest>,
) -> Result<Response<GetDeletionCertificateResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(READERS)?;
    let tenant = principal.tenant()?;
    let request_id = parse_request_id(&request.get_ref().request_id)?;
    if !principal.has_role(Role::PrivacyOfficer) && !principal.has_role(Role::Auditor) {
        // A bot sees only the requests it submitted (as for GetRequest).
        let caller = principal.principal_id.to_string();
        let mut conn = state.pool.acquire().await.map_err(ServiceError::from)?;
        let own = crate::requests::store::load(&mut conn, tenant, request_id)
            .await?
            .is_some_and(|row| row.submitted_by.principal_id == caller);
        if !own {
            return Err(ServiceError::NotFound("deletion certificate".into()).into());
        }
    }
    let certificate = certificate_of(state, tenant, request_id).await?;
    Ok(Response::new(GetDeletionCertificateResponse {
        certificate: Some(certificate),
    }))
}

fn parse_request_id(text: &str) -> Result<Uuid, ServiceError> {
    if text.is_empty() {
        return Err(ServiceError::invalid("request_id", "is required"));
    }
    Uuid::parse_str(text).map_err(|_| ServiceError::invalid("request_id", "must be a UUID"))
}

/// The certificate of `request_id`, anchored when audit has appended its event.
pub async fn certificate_of(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<DeletionCertificate, ServiceError> {
    let mut conn = state.pool.acquire().await?;
    let row = store::by_request(&mut conn, tenant.as_uuid(), request_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("deletion certificate".into()))?;
    drop(conn);
    let mut certificate = super::to_proto(&row)?;
    match anchor(state, tenant, &row, &mut certificate).await {
        Ok(()) => {}
        // The certificate stands on its own; the anchor is added once audit can answer.
        Err(status) => tracing::warn!(
            code = ?status.code(),
            "audit anchor of a deletion certificate not available"
        ),
    }
    Ok(certificate)
}

/// Fills leaf index, proof and head; leaves `anchored` false while audit has not
/// appended the event.
async fn anchor(
    state: &Retention,
    tenant: TenantId,
    row: &CertificateRow,
    certificate: &mut DeletionCertificate,
) -> Result<(), Status> {
    let mut audit = state.peers.audit(tenant);
    let leaf_index = match row.audit_leaf_index.and_then(|i| u64::try_from(i).ok()) {
        Some(index) => index,
        None => {
            let entry = match audit
                .get_entry(GetEntryRequest {
                    key: Some(Key::EventId(row.anchor_event_id.to_string())),
                })
                .await
            {
                Ok(response) => response.into_inner().entry,
                Err(status) if status.code() == Code::NotFound => None,
                Err(status) => return Err(status),
            };
            let Some(entry) = entry else {
                return Ok(());
            };
            if let Ok(index) = i64::try_from(entry.leaf_index) {
                let mut conn = state
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| Status::from(ServiceError::from(e)))?;
                store::set_leaf_index(&mut conn, row.certificate_id, index)
                    .await
                    .map_err(|e| Status::from(ServiceError::from(e)))?;
            }
            entry.leaf_index
        }
    };
    certificate.audit_leaf_index = leaf_index;
    let head = audit
        .get_signed_tree_head(GetSignedTreeHeadRequest {
            tree_size: 0,
            sign_now: true,
        })
        .await?
        .into_inner()
        .tree_head;
    let Some(head) = head else {
        return Ok(());
    };
    if head.tree_size <= leaf_index {
        return Ok(());
    }
    let proof = audit
        .get_inclusion_proof(GetInclusionProofRequest {
            leaf_index,
            tree_size: head.tree_size,
        })
        .await?
        .into_inner()
        .proof;
    if proof.is_some() {
        certificate.inclusion_proof = proof;
        certificate.tree_head = Some(head);
        certificate.anchored = true;
    }
    Ok(())
}
