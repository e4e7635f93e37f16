#![allow(clippy::unwrap_used)]
//! The verifier against logs built here, tampered in every way the database allows.

use ed25519_dalek::SigningKey;
use prost::Message;
use veil_core::merkle::{MemoryTree, leaf_hash};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{Event, VaultRevealed};

use super::*;
use crate::tree_head::HeadSigner;

struct Log {
    records: Vec<LeafRecord>,
    /// Interior nodes as the writer stores them: (level, index, hash).
    nodes: Vec<(u32, u64, Vec<u8>)>,
    heads: Vec<crate::tree_head::PresentedHead>,
    signer: HeadSigner,
}

fn event(i: u64) -> Vec<u8> {
    Event {
        event_id: format!("00000000-0000-7000-8000-{i:012}"),
        tenant_id: "0190a4f0-0000-7000-8000-000000000001".into(),
        subject_ref: format!("{i:064x}"),
        payload: Some(Payload::VaultRevealed(VaultRevealed {
            purpose: "support".into(),
            ..VaultRevealed::default()
        })),
        ..Event::default()
    }
    .encode_to_vec()
}

fn columns(data: &[u8]) -> Columns {
    let event = Event::decode(data).unwrap();
    Columns {
        event_id: event.event_id,
        event_type: "vault.revealed".into(),
        tenant_id: event.tenant_id,
        subject_ref: event.subject_ref,
    }
}

/// A log of `n` entries with heads signed at `head_sizes`.
fn log(n: u64, head_sizes: &[u64]) -> Log {
    let signer = HeadSigner::new(SigningKey::from_bytes(&[3; 32]), "test");
    let records: Vec<LeafRecord> = (0..n)
        .map(|i| {
            let data = event(i);
            LeafRecord {
                index: i,
                stored_leaf_hash: Some(leaf_hash(&data).to_vec()),
                columns: Some(columns(&data)),
                leaf_data: data,
            }
        })
        .collect();
    let tree =
        MemoryTree::from_leaf_hashes(records.iter().map(|r| leaf_hash(&r.leaf_data))).unwrap();
    let mut nodes = Vec::new();
    for level in 1..20u32 {
        for (index, hash) in tree.level(level).iter().enumerate() {
            nodes.push((level, index as u64, hash.to_vec()));
        }
    }
    let at = time::macros::datetime!(2025-01-01 0:00 UTC);
    let heads = head_sizes
        .iter()
        .map(|size| {
            let root = veil_core::merkle::root_at(&tree, *size).unwrap();
            signer.sign(*size, root, at)
        })
        .collect();
    Log {
        records,
        nodes,
        heads,
        signer,
    }
}

fn verify(log: &Log, stored_size: Option<u64>) -> Report {
    let mut verifier = Verifier::new(vec![log.signer.public_key()]);
    for record in &log.records {
        verifier.push(record.clone());
    }
    let mut rebuilt = verifier.rebuild();
    for (level, index, hash) in &log.nodes {
        rebuilt.check_node(*level, *index, hash);
    }
    rebuilt.finish(log.heads.clone(), stored_size)
}

#[test]
fn an_intact_log_verifies_with_every_head_and_pair() {
    let log = log(37, &[5, 16, 30, 37]);
    let report = verify(&log, Some(37));
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.entries, 37);
    assert_eq!(report.heads_verified, 4);
    assert_eq!(report.consistent_pairs, 3);
    assert_eq!(report.nodes_checked, log.nodes.len() as u64);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

#[test]
fn a_changed_event_is_named_exactly() {
    let mut log = log(20, &[20]);
    log.records[7].leaf_data = event(99);
    log.records[7].columns = Some(columns(&log.records[7].leaf_data));
    let report = verify(&log, Some(20));
    let first = report.first().unwrap();
    assert_eq!(first.kind, FindingKind::Changed, "{first}");
    assert_eq!((first.index, first.end), (Some(7), Some(8)));
}

#[test]
fn a_change_with_rewritten_leaf_hash_is_narrowed_to_its_pair() {
    let mut log = log(20, &[20]);
    log.records[7].leaf_data = event(99);
    log.records[7].columns = Some(columns(&log.records[7].leaf_data));
    log.records[7].stored_leaf_hash = Some(leaf_hash(&log.records[7].leaf_data).to_vec());
    let report = verify(&log, Some(20));
    let first = report.first().unwrap();
    assert_eq!(first.kind, FindingKind::Changed, "{first}");
    assert_eq!((first.index, first.end), (Some(6), Some(8)), "{first}");
    // With no stored nodes at all, the signed head still catches it.
    let mut bare = log;
    bare.nodes.clear();
    let report = verify(&bare, None);
    assert_eq!(report.first().unwrap().kind, FindingKind::Changed);
    assert_eq!(report.first().unwrap().end, Some(20));
}

