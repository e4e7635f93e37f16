//! The key hierarchy at work: master key -> tenant KEK (and token key) -> subject data
//! key, with unwrapped keys cached under a bound and a TTL.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use veil_core::crypto::{
    KeyBytes, MasterWrappedKey, WrapContext, WrappedKey, unwrap_key, wrap_key,
};
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};

use crate::cache::KeyCache;
use crate::error::{VaultError, VaultResult};
use crate::master::MasterKeys;
use crate::settings::VaultSettings;
use crate::store::keys::{self as sql, NewSubjectKey, SubjectKeyRow};

/// Version of a subject data key itself (bound into its wrapping context). A subject
/// gets a new key generation, with a new `key_id`, only after a shred.
pub const DATA_KEY_VERSION: u32 = 1;
/// Locking reads of the active key retried when a concurrent rotation hid it.
const LOCK_ATTEMPTS: u32 = 5;
/// The token key is never rotated: tokens must stay equal for equal values.
pub const TOKEN_KEY_VERSION: u32 = 1;

/// Unwraps and caches keys; creates tenant and subject keys on first use.
pub struct KeyHierarchy {
    master: Arc<MasterKeys>,
    // (tenant, purpose, version) -> unwrapped tenant key.
    tenant_keys: KeyCache<(TenantId, &'static str, u32), KeyBytes>,
    // key_id -> unwrapped subject data key.
    data_keys: KeyCache<Uuid, KeyBytes>,
    // (tenant, subject ref) -> key_id of the subject's data key, for Tokenize's one-
    // statement path (which checks it against the row; see `cached_subject_key`).
    subject_key_ids: KeyCache<(TenantId, String), Uuid>,
    // Tenants whose KEK and token key are known to exist.
    ready: KeyCache<TenantId, ()>,
}

fn version(value: i32) -> VaultResult<u32> {
    u32::try_from(value)
        .map_err(|_| ServiceError::internal(anyhow::anyhow!("negative key version")).into())
}

fn signed(value: u32) -> VaultResult<i32> {
    i32::try_from(value)
        .map_err(|_| ServiceError::internal(anyhow::anyhow!("key version overflow")).into())
}

impl KeyHierarchy {
    /// An empty hierarchy over `master`.
    pub fn new(master: Arc<MasterKeys>, settings: &VaultSettings) -> Self {
        let ttl = settings.cache_ttl();
        Self {
            master,
            tenant_keys: KeyCache::new(settings.tenant_key_cache_size, ttl),
            data_keys: KeyCache::new(settings.data_key_cache_size, ttl),
            subject_key_ids: KeyCache::new(settings.data_key_cache_size, ttl),
            ready: KeyCache::new(settings.tenant_key_cache_size, ttl),
        }
    }

    /// The master keys.
    pub fn master(&self) -> &Arc<MasterKeys> {
        &self.master
    }

    /// Creates the tenant's KEK and token key (version 1) if it has none yet.
    pub async fn ensure_tenant(&self, pool: &PgPool, tenant: TenantId) -> VaultResult<()> {
        if self.ready.get(&tenant).is_some() {
            return Ok(());
        }
        let present = sql::active_tenant_purposes(pool, tenant.as_uuid()).await?;
        for purpose in [sql::KEK, sql::TOKEN_KEY] {
            if present.iter().any(|p| p == purpose) {
                continue;
            }
            let mut tx = veil_core::db::begin(pool).await?;
            let master = self.lock_active_master(&mut tx).await?;
            let context = tenant_context(tenant, purpose, 1);
            let key = KeyBytes::generate();
            let wrapped = self
                .master
                .wrapping()
                .wrap(&context, &key)
                .await
                .map_err(|e| VaultError::from_crypto("tenant key", e))?;
            debug_assert_eq!(wrapped.master_version, master);
            // A concurrent creator may win; its key is then the one everyone uses.
            sql::insert_tenant_key(
                &mut *tx,
                tenant.as_uuid(),
                purpose,
                1,
                signed(wrapped.master_version)?,
                wrapped.wrapped.as_bytes(),
            )
            .await?;
            tx.commit().await?;
        }
        self.ready.insert(tenant, ());
        Ok(())
    }

