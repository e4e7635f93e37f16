//! Signed tree heads: the canonical bytes that are signed, signing, and checking.
//!
//! The signed payload is fixed-width binary so there is exactly one encoding of a head:
//! `b"veil-audit-tree-head-v1\0"` (24 bytes), tree size (u64 big-endian), signing time
//! in milliseconds since the Unix epoch (i64 big-endian), and the 32-byte root.
//! Verifiers check the Ed25519 signature over these bytes and that they encode the
//! size, time and root presented beside them.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use veil_core::merkle::{HASH_LEN, Hash};

/// Domain separation tag that starts every payload.
pub const PAYLOAD_TAG: &[u8; 24] = b"veil-audit-tree-head-v1\0";
/// Length of an encoded payload.
pub const PAYLOAD_LEN: usize = PAYLOAD_TAG.len() + 8 + 8 + HASH_LEN;

/// What a tree head commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHeadPayload {
    /// Number of leaves.
    pub tree_size: u64,
    /// Signing time, milliseconds since the Unix epoch.
    pub signed_at_ms: i64,
    /// RFC 6962 root of the first `tree_size` leaves.
    pub root: Hash,
}

/// Why a tree head does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The payload is not a v1 tree-head payload.
    #[error("signed payload is malformed")]
    Payload,
    /// The public key is not a valid Ed25519 key.
    #[error("public key is malformed")]
    PublicKey,
    /// The public key is not one the verifier trusts.
    #[error("key {0} is not trusted")]
    UntrustedKey(String),
    /// The signature does not verify.
    #[error("signature does not verify")]
    Signature,
    /// Size, root or time beside the payload differ from what was signed.
    #[error("{0} differs from the signed payload")]
    Mismatch(&'static str),
}

