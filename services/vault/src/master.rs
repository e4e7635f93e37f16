//! Master keys: the configured versions behind the [`KeyProvider`] trait.
//!
//! The vault only ever calls the trait (wrap under the active version, unwrap with the
//! version recorded next to a wrapped key), so a cloud KMS or HashiCorp Vault transit
//! provider can replace the local one. The local provider is built from configuration:
//! versions above the active one are staged (configured but not yet used), which is
//! what `RotateMasterKey` switches to; the active version itself is recorded in the
//! database so every replica agrees on it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use veil_core::config::ConfigError;
use veil_core::crypto::{
    CryptoError, KeyBytes, KeyProvider, LocalKeyProvider, MasterWrappedKey, WrapContext,
    parse_key_file,
};
use veil_core::error::ServiceError;

use crate::error::{VaultError, VaultResult, invalid};
use crate::settings::VaultSettings;

const PROVIDER_ID_PREFIX: &str = "local:master-";

struct Providers {
    active: u32,
    /// Wraps under `active`.
    wrapping: Arc<dyn KeyProvider>,
    /// Unwraps under any configured version (a replica may lag behind a rotation).
    unwrapping: Arc<dyn KeyProvider>,
}

/// The configured master keys and the provider built over them.
pub struct MasterKeys {
    configured: RwLock<BTreeMap<u32, KeyBytes>>,
    key_file: Option<PathBuf>,
    desired: u32,
    providers: RwLock<Providers>,
}

fn provider_over(keys: BTreeMap<u32, KeyBytes>) -> VaultResult<Arc<dyn KeyProvider>> {
    let provider = LocalKeyProvider::new(keys).map_err(ServiceError::internal)?;
    Ok(Arc::new(provider))
}

impl MasterKeys {
    /// Reads the master keys from the settings; the version to start with is
    /// `current_master_version`, or the highest configured one.
    pub fn from_settings(settings: &VaultSettings) -> Result<Self, ConfigError> {
        let configured = settings.master_key_map()?;
        let highest = configured.keys().next_back().copied().unwrap_or(1);
        let desired = match settings.current_master_version {
            0 => highest,
            version => version,
        };
        let build = |keys: BTreeMap<u32, KeyBytes>| {
            provider_over(keys)
                .map_err(|_| ConfigError::invalid("service.master_keys", "unusable master keys"))
        };
        let providers = Providers {
            active: desired,
            wrapping: build(
                configured
                    .range(..=desired)
                    .map(|(v, k)| (*v, k.clone()))
                    .collect(),
            )?,
            unwrapping: build(configured.clone())?,
        };
        Ok(Self {
            configured: RwLock::new(configured),
            key_file: settings.master_key_file.clone(),
            desired,
            providers: RwLock::new(providers),
        })
    }

    fn configured(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, KeyBytes>> {
        self.configured
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn providers(&self) -> std::sync::RwLockReadGuard<'_, Providers> {
        self.providers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The version the settings ask for (what start-up rotates to if it is newer).
    pub fn desired_version(&self) -> u32 {
        self.desired
    }

    /// The version new wraps use on this replica.
    pub fn active_version(&self) -> u32 {
        self.providers().active
    }

    /// The provider that wraps under the active version.
    pub fn wrapping(&self) -> Arc<dyn KeyProvider> {
        self.providers().wrapping.clone()
    }

    /// The provider that unwraps under any configured version.
    pub fn unwrapping(&self) -> Arc<dyn KeyProvider> {
        self.providers().unwrapping.clone()
    }

    /// Whether `version` is configured.
    pub fn has_version(&self, version: u32) -> bool {
        self.configured().contains_key(&version)
    }

    /// Makes `version` the one new wraps use.
    pub fn activate(&self, version: u32) -> VaultResult<()> {
        if self.active_version() == version {
            return Ok(());
        }
        if !self.reload_for(version) {
            return Err(ServiceError::FailedPrecondition(format!(
                "master key version {version} is not configured in service.master_keys"
            ))
            .into());
        }
        self.rebuild(version)
    }

    fn rebuild(&self, active: u32) -> VaultResult<()> {
        let (wrapping, unwrapping) = {
            let configured = self.configured();
            (
                provider_over(
                    configured
                        .range(..=active)
                        .map(|(v, k)| (*v, k.clone()))
                        .collect(),
                )?,
                provider_over(configured.clone())?,
            )
        };
        let mut providers = self
            .providers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *providers = Providers {
            active,
            wrapping,
            unwrapping,
        };
        Ok(())
    }

    /// Whether `version` is configured, re-reading the key file first if it is not
    /// (another replica may have appended a generated key to it).
    pub fn reload_for(&self, version: u32) -> bool {
        if self.has_version(version) {
            return true;
        }
        let Some(path) = &self.key_file else {
            return false;
        };
        let Ok(contents) = std::fs::read_to_string(path).map(zeroize::Zeroizing::new) else {
            return false;
        };
        let Ok(keys) = parse_key_file(&contents) else {
            return false;
        };
        let found = {
            let mut configured = self
                .configured
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (v, key) in keys {
                configured.entry(v).or_insert(key);
            }
            configured.contains_key(&version)
        };
        found && self.rebuild(self.active_version()).is_ok()
    }

    /// Unwraps a tenant key under whichever configured version wrapped it.
    pub async fn unwrap(
        &self,
        context: &WrapContext,
        wrapped: &MasterWrappedKey,
    ) -> Result<KeyBytes, CryptoError> {
        match self.unwrapping().unwrap(context, wrapped).await {
            Err(CryptoError::UnknownKeyVersion(version)) if self.reload_for(version) => {
                self.unwrapping().unwrap(context, wrapped).await
            }
            other => other,
        }
    }

    /// The provider's id for a version, shown in `KeyStatus`.
    pub fn provider_key_id(version: u32) -> String {
        format!("{PROVIDER_ID_PREFIX}{version}")
    }

    /// The version to rotate to after `current`: the one `requested` names
    /// (`local:master-N`), else the next staged version, else (with a key file) a newly
    /// generated key appended to the file.
    pub fn next_version(&self, current: u32, requested: &str) -> VaultResult<u32> {
        if !requested.is_empty() {
            let version = requested
                .strip_prefix(PROVIDER_ID_PREFIX)
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or_else(|| invalid("provider_key_id", "must look like local:master-<n>"))?;
            if version <= current {
                return Err(invalid(
                    "provider_key_id",
                    format!("must name a version newer than the active {current}"),
                ));
            }
            if !self.has_version(version) {
                return Err(ServiceError::FailedPrecondition(format!(
                    "master key version {version} is not configured in service.master_keys"
                ))
                .into());
            }
            return Ok(version);
        }
        let staged = self
            .configured()
            .range(current + 1..)
            .next()
            .map(|(v, _)| *v);
        match staged {
            Some(version) => Ok(version),
            None => self.generate(current),
        }
    }

    /// Generates a key after every configured version and appends it to the key file.
    fn generate(&self, current: u32) -> VaultResult<u32> {
        let Some(path) = &self.key_file else {
            return Err(ServiceError::FailedPrecondition(
                "no staged master key newer than the active one; add one to \
                 service.master_keys or set service.master_key_file"
                    .into(),
            )
            .into());
        };
        let mut configured = self
            .configured
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = configured
            .keys()
            .next_back()
            .copied()
            .unwrap_or(current)
            .max(current)
            + 1;
        let key = KeyBytes::generate();
        let line = zeroize::Zeroizing::new(format!("{version}:{}\n", key.to_base64().as_str()));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| {
                VaultError::Service(ServiceError::internal(
                    anyhow::Error::new(e).context("append to service.master_key_file"),
                ))
            })?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                VaultError::Service(ServiceError::internal(
                    anyhow::Error::new(e).context("write service.master_key_file"),
                ))
            })?;
        configured.insert(version, key);
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use veil_core::types::{Personal, TenantId};