    /// The active master version from the database, share-locked for the transaction,
    /// with this replica switched to it (another replica may have rotated).
    pub async fn lock_active_master(&self, tx: &mut PgConnection) -> VaultResult<u32> {
        let mut attempts = 0;
        let active = loop {
            // Under READ COMMITTED a row demoted by a concurrent rotation drops out of
            // the locking read while its successor is not yet in the statement's
            // snapshot; a new statement sees it.
            if let Some(active) = sql::active_master_locked(tx).await? {
                break active;
            }
            attempts += 1;
            if attempts == LOCK_ATTEMPTS {
                return Err(ServiceError::internal(anyhow::anyhow!("no active master key")).into());
            }
        };
        let active = version(active)?;
        self.master.activate(active)?;
        Ok(active)
    }

    /// The tenant's token key.
    pub async fn token_key(&self, pool: &PgPool, tenant: TenantId) -> VaultResult<KeyBytes> {
        let cache_key = (tenant, sql::TOKEN_KEY, TOKEN_KEY_VERSION);
        if let Some(key) = self.tenant_keys.get(&cache_key) {
            return Ok(key);
        }
        self.ensure_tenant(pool, tenant).await?;
        let row = sql::active_tenant_key(pool, tenant.as_uuid(), sql::TOKEN_KEY)
            .await?
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("tenant token key missing")))?;
        self.tenant_key(
            tenant,
            sql::TOKEN_KEY,
            row.version,
            row.master_version,
            &row.wrapped,
        )
        .await
    }

    /// Unwraps (or takes from the cache) a tenant key of `purpose` and `key_version`.
    pub async fn tenant_key(
        &self,
        tenant: TenantId,
        purpose: &'static str,
        key_version: i32,
        master_version: i32,
        wrapped: &[u8],
    ) -> VaultResult<KeyBytes> {
        let key_version = version(key_version)?;
        let cache_key = (tenant, purpose, key_version);
        if let Some(key) = self.tenant_keys.get(&cache_key) {
            return Ok(key);
        }
        let sealed = MasterWrappedKey {
            master_version: version(master_version)?,
            wrapped: WrappedKey::from_bytes(wrapped.to_vec()),
        };
        let key = self
            .master
            .unwrap(&tenant_context(tenant, purpose, key_version), &sealed)
            .await
            .map_err(|e| VaultError::from_crypto("wrapped tenant key", e))?;
        self.tenant_keys.insert(cache_key, key.clone());
        Ok(key)
    }

    /// The data key of a subject key row.
    pub async fn data_key(&self, tenant: TenantId, row: &SubjectKeyRow) -> VaultResult<KeyBytes> {
        if let Some(key) = self.data_keys.get(&row.key_id) {
            return Ok(key);
        }
        let kek = self
            .tenant_key(
                tenant,
                sql::KEK,
                row.kek_version,
                row.kek_master_version,
                &row.kek_wrapped,
            )
            .await?;
        let subject = parse_ref(&row.subject_ref)?;
        let key = unwrap_key(
            &kek,
            &WrapContext::subject_data_key(tenant, subject, DATA_KEY_VERSION),
            &WrappedKey::from_bytes(row.wrapped.clone()),
        )
        .map_err(|e| VaultError::from_crypto("wrapped data key", e))?;
        self.data_keys.insert(row.key_id, key.clone());
        Ok(key)
    }

    /// Creates data keys for `subjects` (which have none) under the tenant's active KEK,
    /// inside `tx`, and returns the rows it inserted: they stay this transaction's until
    /// it ends, as a key-share lock would keep them. Subjects that got a key
    /// concurrently are skipped; callers re-read those.
    pub async fn create_subject_keys(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        subjects: &[&SubjectRef],
        record_count: i64,
        since: time::OffsetDateTime,
    ) -> VaultResult<Vec<SubjectKeyRow>> {
        let mut attempts = 0;
        let kek_row = loop {
            // See `lock_active_master`: a concurrent rotation may hide the active row
            // from one statement.
            if let Some(row) = sql::active_kek_locked(tx, tenant.as_uuid()).await? {
                break row;
            }
            attempts += 1;
            if attempts == LOCK_ATTEMPTS {
                return Err(ServiceError::internal(anyhow::anyhow!("tenant kek missing")).into());
            }
        };
        let kek = self
            .tenant_key(
                tenant,
                sql::KEK,
                kek_row.version,
                kek_row.master_version,
                &kek_row.wrapped,
            )
            .await?;
        let mut made = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let key = KeyBytes::generate();
            let context =
                WrapContext::subject_data_key(tenant, (*subject).clone(), DATA_KEY_VERSION);
            let wrapped = wrap_key(&kek, &context, &key).map_err(ServiceError::internal)?;
            made.push((subject.as_str(), Uuid::now_v7(), key, wrapped));
        }
        let new_keys: Vec<NewSubjectKey<'_>> = made
            .iter()
            .map(|(subject_ref, key_id, _, wrapped)| NewSubjectKey {
                subject_ref,
                key_id: *key_id,
                kek_version: kek_row.version,
                wrapped: wrapped.as_bytes(),
                record_count,
            })
            .collect();
        let inserted: HashSet<String> =
            sql::insert_subject_keys(tx, tenant.as_uuid(), &new_keys, since)
                .await?
                .ok_or_else(crate::error::shredded_in_flight)?
                .into_iter()
                .collect();
        let mut rows = Vec::with_capacity(inserted.len());
        for (subject_ref, key_id, key, wrapped) in made {
            if !inserted.contains(subject_ref) {
                continue;
            }
            self.data_keys.insert(key_id, key);
            rows.push(SubjectKeyRow {
                subject_ref: subject_ref.to_string(),
                key_id,
                kek_version: kek_row.version,
                wrapped: wrapped.as_bytes().to_vec(),
                kek_master_version: kek_row.master_version,
                kek_wrapped: kek_row.wrapped.clone(),
            });
        }
        Ok(rows)
    }

    /// The subject's data key as this replica last saw it: its id and, when the key
    /// itself is still cached, the key. A hint only: whoever uses it must check under a
    /// lock that the subject's key row still has this id (a shred on another replica
    /// does not reach this cache).
    pub fn cached_subject_key(
        &self,
        tenant: TenantId,
        subject_ref: &str,
    ) -> Option<(Uuid, Option<KeyBytes>)> {
        let key_id = self
            .subject_key_ids
            .get(&(tenant, subject_ref.to_string()))?;
        Some((key_id, self.data_keys.get(&key_id)))
    }

    /// Remembers which data key the subject has (see [`Self::cached_subject_key`]).
    pub fn remember_subject_key(&self, tenant: TenantId, subject_ref: &str, key_id: Uuid) {
        self.subject_key_ids
            .insert((tenant, subject_ref.to_string()), key_id);
    }

    /// Forgets a destroyed data key on this replica (others never use theirs again
    /// either: every use re-reads the key row, which is gone).
    pub fn forget_data_key(&self, key_id: &Uuid) {
        self.data_keys.remove(key_id);
    }
}

/// The wrapping context of a tenant key.
pub fn tenant_context(tenant: TenantId, purpose: &str, key_version: u32) -> WrapContext {
    if purpose == sql::TOKEN_KEY {
        WrapContext {
            purpose: veil_core::crypto::KeyPurpose::TokenKey,
            ..WrapContext::tenant_kek(tenant, key_version)
        }
    } else {
        WrapContext::tenant_kek(tenant, key_version)
    }
}

/// A stored subject ref.
pub fn parse_ref(value: &str) -> VaultResult<SubjectRef> {
    value
        .parse()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("stored subject ref: {e}")).into())
}
