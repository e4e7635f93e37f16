#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ed25519_dalek::{Signer as _, SigningKey};
use prost::Message as _;
use veil_core::merkle::{self, MemoryTree};
use veil_proto::audit::v1::{AuditEntry, InclusionProof, SignedTreeHead};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{Event, RetentionCertificateIssued};
use veil_proto::retention::v1::DeletionCertificate;

use super::*;
use crate::certificate::document::{
    self, CertificateDocument, DOCUMENT_TYPE, DOCUMENT_VERSION, ISSUER, ServiceErasure,
};
use crate::certificate::keys::CertificateKeys;

const SUBJECT: &str = "5f0c6e1d5f0c6e1d5f0c6e1d5f0c6e1d5f0c6e1d5f0c6e1d5f0c6e1d5f0c6e1d";

struct Fixture {
    certificate: DeletionCertificate,
    entry: AuditEntry,
    audit_key: SigningKey,
}

fn signed_certificate(keys: &CertificateKeys) -> DeletionCertificate {
    let document = CertificateDocument {
        certificate_id: "cert-1".into(),
        issued_at: "2026-02-28T10:00:00Z".into(),
        issuer: ISSUER.into(),
        recipients: Vec::new(),
        request_id: "req-1".into(),
        services: vec![ServiceErasure {
            completed_at: "2026-02-28T09:59:59Z".into(),
            counts: BTreeMap::from([("turns".into(), 10_000)]),
            service: "gateway".into(),
        }],
        subject_ref: SUBJECT.into(),
        tenant_id: "tenant-1".into(),
        kind: DOCUMENT_TYPE.into(),
        version: DOCUMENT_VERSION,
    };
    DeletionCertificate {
        certificate_id: "cert-1".into(),
        request_id: "req-1".into(),
        subject_ref: SUBJECT.into(),
        certificate_json: document.canonical_json().unwrap(),
        jws: keys.sign(&document).unwrap(),
        key_id: keys.kid().into(),
        public_key: keys.public_key().to_bytes().to_vec(),
        ..Default::default()
    }
}

/// A certificate anchored as leaf 2 of a 5-leaf log with a signed head.
fn fixture() -> Fixture {
    let keys = CertificateKeys::from_signing_key(SigningKey::from_bytes(&[7; 32]), "k1");
    let mut certificate = signed_certificate(&keys);
    let event = Event {
        event_id: "e-1".into(),
        subject_ref: SUBJECT.into(),
        payload: Some(Payload::RetentionCertificateIssued(
            RetentionCertificateIssued {
                request_id: "req-1".into(),
                certificate_id: "cert-1".into(),
                certificate_sha256: document::sha256_hex(certificate.certificate_json.as_bytes()),
            },
        )),
        ..Default::default()
    };
    let leaf_data = event.encode_to_vec();
    let leaves: Vec<Vec<u8>> = (0..5u8)
        .map(|i| if i == 2 { leaf_data.clone() } else { vec![i] })
        .collect();
    let tree = MemoryTree::from_leaf_hashes(leaves.iter().map(|l| merkle::leaf_hash(l))).unwrap();
    let audit_key = SigningKey::from_bytes(&[9; 32]);
    let root = tree.root();
    let mut payload = HEAD_TAG.to_vec();
    payload.extend_from_slice(&5u64.to_be_bytes());
    payload.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    payload.extend_from_slice(&root);
    certificate.audit_leaf_index = 2;
    certificate.anchored = true;
    certificate.inclusion_proof = Some(InclusionProof {
        leaf_index: 2,
        tree_size: 5,
        leaf_hash: merkle::leaf_hash(&leaf_data).to_vec(),
        audit_path: merkle::inclusion_proof(&tree, 2, 5)
            .unwrap()
            .into_iter()
            .map(|h| h.to_vec())
            .collect(),
    });
    certificate.tree_head = Some(SignedTreeHead {
        tree_size: 5,
        root_hash: root.to_vec(),
        signature: audit_key.sign(&payload).to_bytes().to_vec(),
        signed_payload: payload,
        key_id: "audit".into(),
        public_key: audit_key.verifying_key().to_bytes().to_vec(),
        ..Default::default()
    });
    let entry = AuditEntry {
        leaf_index: 2,
        event_id: "e-1".into(),
        leaf_hash: merkle::leaf_hash(&leaf_data).to_vec(),
        leaf_data,
        ..Default::default()
    };
    Fixture {
        certificate,
        entry,
        audit_key,
    }
}

#[test]
fn a_signed_anchored_certificate_verifies_with_pinned_keys() {
    let f = fixture();
    let pinned = f.certificate.public_key.clone();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&pinned.try_into().unwrap()).unwrap();
    let verified = verify(
        &f.certificate,
        &f.entry,
        Some(&key),
        &[f.audit_key.verifying_key()],
    )
    .unwrap();
    assert_eq!(verified.leaf_index, 2);
    assert_eq!(verified.tree_size, 5);
    assert_eq!(verified.document.services[0].counts["turns"], 10_000);
}

#[test]
fn a_changed_certificate_json_fails_even_with_a_valid_jws() {
    let mut f = fixture();
    f.certificate.certificate_json = f.certificate.certificate_json.replace("10000", "9999");
    assert_eq!(
        verify_signature(&f.certificate, None).unwrap_err(),
        VerifyError::PayloadMismatch
    );
}

#[test]
fn another_key_or_a_forged_signature_is_refused() {
    let f = fixture();
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert_eq!(
        verify_signature(&f.certificate, Some(&other)).unwrap_err(),
        VerifyError::UntrustedKey
    );
    let mut forged = f.certificate.clone();
    let other_keys = CertificateKeys::from_signing_key(SigningKey::from_bytes(&[8; 32]), "k1");
    forged.jws = signed_certificate(&other_keys).jws;
    assert!(matches!(
        verify_signature(&forged, None).unwrap_err(),
        VerifyError::Signature(_)
    ));
}

#[test]
fn the_anchor_must_carry_this_certificates_hash_and_be_in_the_signed_tree() {
    let f = fixture();
    // An entry of another event at the same index.
    let mut wrong = f.entry.clone();
    wrong.leaf_data = vec![1, 2, 3];
    assert!(matches!(
        verify_anchor(&f.certificate, &wrong, &[]).unwrap_err(),
        VerifyError::Anchor(_)
    ));
    // A proof path that does not lead to the root.
    let mut bad_path = f.certificate.clone();
    if let Some(proof) = bad_path.inclusion_proof.as_mut() {
        proof.audit_path[0][0] ^= 1;
    }
    assert_eq!(
        verify_anchor(&bad_path, &f.entry, &[]).unwrap_err(),
        VerifyError::Inclusion
    );
    // A head signed by an untrusted key.
    let stranger = SigningKey::from_bytes(&[3; 32]).verifying_key();
    assert!(matches!(
        verify_anchor(&f.certificate, &f.entry, &[stranger]).unwrap_err(),
        VerifyError::TreeHead(_)
    ));
    // Not yet anchored.
    let mut pending = f.certificate.clone();
    pending.anchored = false;
    assert_eq!(
        verify_anchor(&pending, &f.entry, &[]).unwrap_err(),
        VerifyError::NotAnchored
    );
}
