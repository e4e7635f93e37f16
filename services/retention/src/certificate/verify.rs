//! Verifying a deletion certificate: its signature, and its anchor in the audit log.
//!
//! Used by the tests and by `veil dsr certificate --verify`. Pure functions: the caller
//! fetches the certificate (GetDeletionCertificate) and the anchoring audit entry
//! (audit GetEntry by `audit_leaf_index`), and chooses which keys it trusts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use prost::Message as _;
use veil_core::crypto::jws::{self, JwsError, KeySet};
use veil_core::merkle;
use veil_proto::audit::v1::{AuditEntry, SignedTreeHead};
use veil_proto::events::v1::Event;
use veil_proto::events::v1::event::Payload;
use veil_proto::retention::v1::DeletionCertificate;

use super::document::{CertificateDocument, sha256_hex};
use super::keys::CERTIFICATE_TYPE;

/// Domain tag that starts an audit tree head's signed payload (see services/audit
/// tree_head.rs: tag, u64 BE size, i64 BE milliseconds, 32-byte root).
const HEAD_TAG: &[u8; 24] = b"veil-audit-tree-head-v1\0";
const HEAD_LEN: usize = HEAD_TAG.len() + 8 + 8 + merkle::HASH_LEN;

/// Why a certificate does not verify. Messages never carry certificate contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("certificate public key is missing or malformed")]
    PublicKey,
    #[error("certificate is signed by a key that is not trusted")]
    UntrustedKey,
    #[error("certificate signature: {0}")]
    Signature(JwsError),
    #[error("certificate_json differs from the signed payload")]
    PayloadMismatch,
    #[error("certificate fields differ from the signed document: {0}")]
    FieldMismatch(&'static str),
    #[error("certificate is not yet anchored in the audit log")]
    NotAnchored,
    #[error("audit entry does not anchor this certificate: {0}")]
    Anchor(&'static str),
    #[error("inclusion proof does not lead to the signed tree head")]
    Inclusion,
    #[error("audit tree head: {0}")]
    TreeHead(&'static str),
}

/// A certificate that checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signed document.
    pub document: CertificateDocument,
    /// Leaf of the anchoring event in the audit log.
    pub leaf_index: u64,
    /// Size of the signed tree the proof is against.
    pub tree_size: u64,
}

/// Checks the JWS over `certificate_json` and that the response's fields say what the
/// signed document says. `trusted` pins the certificate key; `None` uses the key shipped
/// in the certificate (integrity only; pin the key out of band for origin).
pub fn verify_signature(
    certificate: &DeletionCertificate,
    trusted: Option<&VerifyingKey>,
) -> Result<CertificateDocument, VerifyError> {
    let shipped: [u8; 32] = certificate
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| VerifyError::PublicKey)?;
    let shipped = VerifyingKey::from_bytes(&shipped).map_err(|_| VerifyError::PublicKey)?;
    let key = match trusted {
        Some(pinned) if *pinned != shipped => return Err(VerifyError::UntrustedKey),
        Some(pinned) => *pinned,
        None => shipped,
    };
    let keys = KeySet::new().with(certificate.key_id.clone(), key);
    let document: CertificateDocument =
        jws::verify(&certificate.jws, CERTIFICATE_TYPE, &keys).map_err(VerifyError::Signature)?;
    // The signed bytes, not just an equal document: certificate_json is what is hashed
    // into the audit anchor.
    let signed = certificate
        .jws
        .split('.')
        .nth(1)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .ok_or(VerifyError::PayloadMismatch)?;
    if signed != certificate.certificate_json.as_bytes() {
        return Err(VerifyError::PayloadMismatch);
    }
    if document.certificate_id != certificate.certificate_id {
        return Err(VerifyError::FieldMismatch("certificate_id"));
    }
    if document.request_id != certificate.request_id {
        return Err(VerifyError::FieldMismatch("request_id"));
    }
    if document.subject_ref != certificate.subject_ref {
        return Err(VerifyError::FieldMismatch("subject_ref"));
    }
    Ok(document)
}

