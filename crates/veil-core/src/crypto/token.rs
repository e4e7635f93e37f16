//! Deterministic tokens, subject refs and per-tenant key derivation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::KeyBytes;
use crate::types::{SubjectRef, TenantId};

/// Prefix of every token, so a token is recognizable in text and logs.
pub const TOKEN_PREFIX: &str = "tok_";
/// [`derive_key`] label of a tenant's token key.
pub const TOKEN_KEY_LABEL: &str = "token";
/// [`derive_key`] label of a tenant's pseudonym key.
pub const PSEUDONYM_KEY_LABEL: &str = "pseudonym";
/// [`derive_key`] label of the installation's key for peer refs (with the nil tenant:
/// a peer is not a tenant's).
pub const PEER_KEY_LABEL: &str = "peer";
/// Peer refs keep the first 96 bits of the MAC: enough to tell peers apart in a burst,
/// short enough to read in an incident.
const PEER_MAC_BYTES: usize = 12;

const TOKEN_DOMAIN: &[u8] = b"veil.token.v1";
const KDF_SALT: &[u8] = b"veil.kdf.v1";
/// Tokens keep the first 128 bits of the MAC; see [`token_for`].
const TOKEN_MAC_BYTES: usize = 16;

fn hmac_sha256(key: &KeyBytes) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail for a 32-byte key.
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(key.expose())
        .expect("hmac accepts keys of any length")
}

/// The deterministic token of `value` as entity `entity_type` under a tenant's token key:
/// `tok_` + base64url of the first 128 bits of
/// HMAC-SHA256(key, "veil.token.v1" || len(entity_type) || entity_type || value).
///
/// Equal values of one entity type get equal tokens within a tenant; the entity type in
/// the MAC input keeps `email:x` and `phone:x` apart. 128 bits is far beyond collision
/// risk for any tenant's number of values (birthday bound 2^64) and forging one needs
/// the key; the full 256 bits would only make tokens longer in placeholders and indexes.
/// Callers normalize values first (e.g. lowercase an email) if equal should mean
/// equal after normalization.
pub fn token_for(token_key: &KeyBytes, entity_type: &str, value: &[u8]) -> String {
    let mac = token_mac(token_key, entity_type, value);
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 22);
    token.push_str(TOKEN_PREFIX);
    URL_SAFE_NO_PAD.encode_string(&mac[..TOKEN_MAC_BYTES], &mut token);
    token
}

/// Whether `token` is the token of `value`, compared in constant time.
pub fn token_matches(token_key: &KeyBytes, entity_type: &str, value: &[u8], token: &str) -> bool {
    let expected = token_for(token_key, entity_type, value);
    constant_time_eq(expected.as_bytes(), token.as_bytes())
}

fn token_mac(token_key: &KeyBytes, entity_type: &str, value: &[u8]) -> [u8; 32] {
    let mut mac = hmac_sha256(token_key);
    mac.update(TOKEN_DOMAIN);
    mac.update(&(entity_type.len() as u64).to_be_bytes());
    mac.update(entity_type.as_bytes());
    mac.update(value);
    mac.finalize().into_bytes().into()
}

/// The subject ref of an external subject id: hex HMAC-SHA256 under the tenant's
/// pseudonym key (the key is dedicated to this, so no extra domain label is needed).
pub fn subject_ref(pseudonym_key: &KeyBytes, external_subject_id: &str) -> SubjectRef {
    let mut mac = hmac_sha256(pseudonym_key);
    mac.update(external_subject_id.as_bytes());
    SubjectRef::from_digest(&mac.finalize().into_bytes().into())
}

/// HMAC-SHA256 of `bytes` under `key`: a fingerprint that only the key's holder can
/// compute or check, for values derived from personal data.
pub fn keyed_digest(key: &KeyBytes, bytes: &[u8]) -> [u8; 32] {
    let mut mac = hmac_sha256(key);
    mac.update(bytes);
    mac.finalize().into_bytes().into()
}

/// The peer ref of a network address: `peer_` + hex of the first 96 bits of
/// HMAC-SHA256 under the peer key. Audit groups authentication failures by it without
/// storing addresses. Callers pass the address as bytes (see `SubjectKeys::peer_ref`).
pub fn peer_ref(peer_key: &KeyBytes, address: &[u8]) -> String {
    let mut mac = hmac_sha256(peer_key);
    mac.update(address);
    format!(
        "peer_{}",
        hex::encode(&mac.finalize().into_bytes()[..PEER_MAC_BYTES])
    )
}

