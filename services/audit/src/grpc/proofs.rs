//! Signed tree heads, inclusion and consistency proofs.

use std::sync::atomic::Ordering;

use tonic::{Request, Response, Status};
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::merkle::{NodeAddr, consistency_plan, inclusion_plan};
use veil_proto::audit::v1::{
    GetConsistencyProofRequest, GetConsistencyProofResponse, GetInclusionProofRequest,
    GetInclusionProofResponse, GetSignedTreeHeadRequest, GetSignedTreeHeadResponse, InclusionProof,
    SignedTreeHead,
};

use super::AuditApi;
use super::scope::{ENTRY_READERS, READERS};
use crate::error::AuditError;
use crate::node_cache::NodeCache;
use crate::store::tree::{self, HeadRow};

/// The wire form of a stored head.
pub(crate) fn head_to_proto(row: HeadRow) -> SignedTreeHead {
    SignedTreeHead {
        tree_size: u64::try_from(row.tree_size).unwrap_or_default(),
        root_hash: row.root_hash,
        signed_at: Some(veil_core::convert::timestamp(row.signed_at)),
        signed_payload: row.signed_payload,
        signature: row.signature,
        key_id: row.key_id,
        public_key: row.public_key,
    }
}

pub(super) async fn signed_tree_head(
    api: &AuditApi,
    request: Request<GetSignedTreeHeadRequest>,
) -> Result<Response<GetSignedTreeHeadResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(ENTRY_READERS)?;
    let request = request.into_inner();
    let head = if request.tree_size == 0 {
        if request.sign_now {
            api.heads.sign_current(true).await?;
        }
        tree::latest_head(&api.pool).await
    } else {
        tree::head_at(&api.pool, request.tree_size).await
    }
    .map_err(ServiceError::from)?
    .ok_or_else(|| ServiceError::NotFound("signed tree head".into()))?;
    Ok(Response::new(GetSignedTreeHeadResponse {
        tree_head: Some(head_to_proto(head)),
    }))
}

/// Whether a head of at least `size` was signed; proofs are served up to the latest.
/// Heads only grow, so the largest size seen answers without a query when it suffices.
async fn is_signed(api: &AuditApi, size: u64) -> Result<bool, Status> {
    if size <= api.signed_size.load(Ordering::Relaxed) {
        return Ok(true);
    }
    let latest = tree::latest_head(&api.pool)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::FailedPrecondition("no tree head signed yet".into()))?;
    let latest = u64::try_from(latest.tree_size).unwrap_or_default();
    api.signed_size.fetch_max(latest, Ordering::Relaxed);
    Ok(size <= latest)
}

pub(super) async fn inclusion(
    api: &AuditApi,
    request: Request<GetInclusionProofRequest>,
) -> Result<Response<GetInclusionProofResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(ENTRY_READERS)?;
    let request = request.into_inner();
    if request.tree_size <= request.leaf_index {
        return Err(ServiceError::invalid("tree_size", "must be greater than leaf_index").into());
    }
    if !is_signed(api, request.tree_size).await? {
        return Err(
            ServiceError::invalid("tree_size", "is beyond the latest signed tree head").into(),
        );
    }
    let proof =
        inclusion_proof(&api.pool, &api.cache, request.leaf_index, request.tree_size).await?;
    Ok(Response::new(GetInclusionProofResponse {
        proof: Some(proof),
    }))
}

/// The inclusion proof of `index` in the tree of `size`: the leaf and every node on its
/// path from the proof cache, the ones it lacks with one query.
pub async fn inclusion_proof(
    db: &sqlx::PgPool,
    cache: &NodeCache,
    index: u64,
    size: u64,
) -> Result<InclusionProof, AuditError> {
    let plan = inclusion_plan(index, size)?;
    let leaf = NodeAddr::new(0, index);
    let nodes = cache
        .fetch(db, plan.nodes().chain(std::iter::once(leaf)))
        .await?;
    let leaf_hash = nodes
        .get(&leaf)
        .ok_or(veil_core::merkle::MerkleError::MissingNode { level: 0, index })?;
    let path = plan.resolve(&nodes)?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        leaf_hash: leaf_hash.to_vec(),
        audit_path: path.iter().map(|hash| hash.to_vec()).collect(),
    })
}

pub(super) async fn consistency(
    api: &AuditApi,
    request: Request<GetConsistencyProofRequest>,
) -> Result<Response<GetConsistencyProofResponse>, Status> {
    let principal = Principal::from_request(&request)?;
    principal.require_any(READERS)?;
    let request = request.into_inner();
    let (first, second) = (request.first_tree_size, request.second_tree_size);
    if first == 0 {
        return Err(ServiceError::invalid("first_tree_size", "must be at least 1").into());
    }
    if second < first {
        return Err(
            ServiceError::invalid("second_tree_size", "must not be below first_tree_size").into(),
        );
    }
    if !is_signed(api, second).await? {
        return Err(ServiceError::invalid(
            "second_tree_size",
            "is beyond the latest signed tree head",
        )
        .into());
    }
    let plan = consistency_plan(first, second).map_err(AuditError::from)?;
    let nodes = api.cache.fetch(&api.pool, plan.nodes()).await?;
    let proof = plan.resolve(&nodes).map_err(AuditError::from)?;
    Ok(Response::new(GetConsistencyProofResponse {
        first_tree_size: first,
        second_tree_size: second,
        proof: proof.iter().map(|hash| hash.to_vec()).collect(),
    }))
}