/// Checks that `entry` is the audit log's `retention.certificate_issued` event for this
/// certificate (same id, request and sha256 of certificate_json), that the inclusion
/// proof puts that entry's leaf into the tree head, and that the head is signed.
/// `audit_keys` pins the audit signing keys; empty uses the key shipped with the head.
pub fn verify_anchor(
    certificate: &DeletionCertificate,
    entry: &AuditEntry,
    audit_keys: &[VerifyingKey],
) -> Result<(u64, u64), VerifyError> {
    if !certificate.anchored {
        return Err(VerifyError::NotAnchored);
    }
    let (Some(proof), Some(head)) = (&certificate.inclusion_proof, &certificate.tree_head) else {
        return Err(VerifyError::NotAnchored);
    };
    if entry.leaf_index != certificate.audit_leaf_index || proof.leaf_index != entry.leaf_index {
        return Err(VerifyError::Anchor("leaf index"));
    }
    let leaf_hash = merkle::leaf_hash(&entry.leaf_data);
    if leaf_hash.as_slice() != proof.leaf_hash.as_slice() {
        return Err(VerifyError::Anchor("leaf hash"));
    }
    let event = Event::decode(entry.leaf_data.as_slice())
        .map_err(|_| VerifyError::Anchor("leaf data is not an event"))?;
    let Some(Payload::RetentionCertificateIssued(issued)) = &event.payload else {
        return Err(VerifyError::Anchor("not a certificate_issued event"));
    };
    if issued.certificate_id != certificate.certificate_id
        || issued.request_id != certificate.request_id
    {
        return Err(VerifyError::Anchor("certificate or request id"));
    }
    if issued.certificate_sha256 != sha256_hex(certificate.certificate_json.as_bytes()) {
        return Err(VerifyError::Anchor("certificate sha256"));
    }
    if event.subject_ref != certificate.subject_ref {
        return Err(VerifyError::Anchor("subject_ref"));
    }
    verify_head(head, audit_keys)?;
    if proof.tree_size != head.tree_size {
        return Err(VerifyError::Inclusion);
    }
    merkle::verify_inclusion(
        &leaf_hash,
        proof.leaf_index,
        proof.tree_size,
        &proof.audit_path,
        &head.root_hash,
    )
    .map_err(|_| VerifyError::Inclusion)?;
    Ok((proof.leaf_index, proof.tree_size))
}

/// Both checks: signature and anchor.
pub fn verify(
    certificate: &DeletionCertificate,
    entry: &AuditEntry,
    certificate_key: Option<&VerifyingKey>,
    audit_keys: &[VerifyingKey],
) -> Result<Verified, VerifyError> {
    let document = verify_signature(certificate, certificate_key)?;
    let (leaf_index, tree_size) = verify_anchor(certificate, entry, audit_keys)?;
    Ok(Verified {
        document,
        leaf_index,
        tree_size,
    })
}

/// The audit tree head's signature over its fixed-width payload, and that the payload
/// encodes the size and root presented beside it.
fn verify_head(head: &SignedTreeHead, trusted: &[VerifyingKey]) -> Result<(), VerifyError> {
    let payload = &head.signed_payload;
    if payload.len() != HEAD_LEN || !payload.starts_with(HEAD_TAG) {
        return Err(VerifyError::TreeHead("signed payload is malformed"));
    }
    let size_bytes = &payload[HEAD_TAG.len()..HEAD_TAG.len() + 8];
    let root = &payload[HEAD_TAG.len() + 16..];
    if size_bytes != head.tree_size.to_be_bytes().as_slice() {
        return Err(VerifyError::TreeHead(
            "tree size differs from the signed payload",
        ));
    }
    if root != head.root_hash.as_slice() {
        return Err(VerifyError::TreeHead(
            "root differs from the signed payload",
        ));
    }
    let shipped: [u8; 32] = head
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| VerifyError::TreeHead("public key is malformed"))?;
    let shipped = VerifyingKey::from_bytes(&shipped)
        .map_err(|_| VerifyError::TreeHead("public key is malformed"))?;
    if !trusted.is_empty() && !trusted.contains(&shipped) {
        return Err(VerifyError::TreeHead("signed by a key that is not trusted"));
    }
    let signature = Signature::from_slice(&head.signature)
        .map_err(|_| VerifyError::TreeHead("signature is malformed"))?;
    shipped
        .verify(payload, &signature)
        .map_err(|_| VerifyError::TreeHead("signature does not verify"))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
