//! Wrapping one key under another (data key under a tenant KEK, tenant KEK under a
//! master key), bound to the identity of the wrapped key.

use std::fmt;

use zeroize::Zeroizing;

use super::{Aad, CryptoError, KeyBytes, envelope};
use crate::types::{SubjectRef, TenantId};

const WRAP_DOMAIN: &str = "veil.wrap.v1";

/// What a wrapped key is for; part of the wrapping context so a key of one kind cannot
/// be unwrapped as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// A tenant's key-encryption key, wrapped by a master key.
    TenantKek,
    /// A subject's data key, wrapped by the tenant KEK.
    SubjectDataKey,
    /// A tenant's deterministic token key.
    TokenKey,
    /// A tenant's pseudonym key (for subject refs).
    PseudonymKey,
}

impl KeyPurpose {
    /// The stable name bound into the associated data and stored in databases.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyPurpose::TenantKek => "tenant_kek",
            KeyPurpose::SubjectDataKey => "subject_data_key",
            KeyPurpose::TokenKey => "token_key",
            KeyPurpose::PseudonymKey => "pseudonym_key",
        }
    }
}

/// The identity of a wrapped key: whose it is, what it is for and which version.
///
/// The wrapping key's version is not part of it, so a rewrap under a new KEK or master
/// version keeps the same context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapContext {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Kind of key.
    pub purpose: KeyPurpose,
    /// Owning subject, for per-subject keys.
    pub subject: Option<SubjectRef>,
    /// Version of the wrapped key itself.
    pub key_version: u32,
}

impl WrapContext {
    /// Context of a tenant KEK.
    pub fn tenant_kek(tenant: TenantId, key_version: u32) -> Self {
        Self {
            tenant,
            purpose: KeyPurpose::TenantKek,
            subject: None,
            key_version,
        }
    }

    /// Context of a subject's data key.
    pub fn subject_data_key(tenant: TenantId, subject: SubjectRef, key_version: u32) -> Self {
        Self {
            tenant,
            purpose: KeyPurpose::SubjectDataKey,
            subject: Some(subject),
            key_version,
        }
    }

    /// The associated data bound into the wrapped key.
    pub fn aad(&self) -> Aad {
        // A subject ref is never empty, so "" unambiguously means "no subject".
        let subject = self.subject.as_ref().map_or("", SubjectRef::as_str);
        Aad::new(WRAP_DOMAIN)
            .part(self.tenant.as_bytes())
            .part(self.purpose.as_str())
            .part(subject)
            .part(self.key_version.to_be_bytes())
    }
}

/// A key sealed under another key (`nonce || ciphertext || tag`, 60 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Vec<u8>);

impl WrappedKey {
    /// Wraps bytes read from storage.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes to store, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

/// Seals `key` under `kek`, bound to `context`.
pub fn wrap_key(
    kek: &KeyBytes,
    context: &WrapContext,
    key: &KeyBytes,
) -> Result<WrappedKey, CryptoError> {
    envelope::seal(kek, &context.aad(), key.expose()).map(WrappedKey)
}

/// Opens a key wrapped by [`wrap_key`] with the same KEK and context.
pub fn unwrap_key(
    kek: &KeyBytes,
    context: &WrapContext,
    wrapped: &WrappedKey,
) -> Result<KeyBytes, CryptoError> {
    let plain = Zeroizing::new(envelope::open(kek, &context.aad(), &wrapped.0)?);
    KeyBytes::from_slice(&plain)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tenant() -> TenantId {
        "0190c7a8-6c1e-7b3a-9f00-000000000001".parse().unwrap()
    }

    #[test]
    fn wraps_and_unwraps() {
        let kek = KeyBytes::generate();
        let key = KeyBytes::generate();
        let context = WrapContext::subject_data_key(tenant(), "ab".repeat(32).parse().unwrap(), 1);
        let wrapped = wrap_key(&kek, &context, &key).unwrap();
        assert_eq!(wrapped.as_bytes().len(), 60);
        assert_eq!(unwrap_key(&kek, &context, &wrapped).unwrap(), key);
        assert_eq!(format!("{wrapped:?}"), "WrappedKey(60 bytes)");
    }

    #[test]
    fn context_mismatch_fails() {
        let kek = KeyBytes::generate();
        let key = KeyBytes::generate();
        let context = WrapContext::tenant_kek(tenant(), 3);
        let wrapped = wrap_key(&kek, &context, &key).unwrap();
        let others = [
            WrapContext::tenant_kek(tenant(), 4),
            WrapContext::tenant_kek(TenantId::generate(), 3),
            WrapContext {
                purpose: KeyPurpose::TokenKey,
                ..context.clone()
            },
            WrapContext {
                subject: Some("cd".repeat(32).parse().unwrap()),
                ..context.clone()
            },
        ];
        for other in others {
            assert!(matches!(
                unwrap_key(&kek, &other, &wrapped),
                Err(CryptoError::Decrypt)
            ));
        }
        assert!(unwrap_key(&KeyBytes::generate(), &context, &wrapped).is_err());
    }
}
