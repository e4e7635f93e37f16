//! The background rewrap after a rotation: batches of keys, each in a short transaction
//! that locks only the rows it rewraps (`FOR NO KEY UPDATE SKIP LOCKED`), so writers
//! never wait for more than one batch and readers never wait at all. Several replicas
//! can work on one job side by side.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use veil_core::crypto::{MasterWrappedKey, WrapContext, WrappedKey, unwrap_key, wrap_key};
use veil_core::error::{ErrorChain, ServiceError};
use veil_core::types::TenantId;
use veil_proto::events::v1::KeyLevel;

use crate::error::{VaultError, VaultResult};
use crate::hierarchy::{DATA_KEY_VERSION, parse_ref, tenant_context};
use crate::rotation::rotated_event;
use crate::state::{Vault, system_context};
use crate::store::keys as key_sql;
use crate::store::rotation::{self as sql, JobRow};

/// What one step of a job achieved.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Keys were rewrapped or the job finished: run again right away.
    Progress,
    /// Only rows locked by writers are left: try again later.
    Blocked,
}

/// Runs rewrap jobs until `shutdown`.
pub async fn run(vault: Arc<Vault>, shutdown: CancellationToken) {
    let poll = Duration::from_millis(vault.settings.rewrap_poll_ms);
    loop {
        let progressed = match step_all(&vault).await {
            Ok(progressed) => progressed,
            Err(error) => {
                let status = tonic::Status::from(error);
                tracing::warn!(error = %ErrorChain(&status), "rewrap step failed");
                false
            }
        };
        if progressed {
            if shutdown.is_cancelled() {
                return;
            }
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = vault.rewrap_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One step of every open job; true if any made progress.
async fn step_all(vault: &Vault) -> VaultResult<bool> {
    let mut progressed = false;
    for job in sql::open_jobs(&vault.pool).await? {
        let step = match job.level {
            sql::MASTER => master_step(vault, &job).await?,
            _ => tenant_step(vault, &job).await?,
        };
        progressed |= step == Step::Progress;
    }
    Ok(progressed)
}

async fn tenant_step(vault: &Vault, job: &JobRow) -> VaultResult<Step> {
    let tenant_uuid = job
        .tenant_id
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("tenant job without tenant")))?;
    let tenant = TenantId::from_uuid(tenant_uuid);
    let limit = i64::from(vault.settings.rewrap_batch_size);
    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let rows =
        sql::lock_stale_subject_keys(&mut tx, tenant_uuid, job.target_version, limit).await?;
    if rows.is_empty() {
        let left = sql::count_stale_subject_keys(&mut *tx, tenant_uuid, job.target_version).await?;
        if left > 0 {
            return Ok(Step::Blocked);
        }
        if let Some(finished) = sql::finish_job(&mut tx, job.id).await? {
            sql::retire_tenant_keks(&mut tx, tenant_uuid, job.target_version).await?;
            vault
                .emit(
                    &mut tx,
                    &system_context(Some(tenant)),
                    rotated_event(KeyLevel::Tenant, &finished, true),
                )
                .await?;
        }
        tx.commit().await?;
        vault.notify_relay();
        return Ok(Step::Progress);
    }
    let target = tenant_kek(vault, tenant, job.target_version).await?;
    let mut subject_refs = Vec::with_capacity(rows.len());
    let mut wrapped = Vec::with_capacity(rows.len());
    for row in rows {
        let old = vault
            .keys
            .tenant_key(
                tenant,
                key_sql::KEK,
                row.kek_version,
                row.kek_master_version,
                &row.kek_wrapped,
            )
            .await?;
        let context =
            WrapContext::subject_data_key(tenant, parse_ref(&row.subject_ref)?, DATA_KEY_VERSION);
        let data_key = unwrap_key(&old, &context, &WrappedKey::from_bytes(row.wrapped))
            .map_err(|e| VaultError::from_crypto("wrapped data key", e))?;
        let rewrapped = wrap_key(&target, &context, &data_key).map_err(ServiceError::internal)?;
        subject_refs.push(row.subject_ref);
        wrapped.push(rewrapped.into_bytes());
    }
    sql::set_subject_wraps(
        &mut tx,
        tenant_uuid,
        job.target_version,
        &subject_refs,
        &wrapped,
    )
    .await?;
    sql::add_done(&mut tx, job.id, subject_refs.len() as i64).await?;
    tx.commit().await?;
    Ok(Step::Progress)
}

/// The unwrapped KEK of `version` (the rewrap target).
async fn tenant_kek(
    vault: &Vault,
    tenant: TenantId,
    version: i32,
) -> VaultResult<veil_core::crypto::KeyBytes> {
    let versions = key_sql::tenant_key_version(&vault.pool, tenant.as_uuid(), version)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("rewrap target kek missing")))?;
    vault
        .keys
        .tenant_key(
            tenant,
            key_sql::KEK,
            versions.version,
            versions.master_version,
            &versions.wrapped,
        )
        .await
}

async fn master_step(vault: &Vault, job: &JobRow) -> VaultResult<Step> {
    let limit = i64::from(vault.settings.rewrap_batch_size);
    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let active = vault.keys.lock_active_master(&mut tx).await?;
    if i64::from(active) != i64::from(job.target_version) {
        // A newer rotation closed this job; its own job takes over.
        return Ok(Step::Blocked);
    }
    let rows = sql::lock_stale_tenant_keys(&mut tx, job.target_version, limit).await?;
    if rows.is_empty() {
        let left = sql::count_stale_tenant_keys(&mut *tx, job.target_version).await?;
        if left > 0 {
            return Ok(Step::Blocked);
        }
        if let Some(finished) = sql::finish_job(&mut tx, job.id).await? {
            sql::retire_masters(&mut tx, job.target_version).await?;
            vault
                .emit(
                    &mut tx,
                    &system_context(None),
                    rotated_event(KeyLevel::Master, &finished, true),
                )
                .await?;
        }
        tx.commit().await?;
        vault.notify_relay();
        return Ok(Step::Progress);
    }
    let provider = vault.keys.master().wrapping();
    let count = rows.len() as i64;
    for row in rows {
        let key_version = u32::try_from(row.version).map_err(ServiceError::internal)?;
        let master_version = u32::try_from(row.master_version).map_err(ServiceError::internal)?;
        let purpose = if row.purpose == key_sql::TOKEN_KEY {
            key_sql::TOKEN_KEY
        } else {
            key_sql::KEK
        };
        let context = tenant_context(TenantId::from_uuid(row.tenant_id), purpose, key_version);
        let current = MasterWrappedKey {
            master_version,
            wrapped: WrappedKey::from_bytes(row.wrapped.clone()),
        };
        // Unwrap with the provider that knows every configured version, wrap under the
        // active one.
        let key = vault
            .keys
            .master()
            .unwrap(&context, &current)
            .await
            .map_err(|e| VaultError::from_crypto("wrapped tenant key", e))?;
        let rewrapped = provider
            .wrap(&context, &key)
            .await
            .map_err(|e| VaultError::from_crypto("tenant key", e))?;
        sql::set_tenant_wrap(
            &mut tx,
            &row,
            job.target_version,
            rewrapped.wrapped.as_bytes(),
        )
        .await?;
    }
    sql::add_done(&mut tx, job.id, count).await?;
    tx.commit().await?;
    Ok(Step::Progress)
}
