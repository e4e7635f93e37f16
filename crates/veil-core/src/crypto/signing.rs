//! Ed25519 key material from and to configuration: base64 seeds, PKCS#8 PEM, public
//! keys as base64.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::{CryptoError, KeyBytes};

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// A fresh Ed25519 signing key from the OS CSPRNG.
pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

/// A signing key from its 32-byte seed in base64 (standard or base64url).
pub fn signing_key_from_base64(encoded: &str) -> Result<SigningKey, CryptoError> {
    let seed = KeyBytes::from_base64(encoded)?;
    Ok(SigningKey::from_bytes(seed.expose()))
}

/// The 32-byte seed as standard base64.
pub fn signing_key_to_base64(key: &SigningKey) -> Zeroizing<String> {
    KeyBytes::from_array(key.to_bytes()).to_base64()
}

/// A signing key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as written by
/// `openssl genpkey -algorithm ed25519`).
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, CryptoError> {
    let body = pem
        .split_once(PEM_BEGIN)
        .and_then(|(_, rest)| rest.split_once(PEM_END))
        .map(|(body, _)| body)
        .ok_or(CryptoError::Pem)?;
    let compact: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = Zeroizing::new(
        STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| CryptoError::Pem)?,
    );
    SigningKey::from_pkcs8_der(&der).map_err(|_| CryptoError::Pem)
}

/// The signing key as a PKCS#8 v1 PEM (seed only, the form `openssl genpkey` writes and
/// every tool reads).
pub fn signing_key_to_pem(key: &SigningKey) -> Result<Zeroizing<String>, CryptoError> {
    let keypair = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let der = keypair.to_pkcs8_der().map_err(|_| CryptoError::Pem)?;
    let encoded = Zeroizing::new(STANDARD.encode(der.as_bytes()));
    let mut pem = Zeroizing::new(String::with_capacity(encoded.len() + 64));
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    Ok(pem)
}

/// A signing key from config text: PKCS#8 PEM if it looks like one, else a base64 seed.
pub fn load_signing_key(text: &str) -> Result<SigningKey, CryptoError> {
    if text.contains(PEM_BEGIN) {
        signing_key_from_pem(text)
    } else {
        signing_key_from_base64(text)
    }
}

/// A public key as base64url (the JWK `x` encoding).
pub fn verifying_key_to_base64(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// A public key from 32 bytes in base64 (standard or base64url).
pub fn verifying_key_from_base64(encoded: &str) -> Result<VerifyingKey, CryptoError> {
    let encoded = encoded.trim();
    let bytes: [u8; 32] = STANDARD
        .decode(encoded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(encoded))
        .map_err(|_| CryptoError::PublicKey)?
        .try_into()
        .map_err(|_| CryptoError::PublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CryptoError::PublicKey)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Generated with `openssl genpkey -algorithm ed25519` for this test only.
    const OPENSSL_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIILOyT78f1mf9jf8eaOwHD1CZJyYXGaw59V5VUufk0qS
-----END PRIVATE KEY-----
";
    const OPENSSL_SEED: &str = "gs7JPvx/WZ/2N/x5o7AcPUJknJhcZrDn1XlVS5+TSpI=";
    const OPENSSL_PUBLIC: &str = "GHchBQzbT2ZKe4jnPB5xpPzwvrdMlKKn+lBd+mX330s=";

    #[test]
    fn reads_openssl_pem_and_matches_its_public_key() {
        let key = signing_key_from_pem(OPENSSL_PEM).unwrap();
        assert_eq!(*signing_key_to_base64(&key), OPENSSL_SEED);
        let public = verifying_key_from_base64(OPENSSL_PUBLIC).unwrap();
        assert_eq!(key.verifying_key(), public);
        assert_eq!(*signing_key_to_pem(&key).unwrap(), OPENSSL_PEM);
        assert_eq!(load_signing_key(OPENSSL_PEM).unwrap(), key);
        assert_eq!(load_signing_key(OPENSSL_SEED).unwrap(), key);
    }

    #[test]
    fn generated_keys_round_trip() {
        let key = generate_signing_key();
        let seed = signing_key_to_base64(&key);
        assert_eq!(signing_key_from_base64(&seed).unwrap(), key);
        let pem = signing_key_to_pem(&key).unwrap();
        assert_eq!(signing_key_from_pem(&pem).unwrap(), key);
        let public = verifying_key_to_base64(&key.verifying_key());
        assert_eq!(
            verifying_key_from_base64(&public).unwrap(),
            key.verifying_key()
        );
    }

    #[test]
    fn rejects_bad_material_without_echoing_it() {
        let not_pem = format!("{PEM_BEGIN}\n!!!!\n{PEM_END}");
        for bad in [
            not_pem.as_str(),
            PEM_BEGIN,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            assert!(matches!(signing_key_from_pem(bad), Err(CryptoError::Pem)));
        }
        assert!(signing_key_from_base64("AAAA").is_err());
        assert!(verifying_key_from_base64("AAAA").is_err());
        let err = load_signing_key("c2VjcmV0LXZhbHVl")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("c2VjcmV0LXZhbHVl"));
    }
}
