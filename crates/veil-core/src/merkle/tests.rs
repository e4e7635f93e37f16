#![allow(clippy::unwrap_used)]
//! Checks against straight transcriptions of RFC 6962 section 2.1 (recursive MTH, PATH
//! and PROOF), independent of the O(log n) algorithms under test.

use std::collections::HashMap;

use super::*;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn split(n: usize) -> usize {
    largest_power_of_two_below(n as u64) as usize
}

/// RFC 6962 2.1.1 PATH(m, D[n]).
fn reference_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split(d.len());
    if m < k {
        let mut path = reference_path(m, &d[..k]);
        path.push(root(&d[k..]));
        path
    } else {
        let mut path = reference_path(m - k, &d[k..]);
        path.push(root(&d[..k]));
        path
    }
}

/// RFC 6962 2.1.2 SUBPROOF(m, D[n], b).
fn reference_subproof(m: usize, d: &[Hash], complete: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if complete { Vec::new() } else { vec![root(d)] };
    }
    let k = split(n);
    if m <= k {
        let mut proof = reference_subproof(m, &d[..k], complete);
        proof.push(root(&d[k..]));
        proof
    } else {
        let mut proof = reference_subproof(m - k, &d[k..], false);
        proof.push(root(&d[..k]));
        proof
    }
}

#[test]
fn hashes_use_domain_prefixes() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_ne!(leaf_hash(b"ab"), node_hash(b"a", b"b"));
}

#[test]
fn appender_and_stored_nodes_match_reference_roots() {
    let all = leaves(70);
    let tree = MemoryTree::from_leaf_hashes(all.iter().copied()).unwrap();
    let mut appender = Appender::new();
    assert_eq!(appender.root(), empty_root());
    for size in 0..=70u64 {
        let reference = root(&all[..size as usize]);
        assert_eq!(root_at(&tree, size).unwrap(), reference, "size {size}");
        assert_eq!(appender.root(), reference, "size {size}");
        assert_eq!(appender.frontier().len(), size.count_ones() as usize);
        if size < 70 {
            let created = appender.append(all[size as usize]).unwrap();
            assert_eq!(created.len(), 1 + size.trailing_ones() as usize);
        }
    }
    assert_eq!(tree.level(6).len(), 1);
    assert_eq!(tree.level(1).len(), 35);
}

#[test]
fn generated_proofs_match_the_rfc_definitions_and_verify() {
    let all = leaves(40);
    let tree = MemoryTree::from_leaf_hashes(all.iter().copied()).unwrap();
    for size in 1..=40usize {
        let d = &all[..size];
        let root_hash = root(d);
        for index in 0..size {
            let proof = inclusion_proof(&tree, index as u64, size as u64).unwrap();
            assert_eq!(proof, reference_path(index, d), "inclusion {index}/{size}");
            verify_inclusion(&d[index], index as u64, size as u64, &proof, &root_hash).unwrap();
        }
        for size1 in 1..=size {
            let proof = consistency_proof(&tree, size1 as u64, size as u64).unwrap();
            let expected = if size1 == size {
                Vec::new()
            } else {
                reference_subproof(size1, d, true)
            };
            assert_eq!(proof, expected, "consistency {size1}->{size}");
            verify_consistency(
                size1 as u64,
                size as u64,
                &root(&d[..size1]),
                &root_hash,
                &proof,
            )
            .unwrap();
        }
    }
}

#[test]
fn plans_read_logarithmically_many_nodes() {
    let size = (1u64 << 40) + 12345;
    for index in [0, 1, size / 2, size - 2, size - 1] {
        let plan = inclusion_plan(index, size).unwrap();
        assert!(
            plan.len() <= 41 && plan.nodes().count() <= 2 * 41,
            "{index}"
        );
    }
    let plan = consistency_plan(size / 3, size).unwrap();
    assert!(plan.nodes().count() <= 2 * 42);
    assert_eq!(root_plan(size).len(), size.count_ones() as usize);
}

#[test]
fn a_bulk_fetched_map_serves_as_node_source() {
    let all = leaves(21);
    let tree = MemoryTree::from_leaf_hashes(all.iter().copied()).unwrap();
    let plan = inclusion_plan(13, 21).unwrap();
    let fetched: HashMap<NodeAddr, Hash> = plan
        .nodes()
        .map(|node| (node, tree.node(node.level, node.index).unwrap()))
        .collect();
    assert_eq!(plan.resolve(&fetched).unwrap(), reference_path(13, &all));
    let missing = inclusion_plan(14, 21)
        .unwrap()
        .resolve(&HashMap::<NodeAddr, Hash>::new());
    assert!(matches!(missing, Err(MerkleError::MissingNode { .. })));
}

#[test]
fn appender_resumes_from_a_stored_frontier() {
    let all = leaves(30);
    let tree = MemoryTree::from_leaf_hashes(all[..19].iter().copied()).unwrap();
    let mut resumed = Appender::from_source(&tree, 19).unwrap();
    for leaf in &all[19..] {
        resumed.append(*leaf).unwrap();
    }
    assert_eq!(resumed.root(), root(&all));
    assert_eq!(
        Appender::from_frontier(19, vec![[0; 32]]),
        Err(MerkleError::Frontier {
            expected: 3,
            actual: 1
        })
    );
}

#[test]
fn verifiers_reject_bad_shapes() {
    let all = leaves(8);
    let tree = MemoryTree::from_leaf_hashes(all.iter().copied()).unwrap();
    let root8 = root(&all);
    let proof = inclusion_proof(&tree, 3, 8).unwrap();
    let short: &[u8] = &[0; 31];
    assert_eq!(
        verify_inclusion(&all[3], 3, 8, &proof, short),
        Err(MerkleError::HashLength)
    );
    assert_eq!(
        verify_inclusion(short, 3, 8, &proof, &root8),
        Err(MerkleError::HashLength)
    );
    assert_eq!(
        verify_inclusion(&all[3], 8, 8, &proof, &root8),
        Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        verify_inclusion(&all[3], 3, 8, &proof[..2], &root8),
        Err(MerkleError::ProofLength {
            expected: 3,
            actual: 2
        })
    );
    assert_eq!(
        verify_inclusion(&all[4], 3, 8, &proof, &root8),
        Err(MerkleError::RootMismatch)
    );
    let empty: [Hash; 0] = [];
    assert_eq!(
        verify_consistency(5, 4, &root8, &root8, &empty),
        Err(MerkleError::SizeOrder { size1: 5, size2: 4 })
    );
    assert_eq!(
        verify_consistency(0, 8, &root8, &root8, &empty),
        Err(MerkleError::EmptyTree)
    );
    assert!(verify_consistency(8, 8, &root8, &root8, &empty).is_ok());
    assert!(verify_consistency(8, 8, &root8, &root8, &proof).is_err());
}