impl TreeHeadPayload {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN);
        bytes.extend_from_slice(PAYLOAD_TAG);
        bytes.extend_from_slice(&self.tree_size.to_be_bytes());
        bytes.extend_from_slice(&self.signed_at_ms.to_be_bytes());
        bytes.extend_from_slice(&self.root);
        bytes
    }

    /// Parses canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeadError> {
        if bytes.len() != PAYLOAD_LEN || !bytes.starts_with(PAYLOAD_TAG) {
            return Err(HeadError::Payload);
        }
        let rest = &bytes[PAYLOAD_TAG.len()..];
        let (size, rest) = rest.split_at(8);
        let (at, root) = rest.split_at(8);
        Ok(Self {
            tree_size: u64::from_be_bytes(size.try_into().map_err(|_| HeadError::Payload)?),
            signed_at_ms: i64::from_be_bytes(at.try_into().map_err(|_| HeadError::Payload)?),
            root: root.try_into().map_err(|_| HeadError::Payload)?,
        })
    }

    /// The signing time as an instant.
    pub fn signed_at(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.signed_at_ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

/// Milliseconds since the epoch of `at` (heads keep millisecond precision so the
/// time survives every encoding unchanged).
pub fn millis(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A head as presented by the service, a database row or an export line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedHead {
    /// Claimed size.
    pub tree_size: u64,
    /// Claimed root.
    pub root_hash: Vec<u8>,
    /// Claimed signing time, milliseconds since the epoch.
    pub signed_at_ms: i64,
    /// The signed bytes.
    pub signed_payload: Vec<u8>,
    /// Ed25519 signature.
    pub signature: Vec<u8>,
    /// Signing key id.
    pub key_id: String,
    /// Raw public key shipped with the head.
    pub public_key: Vec<u8>,
}

/// Checks a head: the payload parses and matches the claimed fields, the key is trusted
/// (when `trusted` is empty the key shipped with the head is used, which only proves
/// integrity, not origin), and the signature verifies. Returns the payload.
pub fn verify(
    head: &PresentedHead,
    trusted: &[VerifyingKey],
) -> Result<TreeHeadPayload, HeadError> {
    let payload = TreeHeadPayload::decode(&head.signed_payload)?;
    if payload.tree_size != head.tree_size {
        return Err(HeadError::Mismatch("tree size"));
    }
    if payload.root.as_slice() != head.root_hash.as_slice() {
        return Err(HeadError::Mismatch("root hash"));
    }
    if payload.signed_at_ms != head.signed_at_ms {
        return Err(HeadError::Mismatch("signing time"));
    }
    let shipped: [u8; 32] = head
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| HeadError::PublicKey)?;
    let shipped = VerifyingKey::from_bytes(&shipped).map_err(|_| HeadError::PublicKey)?;
    let key = if trusted.is_empty() {
        shipped
    } else {
        *trusted
            .iter()
            .find(|key| **key == shipped)
            .ok_or_else(|| HeadError::UntrustedKey(head.key_id.clone()))?
    };
    let signature = Signature::from_slice(&head.signature).map_err(|_| HeadError::Signature)?;
    key.verify(&head.signed_payload, &signature)
        .map_err(|_| HeadError::Signature)?;
    Ok(payload)
}

/// The key that signs tree heads.
#[derive(Clone)]
pub struct HeadSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for HeadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl HeadSigner {
    /// A signer with `key` published as `key_id`.
    pub fn new(key: SigningKey, key_id: impl Into<String>) -> Self {
        Self {
            key,
            key_id: key_id.into(),
        }
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs the head of a tree of `tree_size` with `root` at `at`.
    pub fn sign(&self, tree_size: u64, root: Hash, at: time::OffsetDateTime) -> PresentedHead {
        let payload = TreeHeadPayload {
            tree_size,
            signed_at_ms: millis(at),
            root,
        };
        let signed_payload = payload.encode();
        let signature = self.key.sign(&signed_payload);
        PresentedHead {
            tree_size,
            root_hash: root.to_vec(),
            signed_at_ms: payload.signed_at_ms,
            signed_payload,
            signature: signature.to_bytes().to_vec(),
            key_id: self.key_id.clone(),
            public_key: self.key.verifying_key().to_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn signer() -> HeadSigner {
        HeadSigner::new(SigningKey::from_bytes(&[7; 32]), "k")
    }

    #[test]
    fn payload_round_trips_and_rejects_other_lengths_and_tags() {
        let payload = TreeHeadPayload {
            tree_size: 1234,
            signed_at_ms: 1_700_000_000_123,
            root: [9; 32],
        };
        let bytes = payload.encode();
        assert_eq!(bytes.len(), PAYLOAD_LEN);
        assert_eq!(TreeHeadPayload::decode(&bytes).unwrap(), payload);
        assert_eq!(
            TreeHeadPayload::decode(&bytes[1..]),
            Err(HeadError::Payload)
        );
        let mut other = bytes.clone();
        other[0] ^= 1;
        assert_eq!(TreeHeadPayload::decode(&other), Err(HeadError::Payload));
    }

    #[test]
    fn signed_head_verifies_and_every_change_is_caught() {
        let signer = signer();
        let at = time::macros::datetime!(2025-01-02 03:04:05.678 UTC);
        let head = signer.sign(10, [1; 32], at);
        let trusted = [signer.public_key()];
        let payload = verify(&head, &trusted).unwrap();
        assert_eq!(payload.signed_at(), at);
        assert!(verify(&head, &[]).is_ok());

        let mut bad = head.clone();
        bad.tree_size = 11;
        assert_eq!(
            verify(&bad, &trusted),
            Err(HeadError::Mismatch("tree size"))
        );
        let mut bad = head.clone();
        bad.root_hash[0] ^= 1;
        assert_eq!(
            verify(&bad, &trusted),
            Err(HeadError::Mismatch("root hash"))
        );
        let mut bad = head.clone();
        bad.signature[5] ^= 1;
        assert_eq!(verify(&bad, &trusted), Err(HeadError::Signature));
        // A re-signed payload with a key the verifier does not trust.
        let forger = HeadSigner::new(SigningKey::from_bytes(&[8; 32]), "k");
        let forged = forger.sign(10, [2; 32], at);
        assert_eq!(
            verify(&forged, &trusted),
            Err(HeadError::UntrustedKey("k".into()))
        );
        // The payload changed but the signature kept.
        let mut bad = head;
        bad.signed_payload = TreeHeadPayload {
            tree_size: 10,
            signed_at_ms: bad.signed_at_ms,
            root: [1; 32],
        }
        .encode();
        bad.signed_payload[30] ^= 1;
        assert!(verify(&bad, &trusted).is_err());
    }
}