#[test]
fn a_changed_column_is_named() {
    let mut log = log(10, &[10]);
    log.records[4].columns.as_mut().unwrap().tenant_id = "someone-else".into();
    let report = verify(&log, Some(10));
    let first = report.first().unwrap();
    assert_eq!((first.kind, first.index), (FindingKind::Changed, Some(4)));
    assert!(first.detail.contains("tenant_id"), "{first}");
}

#[test]
fn a_removed_entry_is_named_where_the_gap_is() {
    let mut log = log(20, &[10, 20]);
    log.records.remove(12);
    let report = verify(&log, Some(20));
    let first = report.first().unwrap();
    assert_eq!(
        (first.kind, first.index),
        (FindingKind::Removed, Some(12)),
        "{first}"
    );
    assert!(!report.intact());
}

#[test]
fn removing_the_last_entries_is_caught_by_the_head() {
    let mut log = log(20, &[20]);
    log.records.truncate(18);
    log.nodes
        .retain(|(level, index, _)| (index + 1) << level <= 18);
    let report = verify(&log, None);
    let first = report.first().unwrap();
    assert_eq!(
        (first.kind, first.index),
        (FindingKind::Removed, Some(18)),
        "{first}"
    );
}

#[test]
fn swapped_rows_are_reported_as_reordered() {
    // Whole rows swapped (leaf hashes move along), far apart and within one pair.
    for (a, b) in [(3u64, 14u64), (8, 9)] {
        let mut log = log(20, &[20]);
        let (a, b) = (a as usize, b as usize);
        let (left, right) = (log.records[a].clone(), log.records[b].clone());
        log.records[a] = LeafRecord {
            index: a as u64,
            ..right
        };
        log.records[b] = LeafRecord {
            index: b as u64,
            ..left
        };
        let report = verify(&log, Some(20));
        let first = report.first().unwrap();
        assert_eq!(first.kind, FindingKind::Reordered, "{first}");
        assert_eq!(first.index, Some(a as u64), "{first}");
    }
    // Only the event bytes swapped: the stored leaf hashes tell where each belongs.
    let mut log = log(20, &[20]);
    let data = log.records[5].leaf_data.clone();
    log.records[5].leaf_data = log.records[11].leaf_data.clone();
    log.records[11].leaf_data = data;
    log.records[5].columns = None;
    log.records[11].columns = None;
    let report = verify(&log, Some(20));
    let first = report.first().unwrap();
    assert_eq!(
        (first.kind, first.index),
        (FindingKind::Reordered, Some(5)),
        "{first}"
    );
    assert!(first.detail.contains("11"), "{first}");
}

#[test]
fn forged_or_altered_heads_are_rejected() {
    let mut log = log(16, &[8, 16]);
    log.heads[1].signature[0] ^= 1;
    let report = verify(&log, Some(16));
    assert!(report.findings.iter().any(|f| f.kind == FindingKind::Head));
    // A head re-signed by another key over a rewritten log is untrusted.
    let mut log = self::log(16, &[16]);
    let forger = HeadSigner::new(SigningKey::from_bytes(&[4; 32]), "test");
    let root = log.heads[0].root_hash.clone();
    log.heads[0] = forger.sign(
        16,
        root.try_into().unwrap(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    let report = verify(&log, Some(16));
    assert!(report.first().unwrap().detail.contains("not trusted"));
}

#[test]
fn a_missing_node_is_reported() {
    let mut log = log(16, &[16]);
    log.nodes.pop();
    let report = verify(&log, Some(16));
    assert_eq!(report.first().unwrap().kind, FindingKind::Node);
}

#[test]
fn a_partial_export_verifies_from_its_checkpoint() {
    let log = log(40, &[10, 25, 40]);
    let tree =
        MemoryTree::from_leaf_hashes(log.records.iter().map(|r| leaf_hash(&r.leaf_data))).unwrap();
    let frontier = veil_core::merkle::Appender::from_source(&tree, 20).unwrap();
    let mut verifier = Verifier::new(vec![log.signer.public_key()])
        .with_checkpoint(20, frontier.frontier().to_vec());
    for record in &log.records[20..] {
        verifier.push(record.clone());
    }
    let report = verifier.rebuild().finish(log.heads.clone(), None);
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.heads_verified, 2);
    // A wrong checkpoint cannot make the heads check out.
    let mut verifier =
        Verifier::new(vec![log.signer.public_key()]).with_checkpoint(20, vec![[0; 32]; 2]);
    for record in &log.records[20..] {
        verifier.push(record.clone());
    }
    let report = verifier.rebuild().finish(log.heads.clone(), None);
    assert!(!report.intact());
}
