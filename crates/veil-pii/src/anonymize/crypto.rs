//! Keyed hashing and reversible encryption of single values.
//!
//! Encryption is AES-256-GCM with a synthetic nonce: the nonce is an HMAC of the
//! value under a key derived from the encryption key. The same value always gives
//! the same token (like AES-GCM-SIV), which keeps the core free of a random number
//! source (it must run in WebAssembly without one) and keeps nonces unique per
//! distinct value, which is what GCM's security needs.

use crate::error::{AnonymizeError, DecryptError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of encrypted tokens in redacted text.
pub const TOKEN_PREFIX: &str = "ENC:";
const AAD: &[u8] = b"veil-pii value v1";

/// A tenant's key material for the `hash` and `encrypt` operators. Zeroized on
/// drop; `Debug` shows which keys are present, never their bytes.
#[derive(Clone, Default)]
pub struct Keys {
    hash_key: Option<Zeroizing<Vec<u8>>>,
    encryption_key: Option<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("hash_key", &self.hash_key.as_ref().map(|_| "<set>"))
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

impl Keys {
    /// No keys: `hash` and `encrypt` fail with [`AnonymizeError::MissingKey`].
    pub fn none() -> Keys {
        Keys::default()
    }

    /// Sets the HMAC key for the `hash` operator.
    pub fn with_hash_key(mut self, key: &[u8]) -> Keys {
        self.hash_key = Some(Zeroizing::new(key.to_vec()));
        self
    }

    /// Sets the AES-256 key for the `encrypt` operator.
    pub fn with_encryption_key(mut self, key: [u8; 32]) -> Keys {
        self.encryption_key = Some(Zeroizing::new(key));
        self
    }

    /// Hex HMAC-SHA256 of a value.
    pub fn hash(&self, value: &str) -> Result<String, AnonymizeError> {
        let key = self
            .hash_key
            .as_ref()
            .ok_or(AnonymizeError::MissingKey("hash"))?;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
            .map_err(|_| AnonymizeError::MissingKey("hash"))?;
        mac.update(value.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// `ENC:` + base64url(nonce || ciphertext || tag).
    pub fn encrypt(&self, value: &str) -> Result<String, AnonymizeError> {
        let key = self
            .encryption_key
            .as_ref()
            .ok_or(AnonymizeError::MissingKey("encrypt"))?;
        let nonce = synthetic_nonce(key, value);
        let cipher = Aes256Gcm::new_from_slice(&key[..]).map_err(|_| AnonymizeError::Encryption)?;
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: AAD,
                },
            )
            .map_err(|_| AnonymizeError::Encryption)?;
        let mut raw = Vec::with_capacity(12 + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Decrypts a token made by [`Keys::encrypt`].
    pub fn decrypt(&self, token: &str) -> Result<String, DecryptError> {
        let key = self
            .encryption_key
            .as_ref()
            .ok_or(DecryptError::Authentication)?;
        let body = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(DecryptError::Malformed)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| DecryptError::Malformed)?;
        if raw.len() < 12 + 16 {
            return Err(DecryptError::Malformed);
        }
        let cipher =
            Aes256Gcm::new_from_slice(&key[..]).map_err(|_| DecryptError::Authentication)?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&raw[..12]),
                Payload {
                    msg: &raw[12..],
                    aad: AAD,
                },
            )
            .map_err(|_| DecryptError::Authentication)?;
        String::from_utf8(plain).map_err(|_| DecryptError::Malformed)
    }
}

fn synthetic_nonce(key: &[u8; 32], value: &str) -> [u8; 12] {
    // A separate key for nonces, derived from the encryption key.
    let mut derive = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    derive.update(b"veil-pii synthetic nonce key");
    let nonce_key = derive.finalize().into_bytes();
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&nonce_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(value.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&tag[..12]);
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_round_trip() {
        let keys = Keys::none().with_encryption_key([7; 32]);
        let token = keys.encrypt("anna@example.com").expect("encrypts");
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(
            keys.encrypt("anna@example.com").as_deref(),
            Ok(token.as_str())
        );
        assert_eq!(keys.decrypt(&token).as_deref(), Ok("anna@example.com"));
        let other = Keys::none().with_encryption_key([8; 32]);
        assert_eq!(other.decrypt(&token), Err(DecryptError::Authentication));
    }

    #[test]
    fn hash_needs_key() {
        assert_eq!(
            Keys::none().hash("x"),
            Err(AnonymizeError::MissingKey("hash"))
        );
        let keys = Keys::none().with_hash_key(b"k");
        assert_eq!(keys.hash("x").map(|h| h.len()), Ok(64));
        assert!(!format!("{keys:?}").contains('k') || format!("{keys:?}").contains("<set>"));
    }
}
