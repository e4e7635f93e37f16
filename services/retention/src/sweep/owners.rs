//! One purge batch at the service that owns a category: the gateway, the vault and the
//! consent service over gRPC; exports and DSR records in retention's own schema (within
//! the caller's transaction, so the batch and its bookkeeping commit together).

use sqlx::PgConnection;
use tonic::Status;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::{DataCategory, PurgeCriteria, PurgeOutcome, VeilService};

use crate::state::Retention;

/// Longest error text kept per step; peers' messages name fields, never values.
const MAX_ERROR: usize = 300;

/// Why a batch failed, as shown in the sweep result.
pub fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if text.len() > MAX_ERROR {
        let mut end = MAX_ERROR;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// One batch at a remote owner (gateway, vault, consent).
pub async fn remote(
    state: &Retention,
    tenant: TenantId,
    service: VeilService,
    criteria: PurgeCriteria,
) -> Result<PurgeOutcome, Status> {
    let outcome = match service {
        VeilService::Gateway => {
            let request = veil_proto::gateway::v1::PurgeRequest {
                criteria: Some(criteria),
            };
            state
                .peers
                .gateway(tenant)
                .purge(request)
                .await?
                .into_inner()
                .outcome
        }
        VeilService::Vault => {
            let request = veil_proto::vault::v1::PurgeRequest {
                criteria: Some(criteria),
            };
            state
                .peers
                .vault(tenant)
                .purge(request)
                .await?
                .into_inner()
                .outcome
        }
        VeilService::Consent => {
            let request = veil_proto::consent::v1::PurgeRequest {
                criteria: Some(criteria),
            };
            state
                .peers
                .consent(tenant)
                .purge(request)
                .await?
                .into_inner()
                .outcome
        }
        _ => return Err(Status::internal("not a remote owner")),
    };
    outcome.ok_or_else(|| Status::internal("the service answered without an outcome"))
}

/// One batch of retention's own data.
pub async fn local(
    conn: &mut PgConnection,
    state: &Retention,
    tenant: TenantId,
    criteria: &PurgeCriteria,
) -> Result<PurgeOutcome, ServiceError> {
    match DataCategory::try_from(criteria.category) {
        Ok(DataCategory::Export) => crate::export::purge(conn, state, tenant, criteria).await,
        Ok(DataCategory::DsrRecord) => crate::requests::purge(conn, state, tenant, criteria).await,
        _ => Err(ServiceError::internal(anyhow::anyhow!(
            "category is not retention's own"
        ))),
    }
}

/// Audit entries stay: the Merkle log must not lose leaves and holds no raw personal
/// data, so the step is reported as kept with nothing handled.
pub fn audit_kept(dry_run: bool) -> PurgeOutcome {
    PurgeOutcome {
        counts: Default::default(),
        held_skipped: 0,
        more_remaining: false,
        dry_run,
    }
}