/// Derives a per-tenant key from a root secret with HKDF-SHA256
/// (info = tenant id bytes || label; the tenant id has a fixed 16 bytes, so the
/// encoding is unambiguous). Use [`TOKEN_KEY_LABEL`] or [`PSEUDONYM_KEY_LABEL`].
pub fn derive_key(root: &KeyBytes, tenant: &TenantId, label: &str) -> KeyBytes {
    let hkdf = Hkdf::<Sha256>::new(Some(KDF_SALT), root.expose());
    let mut okm = [0u8; KeyBytes::LEN];
    hkdf.expand_multi_info(&[tenant.as_bytes(), label.as_bytes()], &mut okm)
        .expect("32 bytes is within the hkdf-sha256 output limit");
    KeyBytes::from_array(okm)
}

/// Compares two byte strings in time independent of where they differ (lengths are not
/// secret here).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(byte: u8) -> KeyBytes {
        KeyBytes::from_array([byte; 32])
    }

    #[test]
    fn keyed_digests_depend_on_key_and_bytes() {
        use sha2::Digest as _;
        let digest = keyed_digest(&key(1), b"message");
        assert_eq!(digest, keyed_digest(&key(1), b"message"));
        assert_ne!(digest, keyed_digest(&key(2), b"message"));
        assert_ne!(digest, keyed_digest(&key(1), b"message!"));
        let unkeyed: [u8; 32] = Sha256::digest(b"message").into();
        assert_ne!(digest, unkeyed);
    }

    #[test]
    fn tokens_are_deterministic_compact_and_domain_separated() {
        let t1 = token_for(&key(1), "email", b"alice@example.com");
        assert_eq!(t1, token_for(&key(1), "email", b"alice@example.com"));
        assert!(t1.starts_with(TOKEN_PREFIX));
        assert_eq!(t1.len(), 26);
        assert_ne!(t1, token_for(&key(2), "email", b"alice@example.com"));
        assert_ne!(t1, token_for(&key(1), "phone", b"alice@example.com"));
        assert_ne!(t1, token_for(&key(1), "email", b"bob@example.com"));
        // The length prefix keeps the type/value boundary unambiguous.
        assert_ne!(
            token_for(&key(1), "ab", b"c"),
            token_for(&key(1), "a", b"bc")
        );
        assert!(token_matches(&key(1), "email", b"alice@example.com", &t1));
        assert!(!token_matches(&key(1), "email", b"alice@example.org", &t1));
    }

    // Known answers computed independently (Python hmac/hashlib) from the documented
    // constructions.
    #[test]
    fn known_answers() {
        assert_eq!(
            token_for(&key(3), "email", b"x@y.z"),
            "tok_ysXrm57zCkrsBQsDumh6Ww"
        );
        assert_eq!(
            subject_ref(&key(9), "user-42").as_str(),
            "6a75769764336ab5b58d8bbd439bc4407369a3e9ffe8ef555a97133be61fd06b"
        );
        let tenant: TenantId = "0190c7a8-6c1e-7b3a-9f00-000000000001".parse().unwrap();
        assert_eq!(
            hex::encode(derive_key(&key(7), &tenant, TOKEN_KEY_LABEL).expose()),
            "a110a0d77f0b56f1efbfecb9bfc4deca93ac0b06e72d53cf73cb708aeeca5811"
        );
        assert_ne!(
            subject_ref(&key(9), "user-42"),
            subject_ref(&key(9), "user-43")
        );
    }

    #[test]
    fn derived_keys_differ_by_tenant_and_label() {
        let root = key(7);
        let a = TenantId::generate();
        let b = TenantId::generate();
        assert_eq!(
            derive_key(&root, &a, TOKEN_KEY_LABEL),
            derive_key(&root, &a, TOKEN_KEY_LABEL)
        );
        assert_ne!(
            derive_key(&root, &a, TOKEN_KEY_LABEL),
            derive_key(&root, &b, TOKEN_KEY_LABEL)
        );
        assert_ne!(
            derive_key(&root, &a, TOKEN_KEY_LABEL),
            derive_key(&root, &a, PSEUDONYM_KEY_LABEL)
        );
        assert_ne!(
            derive_key(&root, &a, TOKEN_KEY_LABEL),
            derive_key(&key(8), &a, TOKEN_KEY_LABEL)
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