    fn settings(versions: &[u32], current: u32) -> VaultSettings {
        VaultSettings {
            master_keys: versions
                .iter()
                .map(|v| {
                    (
                        v.to_string(),
                        Personal::new(KeyBytes::generate().to_base64().to_string()),
                    )
                })
                .collect(),
            current_master_version: current,
            ..VaultSettings::default()
        }
    }

    #[tokio::test]
    async fn staged_versions_are_not_used_until_activated() {
        let keys = MasterKeys::from_settings(&settings(&[1, 2], 1)).unwrap();
        assert_eq!(keys.active_version(), 1);
        let context = WrapContext::tenant_kek(TenantId::generate(), 1);
        let kek = KeyBytes::generate();
        let wrapped = keys.wrapping().wrap(&context, &kek).await.unwrap();
        assert_eq!(wrapped.master_version, 1);
        assert_eq!(keys.next_version(1, "").unwrap(), 2);
        keys.activate(2).unwrap();
        let rewrapped = keys.wrapping().rewrap(&context, &wrapped).await.unwrap();
        assert_eq!(rewrapped.master_version, 2);
        assert_eq!(
            keys.unwrapping().unwrap(&context, &wrapped).await.unwrap(),
            kek
        );
        assert!(keys.activate(3).is_err());
    }

    #[test]
    fn next_version_checks_the_request_and_needs_a_key_file_to_generate() {
        let keys = MasterKeys::from_settings(&settings(&[1], 0)).unwrap();
        assert!(keys.next_version(1, "").is_err());
        assert!(keys.next_version(1, "local:master-1").is_err());
        assert!(keys.next_version(1, "kms:abc").is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        std::fs::write(
            &path,
            format!("1:{}\n", KeyBytes::generate().to_base64().as_str()),
        )
        .unwrap();
        let with_file = VaultSettings {
            master_key_file: Some(path.clone()),
            ..VaultSettings::default()
        };
        let keys = MasterKeys::from_settings(&with_file).unwrap();
        assert_eq!(keys.next_version(1, "").unwrap(), 2);
        assert!(keys.has_version(2));
        let reread = with_file.master_key_map().unwrap();
        assert_eq!(reread.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[tokio::test]
    async fn picks_up_keys_another_replica_appended_to_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        std::fs::write(
            &path,
            format!("1:{}\n", KeyBytes::generate().to_base64().as_str()),
        )
        .unwrap();
        let settings = VaultSettings {
            master_key_file: Some(path),
            ..VaultSettings::default()
        };
        let first = MasterKeys::from_settings(&settings).unwrap();
        let second = MasterKeys::from_settings(&settings).unwrap();
        let version = first.next_version(1, "").unwrap();
        first.activate(version).unwrap();
        let context = WrapContext::tenant_kek(TenantId::generate(), 1);
        let kek = KeyBytes::generate();
        let wrapped = first.wrapping().wrap(&context, &kek).await.unwrap();
        assert_eq!(wrapped.master_version, 2);
        assert!(!second.has_version(2));
        assert_eq!(second.unwrap(&context, &wrapped).await.unwrap(), kek);
        second.activate(2).unwrap();
        assert_eq!(second.active_version(), 2);
    }
}
