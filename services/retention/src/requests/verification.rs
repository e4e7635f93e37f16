//! One-time identity verification codes.
//!
//! A code is 8 uniformly random digits. Only a keyed hash is stored: HMAC-SHA256 under
//! the tenant's pseudonym key (derived from the deployment's root secret, which the
//! database never sees) over a domain-separated input that binds the code to its
//! request, so a stolen table cannot be brute-forced offline and a code of one request
//! never fits another. Codes are compared in constant time.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use veil_core::crypto::{KeyBytes, constant_time_eq};
use veil_core::subjects::SubjectKeys;
use veil_core::types::TenantId;

/// Digits in a code.
pub const CODE_DIGITS: usize = 8;

/// A freshly issued code, to hand to the caller once.
#[derive(Clone)]
pub struct Issued {
    /// The digits; never stored, never logged.
    pub code: String,
    pub hash: Vec<u8>,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// 8 uniformly random digits.
pub fn generate_code() -> String {
    // Rejection sampling: 4-byte draws below 42 * 10^8 map evenly onto 10^8 codes.
    const LIMIT: u32 = 4_200_000_000;
    loop {
        let random = KeyBytes::generate();
        for chunk in random.expose().chunks_exact(4) {
            let draw = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if draw < LIMIT {
                return format!("{:08}", draw % 100_000_000);
            }
        }
    }
}

/// The keyed hash of `code` for `request_id` in `tenant`.
pub fn hash_code(keys: &SubjectKeys, tenant: &TenantId, request_id: Uuid, code: &str) -> Vec<u8> {
    let input = format!("veil.retention.dsr_code\u{0}{request_id}\u{0}{code}");
    keys.subject_ref(tenant, &input)
        .as_str()
        .as_bytes()
        .to_vec()
}

/// Issues a code for a request, valid for `ttl`.
pub fn issue(
    keys: &SubjectKeys,
    tenant: &TenantId,
    request_id: Uuid,
    now: OffsetDateTime,
    ttl: Duration,
) -> Issued {
    let code = generate_code();
    let hash = hash_code(keys, tenant, request_id, &code);
    Issued {
        code,
        hash,
        expires_at: now + ttl,
    }
}

/// Whether `code` has the form of a code (checked before hashing, so malformed input
/// still counts as an attempt but never reaches the hash).
pub fn well_formed(code: &str) -> bool {
    code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `code` matches `stored`, in constant time.
pub fn matches(
    keys: &SubjectKeys,
    tenant: &TenantId,
    request_id: Uuid,
    code: &str,
    stored: &[u8],
) -> bool {
    let candidate = hash_code(keys, tenant, request_id, code);
    well_formed(code) & constant_time_eq(&candidate, stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SubjectKeys {
        SubjectKeys::from_key(KeyBytes::from_array([7; 32]))
    }

    #[test]
    fn codes_are_eight_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| generate_code()).collect();
        assert!(codes.iter().all(|c| well_formed(c)));
        // 200 draws from 10^8 values: a collision means the generator is broken.
        assert_eq!(codes.len(), 200);
    }

    #[test]
    fn the_hash_is_keyed_bound_to_the_request_and_not_the_code() {
        let tenant = TenantId::generate();
        let request = Uuid::now_v7();
        let hash = hash_code(&keys(), &tenant, request, "12345678");
        assert_ne!(hash, b"12345678".to_vec());
        assert!(!String::from_utf8_lossy(&hash).contains("12345678"));
        assert!(matches(&keys(), &tenant, request, "12345678", &hash));
        assert!(!matches(&keys(), &tenant, request, "12345679", &hash));
        assert!(!matches(
            &keys(),
            &tenant,
            Uuid::now_v7(),
            "12345678",
            &hash
        ));
        assert!(!matches(
            &keys(),
            &TenantId::generate(),
            request,
            "12345678",
            &hash
        ));
        let other_keys = SubjectKeys::from_key(KeyBytes::from_array([8; 32]));
        assert!(!matches(&other_keys, &tenant, request, "12345678", &hash));
    }

    #[test]
    fn malformed_codes_never_match() {
        let tenant = TenantId::generate();
        let request = Uuid::now_v7();
        for bad in ["", "1234567", "123456789", "abcdefgh", "1234 678"] {
            let hash = hash_code(&keys(), &tenant, request, bad);
            assert!(!matches(&keys(), &tenant, request, bad, &hash), "{bad:?}");
        }
    }

    #[test]
    fn issued_codes_expire_after_the_ttl_and_hide_the_code_in_debug() {
        let now = OffsetDateTime::now_utc();
        let issued = issue(
            &keys(),
            &TenantId::generate(),
            Uuid::now_v7(),
            now,
            Duration::minutes(15),
        );
        assert_eq!(issued.expires_at, now + Duration::minutes(15));
        assert!(!format!("{issued:?}").contains(&issued.code));
    }
}
