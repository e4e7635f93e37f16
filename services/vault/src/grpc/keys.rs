//! `RotateTenantKey`, `RotateMasterKey` and `KeyStatus`.

use tonic::Request;
use veil_core::convert::{now, timestamp};
use veil_core::types::Role;
use veil_proto::vault::v1::{
    KeyState, KeyStatusRequest, KeyStatusResponse, KeyVersion, RewrapProgress,
    RotateMasterKeyRequest, RotateMasterKeyResponse, RotateTenantKeyRequest,
    RotateTenantKeyResponse,
};

use super::validate as check;
use crate::error::VaultResult;
use crate::master::MasterKeys;
use crate::rotation::{self, Rotated};
use crate::state::{Vault, event_context};
use crate::store::keys::{self as key_sql, VersionRow};
use crate::store::rotation::{self as sql, JobRow};

fn progress(job: &JobRow) -> RewrapProgress {
    RewrapProgress {
        target_version: job.target_version,
        total: job.total,
        done: job.done,
        started_at: Some(timestamp(job.started_at)),
        finished_at: job.finished_at.map(timestamp),
    }
}

fn key_state(state: i16) -> KeyState {
    match state {
        key_sql::ACTIVE => KeyState::Active,
        key_sql::DECRYPT_ONLY => KeyState::DecryptOnly,
        key_sql::RETIRED => KeyState::Retired,
        _ => KeyState::Unspecified,
    }
}

fn version(row: VersionRow) -> KeyVersion {
    KeyVersion {
        version: row.version,
        state: key_state(row.state) as i32,
        provider_key_id: row.provider_key_id,
        wrapped_by_version: row.master_version,
        created_at: Some(timestamp(row.created_at)),
        retired_at: row.retired_at.map(timestamp),
    }
}

fn new_version(rotated: &Rotated, provider_key_id: String) -> KeyVersion {
    KeyVersion {
        version: rotated.new_version,
        state: KeyState::Active as i32,
        provider_key_id,
        wrapped_by_version: rotated.master_version,
        created_at: Some(now()),
        retired_at: None,
    }
}

/// A new KEK version for the caller's tenant; subject keys are rewrapped in the
/// background.
pub async fn rotate_tenant(
    vault: &Vault,
    request: Request<RotateTenantKeyRequest>,
) -> VaultResult<RotateTenantKeyResponse> {
    let (principal, tenant) = check::tenant_caller(&request, &[Role::Admin, Role::PrivacyOfficer])?;
    let context = event_context(&principal, Some(tenant), None);
    let rotated = rotation::rotate_tenant(vault, tenant, &context).await?;
    Ok(RotateTenantKeyResponse {
        new_version: Some(new_version(&rotated, String::new())),
        previous_version: rotated.previous_version,
        rewrap: Some(progress(&rotated.job)),
    })
}

/// Switches to a new master version; tenant keys are rewrapped in the background.
pub async fn rotate_master(
    vault: &Vault,
    request: Request<RotateMasterKeyRequest>,
) -> VaultResult<RotateMasterKeyResponse> {
    let principal = check::caller(&request, &[Role::PlatformAdmin])?.clone();
    let request = request.into_inner();
    let context = event_context(&principal, None, None);
    let rotated = rotation::rotate_master(vault, &request.provider_key_id, &context).await?;
    let provider_key_id = MasterKeys::provider_key_id(rotated.new_version as u32);
    Ok(RotateMasterKeyResponse {
        new_version: Some(new_version(&rotated, provider_key_id)),
        previous_version: rotated.previous_version,
        rewrap: Some(progress(&rotated.job)),
    })
}

/// Key versions and rewrap progress visible to the caller.
pub async fn status(
    vault: &Vault,
    request: Request<KeyStatusRequest>,
) -> VaultResult<KeyStatusResponse> {
    let principal = check::caller(
        &request,
        &[
            Role::Admin,
            Role::PrivacyOfficer,
            Role::Auditor,
            Role::PlatformAdmin,
        ],
    )?;
    let mut response = KeyStatusResponse::default();
    if principal.has_role(Role::PlatformAdmin) {
        response.master_versions = key_sql::master_versions(&vault.pool)
            .await?
            .into_iter()
            .map(version)
            .collect();
        response.master_rewrap = sql::latest_job(&vault.pool, sql::MASTER, None)
            .await?
            .as_ref()
            .map(progress);
    }
    if let Some(tenant) = principal.tenant {
        response.tenant_versions = key_sql::tenant_versions(&vault.pool, tenant.as_uuid())
            .await?
            .into_iter()
            .map(version)
            .collect();
        response.tenant_rewrap = sql::latest_job(&vault.pool, sql::TENANT, Some(tenant.as_uuid()))
            .await?
            .as_ref()
            .map(progress);
    }
    Ok(response)
}
