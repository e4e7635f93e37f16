//! Master keys: the [`KeyProvider`] trait and the local, config-backed provider.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{CryptoError, KeyBytes, WrapContext, WrappedKey, unwrap_key, wrap_key};

/// A key wrapped by a master key, with the master version that wrapped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterWrappedKey {
    /// Master key version used; store it next to the wrapped bytes.
    pub master_version: u32,
    /// The wrapped key.
    pub wrapped: WrappedKey,
}

/// Holds the master keys that wrap tenant KEKs.
///
/// Shaped like a remote KMS (cloud KMS, HashiCorp Vault transit): the master keys never
/// leave the provider, callers hand in a key to wrap and get one back on unwrap. New
/// wraps always use the current version; older versions stay usable for unwrap until
/// every key has been rewrapped.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    /// The master version new wraps use.
    async fn current_version(&self) -> Result<u32, CryptoError>;

    /// Every master version that can still unwrap, ascending.
    async fn versions(&self) -> Result<Vec<u32>, CryptoError>;

    /// Wraps `key` under the current master version, bound to `context`.
    async fn wrap(
        &self,
        context: &WrapContext,
        key: &KeyBytes,
    ) -> Result<MasterWrappedKey, CryptoError>;

    /// Unwraps a key with the master version recorded in `wrapped`.
    async fn unwrap(
        &self,
        context: &WrapContext,
        wrapped: &MasterWrappedKey,
    ) -> Result<KeyBytes, CryptoError>;

    /// Re-wraps a key under the current master version (rotation). Remote providers
    /// with a native rewrap can override this so the key never leaves them.
    async fn rewrap(
        &self,
        context: &WrapContext,
        wrapped: &MasterWrappedKey,
    ) -> Result<MasterWrappedKey, CryptoError> {
        let key = self.unwrap(context, wrapped).await?;
        self.wrap(context, &key).await
    }
}

/// Master keys from configuration: a map from version (>= 1) to a 32-byte key. The
/// highest version is current.
#[derive(Clone)]
pub struct LocalKeyProvider {
    keys: BTreeMap<u32, KeyBytes>,
    current: u32,
}

impl LocalKeyProvider {
    /// A provider over `keys`; fails if there is none or a version is 0.
    pub fn new(keys: BTreeMap<u32, KeyBytes>) -> Result<Self, CryptoError> {
        if keys.contains_key(&0) {
            return Err(CryptoError::KeyEntry {
                entry: "version 0".into(),
                reason: "versions start at 1",
            });
        }
        let current = *keys.keys().next_back().ok_or(CryptoError::NoMasterKey)?;
        Ok(Self { keys, current })
    }

    /// A provider with a single key, version 1, given as base64.
    pub fn from_single_base64(encoded: &str) -> Result<Self, CryptoError> {
        let key = KeyBytes::from_base64(encoded).map_err(|err| CryptoError::KeyEntry {
            entry: "version 1".into(),
            reason: key_reason(&err),
        })?;
        Self::new(BTreeMap::from([(1, key)]))
    }

    /// A provider from config pairs `version -> base64 key` (e.g. a TOML table, whose
    /// keys are strings).
    pub fn from_base64_map<I, V, K>(entries: I) -> Result<Self, CryptoError>
    where
        I: IntoIterator<Item = (V, K)>,
        V: fmt::Display,
        K: AsRef<str>,
    {
        let mut keys = BTreeMap::new();
        for (version, encoded) in entries {
            let entry = || format!("version {version}");
            let number =
                parse_version(&version.to_string()).map_err(|reason| CryptoError::KeyEntry {
                    entry: entry(),
                    reason,
                })?;
            let key =
                KeyBytes::from_base64(encoded.as_ref()).map_err(|err| CryptoError::KeyEntry {
                    entry: entry(),
                    reason: key_reason(&err),
                })?;
            if keys.insert(number, key).is_some() {
                return Err(CryptoError::KeyEntry {
                    entry: entry(),
                    reason: "duplicate version",
                });
            }
        }
        Self::new(keys)
    }

    /// A provider from a key file (see [`parse_key_file`]).
    pub fn from_key_file(path: &Path) -> Result<Self, CryptoError> {
        let contents = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CryptoError::KeyFile {
                path: path.display().to_string(),
                source,
            }
        })?);
        Self::new(parse_key_file(&contents)?)
    }

    fn key(&self, version: u32) -> Result<&KeyBytes, CryptoError> {
        self.keys
            .get(&version)
            .ok_or(CryptoError::UnknownKeyVersion(version))
    }
}

impl fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

#[async_trait]
impl KeyProvider for LocalKeyProvider {
    async fn current_version(&self) -> Result<u32, CryptoError> {
        Ok(self.current)
    }

    async fn versions(&self) -> Result<Vec<u32>, CryptoError> {
        Ok(self.keys.keys().copied().collect())
    }

