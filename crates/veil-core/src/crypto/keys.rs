//! 32-byte secret keys.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;

/// A 32-byte secret key (AES-256, HMAC-SHA256 or HKDF input). Wiped on drop, never
/// printed, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyBytes([u8; KeyBytes::LEN]);

/// A per-subject (or per-record) data encryption key.
pub type DataKey = KeyBytes;

impl KeyBytes {
    /// Key length in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = Self([0; Self::LEN]);
        OsRng.fill_bytes(&mut key.0);
        key
    }

    /// Takes ownership of raw key bytes.
    pub fn from_array(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// Copies key bytes from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; Self::LEN] = bytes.try_into().map_err(|_| CryptoError::KeyLength)?;
        Ok(Self(array))
    }

    /// Decodes a key from standard base64 (padded) or base64url (unpadded), as written
    /// in config files. Surrounding whitespace is ignored.
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let encoded = encoded.trim();
        let decoded = STANDARD
            .decode(encoded)
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded))
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::KeyEncoding)?;
        Self::from_slice(&decoded)
    }

    /// The key as standard base64, e.g. to write a generated key into a config file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }

    /// The raw key bytes; every caller is a place key material is handled.
    pub fn expose(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for KeyBytes {}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_keys_differ_and_round_trip_base64() {
        let a = KeyBytes::generate();
        let b = KeyBytes::generate();
        assert_ne!(a, b);
        let back = KeyBytes::from_base64(&a.to_base64()).unwrap();
        assert_eq!(a, back);
        let url = URL_SAFE_NO_PAD.encode(a.expose());
        assert_eq!(KeyBytes::from_base64(&url).unwrap(), a);
    }

    #[test]
    fn rejects_wrong_length_and_bad_encoding() {
        assert!(matches!(
            KeyBytes::from_slice(&[0; 31]),
            Err(CryptoError::KeyLength)
        ));
        assert!(matches!(
            KeyBytes::from_base64(&STANDARD.encode([0u8; 16])),
            Err(CryptoError::KeyLength)
        ));
        assert!(matches!(
            KeyBytes::from_base64("not base64 at all!"),
            Err(CryptoError::KeyEncoding)
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let key = KeyBytes::from_array([7; 32]);
        assert_eq!(format!("{key:?}"), "KeyBytes([redacted])");
    }
}
