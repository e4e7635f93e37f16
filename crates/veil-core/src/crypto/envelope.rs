//! AES-256-GCM envelope for records: `nonce(12) || ciphertext || tag(16)`.
//!
//! Every ciphertext is bound to where it belongs through [`Aad`] (tenant | subject |
//! record id | field), so a ciphertext copied into another row or field fails to open.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce, Tag};
use rand::RngCore as _;

use super::{CryptoError, KeyBytes};
use crate::types::{SubjectRef, TenantId};

/// Length of the random nonce at the start of a sealed value.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag at the end of a sealed value.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

const RECORD_DOMAIN: &str = "veil.record.v1";

/// Associated data: a domain label followed by length-prefixed parts, so two different
/// tuples never encode to the same bytes (`("ab", "c")` differs from `("a", "bc")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// Starts associated data for one use (the domain keeps uses apart, e.g. records
    /// from wrapped keys).
    pub fn new(domain: &str) -> Self {
        Self(Vec::with_capacity(128)).part(domain)
    }

    /// Appends one length-prefixed part.
    pub fn part(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// The binding for one encrypted field of a vault record.
    pub fn record(tenant: &TenantId, subject: &SubjectRef, record_id: &str, field: &str) -> Self {
        Self::new(RECORD_DOMAIN)
            .part(tenant.as_bytes())
            .part(subject.as_str())
            .part(record_id)
            .part(field)
    }

    /// The encoded bytes given to AES-GCM.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An AES-256-GCM cipher with its key schedule expanded once, for sealing or opening
/// many values under the same key.
#[derive(Clone)]
pub struct DataCipher {
    cipher: Aes256Gcm,
}

impl DataCipher {
    /// Expands `key` into a cipher.
    pub fn new(key: &KeyBytes) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.expose().into()),
        }
    }

    /// Encrypts `plaintext` under a fresh random nonce, returning
    /// `nonce || ciphertext || tag` in one allocation.
    ///
    /// Random 96-bit nonces are safe up to about 2^32 messages per key (NIST SP 800-38D);
    /// Veil's keys are per subject, far below that.
    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        // ThreadRng is a ChaCha12 CSPRNG reseeded from the OS; a getrandom syscall per
        // nonce would cost more than encrypting a small record.
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut sealed = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                aad.as_bytes(),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Encrypt)?;
        sealed.extend_from_slice(&tag);
        Ok(sealed)
    }

    /// Authenticates and decrypts a value produced by [`DataCipher::seal`] with the same
    /// key and associated data.
    pub fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(CryptoError::Truncated);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut plaintext = ciphertext.to_vec();
        // aes-gcm checks the tag before decrypting, so on failure the buffer still
        // holds ciphertext and needs no wiping.
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                aad.as_bytes(),
                &mut plaintext,
                Tag::from_slice(tag),
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plaintext)
    }
}

/// Encrypts `plaintext` under `key`, bound to `aad`. See [`DataCipher::seal`].
pub fn seal(key: &KeyBytes, aad: &Aad, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    DataCipher::new(key).seal(aad, plaintext)
}

/// Opens a value sealed by [`seal`]. See [`DataCipher::open`].
pub fn open(key: &KeyBytes, aad: &Aad, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    DataCipher::new(key).open(aad, sealed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record_aad(record_id: &str, field: &str) -> Aad {
        let tenant: TenantId = "0190c7a8-6c1e-7b3a-9f00-000000000001".parse().unwrap();
        let subject: SubjectRef = "ab".repeat(32).parse().unwrap();
        Aad::record(&tenant, &subject, record_id, field)
    }

    #[test]
    fn round_trips_and_uses_fresh_nonces() {
        let key = KeyBytes::generate();
        let aad = record_aad("r1", "email");
        let a = seal(&key, &aad, b"alice@example.com").unwrap();
        let b = seal(&key, &aad, b"alice@example.com").unwrap();
        assert_eq!(a.len(), SEAL_OVERHEAD + 17);
        assert_ne!(a, b, "two seals of one value must differ");
        assert_eq!(open(&key, &aad, &a).unwrap(), b"alice@example.com");
        assert_eq!(
            open(&key, &aad, &seal(&key, &aad, b"").unwrap()).unwrap(),
            b""
        );
    }

    #[test]
    fn ciphertext_moved_to_another_row_or_field_does_not_open() {
        let key = KeyBytes::generate();
        let sealed = seal(&key, &record_aad("r1", "email"), b"secret").unwrap();
        for other in [record_aad("r2", "email"), record_aad("r1", "phone")] {
            assert!(matches!(
                open(&key, &other, &sealed),
                Err(CryptoError::Decrypt)
            ));
        }
        assert!(open(&KeyBytes::generate(), &record_aad("r1", "email"), &sealed).is_err());
    }

    #[test]
    fn tampering_and_truncation_fail_without_panic() {
        let key = KeyBytes::generate();
        let aad = record_aad("r1", "email");
        let sealed = seal(&key, &aad, b"secret").unwrap();
        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(open(&key, &aad, &tampered).is_err(), "byte {index}");
        }
        for len in 0..SEAL_OVERHEAD {
            assert!(matches!(
                open(&key, &aad, &sealed[..len]),
                Err(CryptoError::Truncated)
            ));
        }
        assert!(open(&key, &aad, &sealed[..SEAL_OVERHEAD]).is_err());
    }

    #[test]
    fn aad_parts_are_unambiguous() {
        assert_ne!(
            Aad::new("d").part("ab").part("c"),
            Aad::new("d").part("a").part("bc")
        );
        assert_ne!(Aad::new("d").part(""), Aad::new("d"));
        assert_ne!(Aad::new("d1").part("x"), Aad::new("d").part("1x"));
    }
}
