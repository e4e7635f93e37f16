//! Key rotation: new tenant KEK and master versions, and the start-up reconciliation of
//! the configured master keys with the versions recorded in the database.
//!
//! A rotation only creates the new version and a rewrap job in one transaction; the
//! rewrap itself runs in the background ([`crate::rewrap`]), so reads and writes go on
//! undisturbed: rows record the version that wraps them and old versions stay
//! decrypt-only until nothing references them.

use veil_core::crypto::KeyBytes;
use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{KeyLevel, VaultKeyRotated};

use crate::error::{VaultError, VaultResult};
use crate::hierarchy::tenant_context;
use crate::master::MasterKeys;
use crate::state::{Vault, system_context};
use crate::store::keys as key_sql;
use crate::store::rotation::{self as sql, JobRow};

/// What a rotation created.
#[derive(Debug)]
pub struct Rotated {
    pub new_version: i32,
    pub previous_version: i32,
    pub master_version: i32,
    pub job: JobRow,
}

/// Creates the tenant's next KEK version and queues the rewrap of its subject keys.
pub async fn rotate_tenant(
    vault: &Vault,
    tenant: TenantId,
    context: &EventContext,
) -> VaultResult<Rotated> {
    vault.keys.ensure_tenant(&vault.pool, tenant).await?;
    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let master = vault.keys.lock_active_master(&mut tx).await?;
    let previous = sql::demote_active_kek(&mut tx, tenant.as_uuid())
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("tenant kek missing")))?;
    let new_version = previous + 1;
    let key = KeyBytes::generate();
    let version = u32::try_from(new_version).map_err(ServiceError::internal)?;
    let wrapped = vault
        .keys
        .master()
        .wrapping()
        .wrap(&tenant_context(tenant, key_sql::KEK, version), &key)
        .await
        .map_err(|e| VaultError::from_crypto("tenant key", e))?;
    let master_version = i32::try_from(wrapped.master_version).map_err(ServiceError::internal)?;
    debug_assert_eq!(wrapped.master_version, master);
    key_sql::insert_tenant_key(
        &mut *tx,
        tenant.as_uuid(),
        key_sql::KEK,
        new_version,
        master_version,
        wrapped.wrapped.as_bytes(),
    )
    .await?;
    let total = sql::count_stale_subject_keys(&mut *tx, tenant.as_uuid(), new_version).await?;
    let job = sql::create_job(
        &mut tx,
        sql::TENANT,
        Some(tenant.as_uuid()),
        new_version,
        previous,
        total,
    )
    .await?;
    vault
        .emit(
            &mut tx,
            context,
            rotated_event(KeyLevel::Tenant, &job, false),
        )
        .await?;
    tx.commit().await?;
    vault.notify_relay();
    vault.rewrap_wake.notify_one();
    Ok(Rotated {
        new_version,
        previous_version: previous,
        master_version,
        job,
    })
}

/// Switches to the next master version (see [`MasterKeys::next_version`]) and queues
/// the rewrap of every tenant key.
pub async fn rotate_master(
    vault: &Vault,
    requested: &str,
    context: &EventContext,
) -> VaultResult<Rotated> {
    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let previous = sql::demote_active_master(&mut tx).await?.ok_or_else(|| {
        ServiceError::Unavailable("a concurrent master rotation is in progress".into())
    })?;
    let previous_u32 = u32::try_from(previous).map_err(ServiceError::internal)?;
    let target = vault.keys.master().next_version(previous_u32, requested)?;
    let target = i32::try_from(target).map_err(ServiceError::internal)?;
    sql::insert_master(&mut tx, target, &MasterKeys::provider_key_id(target as u32)).await?;
    let total = sql::count_stale_tenant_keys(&mut *tx, target).await?;
    let job = sql::create_job(&mut tx, sql::MASTER, None, target, previous, total).await?;
    vault
        .emit(
            &mut tx,
            context,
            rotated_event(KeyLevel::Master, &job, false),
        )
        .await?;
    tx.commit().await?;
    // After the commit: a rolled-back rotation must not leave this replica wrapping
    // under a version the database does not know as active.
    vault.keys.master().activate(target as u32)?;
    vault.notify_relay();
    vault.rewrap_wake.notify_one();
    Ok(Rotated {
        new_version: target,
        previous_version: previous,
        master_version: 0,
        job,
    })
}

/// The `vault.key_rotated` payload for a job (started or completed).
pub fn rotated_event(level: KeyLevel, job: &JobRow, completed: bool) -> Payload {
    Payload::VaultKeyRotated(VaultKeyRotated {
        level: level as i32,
        new_version: job.target_version,
        previous_version: job.previous_version,
        rewrapped: job.done,
        completed,
    })
}

/// At start-up: records the first master version, checks that every version still in
/// use is configured, and rotates when the settings ask for a newer version.
pub async fn reconcile_master(vault: &Vault) -> anyhow::Result<()> {
    let master = vault.keys.master();
    let desired = master.desired_version();
    let active = match key_sql::active_master(&vault.pool).await? {
        Some(active) => u32::try_from(active)?,
        None => {
            let version = i32::try_from(desired)?;
            key_sql::insert_active_master(
                &vault.pool,
                version,
                &MasterKeys::provider_key_id(desired),
            )
            .await?;
            match key_sql::active_master(&vault.pool).await? {
                Some(active) => u32::try_from(active)?,
                None => anyhow::bail!("no active master key version after initialization"),
            }
        }
    };
    let missing = |version: u32| {
        anyhow::anyhow!(
            "invalid setting service.master_keys: version {version} wraps stored keys but is not configured"
        )
    };
    if !master.has_version(active) {
        return Err(missing(active));
    }
    for version in key_sql::master_versions_in_use(&vault.pool).await? {
        let version = u32::try_from(version)?;
        if !master.has_version(version) {
            return Err(missing(version));
        }
    }
    master.activate(active)?;
    if desired > active {
        let requested = MasterKeys::provider_key_id(desired);
        if let Err(error) = rotate_master(vault, &requested, &system_context(None)).await {
            // Another replica may have rotated at the same moment; only a database that
            // still lags behind the settings is a failure.
            let now = key_sql::active_master(&vault.pool).await?.unwrap_or(0);
            if i64::from(now) < i64::from(desired) {
                return Err(anyhow::Error::from(error).context("master key rotation at start-up"));
            }
            master.activate(u32::try_from(now)?)?;
        }
    }
    Ok(())
}