    async fn wrap(
        &self,
        context: &WrapContext,
        key: &KeyBytes,
    ) -> Result<MasterWrappedKey, CryptoError> {
        Ok(MasterWrappedKey {
            master_version: self.current,
            wrapped: wrap_key(self.key(self.current)?, context, key)?,
        })
    }

    async fn unwrap(
        &self,
        context: &WrapContext,
        wrapped: &MasterWrappedKey,
    ) -> Result<KeyBytes, CryptoError> {
        unwrap_key(self.key(wrapped.master_version)?, context, &wrapped.wrapped)
    }
}

/// Parses a master key file: one `version:base64key` per line; blank lines and lines
/// starting with `#` are ignored. Errors name the line, never its contents.
pub fn parse_key_file(contents: &str) -> Result<BTreeMap<u32, KeyBytes>, CryptoError> {
    let mut keys = BTreeMap::new();
    for (index, line) in contents.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason| CryptoError::KeyEntry {
            entry: format!("line {}", index + 1),
            reason,
        };
        let (version, encoded) = line
            .split_once(':')
            .ok_or_else(|| bad("expected version:base64key"))?;
        let version = parse_version(version.trim()).map_err(bad)?;
        let key = KeyBytes::from_base64(encoded).map_err(|err| bad(key_reason(&err)))?;
        if keys.insert(version, key).is_some() {
            return Err(bad("duplicate version"));
        }
    }
    Ok(keys)
}

fn parse_version(text: &str) -> Result<u32, &'static str> {
    match text.parse::<u32>() {
        Ok(0) => Err("versions start at 1"),
        Ok(version) => Ok(version),
        Err(_) => Err("version is not a positive integer"),
    }
}

fn key_reason(err: &CryptoError) -> &'static str {
    match err {
        CryptoError::KeyLength => "key is not 32 bytes",
        _ => "key is not valid base64",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::types::TenantId;

    fn b64(byte: u8) -> String {
        KeyBytes::from_array([byte; 32]).to_base64().to_string()
    }

    #[test]
    fn parses_key_file_and_names_bad_lines() {
        let file = format!("# master keys\n\n1:{}\n 2 : {} \n", b64(1), b64(2));
        let keys = parse_key_file(&file).unwrap();
        assert_eq!(keys.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(keys[&2], KeyBytes::from_array([2; 32]));

        let secret = b64(9);
        for (file, line, reason) in [
            (format!("1:{}\nnocolon", b64(1)), "line 2", "expected"),
            (format!("x:{secret}"), "line 1", "positive integer"),
            (format!("0:{secret}"), "line 1", "start at 1"),
            ("1:AAAA".to_string(), "line 1", "32 bytes"),
            (format!("1:{secret}\n1:{secret}"), "line 2", "duplicate"),
        ] {
            let message = parse_key_file(&file).unwrap_err().to_string();
            assert!(message.contains(line), "{message}");
            assert!(message.contains(reason), "{message}");
            assert!(!message.contains(&secret));
        }
    }

    #[test]
    fn from_base64_map_names_the_version() {
        let provider = LocalKeyProvider::from_base64_map([("1", b64(1)), ("7", b64(7))]).unwrap();
        assert_eq!(provider.current, 7);
        let err = LocalKeyProvider::from_base64_map([("3", "short")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid master key entry version 3: key is not valid base64"
        );
        assert!(matches!(
            LocalKeyProvider::new(BTreeMap::new()),
            Err(CryptoError::NoMasterKey)
        ));
    }

    #[tokio::test]
    async fn wraps_under_current_and_rewraps_after_rotation() {
        let old = LocalKeyProvider::from_base64_map([(1u32, b64(1))]).unwrap();
        let context = WrapContext::tenant_kek(TenantId::generate(), 1);
        let kek = KeyBytes::generate();
        let wrapped = old.wrap(&context, &kek).await.unwrap();
        assert_eq!(wrapped.master_version, 1);

        let rotated = LocalKeyProvider::from_base64_map([(1u32, b64(1)), (2, b64(2))]).unwrap();
        assert_eq!(rotated.current_version().await.unwrap(), 2);
        assert_eq!(rotated.versions().await.unwrap(), vec![1, 2]);
        assert_eq!(rotated.unwrap(&context, &wrapped).await.unwrap(), kek);
        let rewrapped = rotated.rewrap(&context, &wrapped).await.unwrap();
        assert_eq!(rewrapped.master_version, 2);
        assert_eq!(rotated.unwrap(&context, &rewrapped).await.unwrap(), kek);
        assert!(matches!(
            old.unwrap(&context, &rewrapped).await,
            Err(CryptoError::UnknownKeyVersion(2))
        ));
    }

    #[test]
    fn reads_key_file_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.keys");
        std::fs::write(&path, format!("1:{}\n", b64(5))).unwrap();
        let provider = LocalKeyProvider::from_key_file(&path).unwrap();
        assert_eq!(provider.current, 1);
        assert!(format!("{provider:?}").contains("versions"));
        let missing = LocalKeyProvider::from_key_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, CryptoError::KeyFile { .. }));
    }
}
