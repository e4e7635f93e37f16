//! RFC 6962 / RFC 9162 known-answer vectors from `testdata/rfc6962_vectors.json`: every
//! root, every inclusion and consistency proof generated from stored nodes AND verified,
//! and every positive and negative verifier probe.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use veil_core::merkle::{
    Appender, Hash, MemoryTree, NodeSource, consistency_proof, empty_root, inclusion_proof,
    leaf_hash, node_hash, root, root_at, verify_consistency, verify_inclusion,
};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/rfc6962_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap()).unwrap()
}

fn hash(value: &Value) -> Hash {
    bytes(value).try_into().unwrap()
}

fn list(value: &Value) -> &Vec<Value> {
    value.as_array().unwrap()
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap()
}

fn flip_first_bit(hash: &Hash) -> Hash {
    let mut flipped = *hash;
    flipped[0] ^= 0x80;
    flipped
}

#[test]
fn hasher_known_answers() {
    let vectors = vectors();
    let kats = list(&vectors["upstream"]["hasher_kats"]);
    assert_eq!(kats.len(), 4);
    for kat in kats {
        let expected = hash(&kat["expected_hex"]);
        let actual = match kat["op"].as_str().unwrap() {
            "empty_root" => empty_root(),
            "leaf_hash" => leaf_hash(&bytes(&kat["input_hex"])),
            "node_hash" => node_hash(&bytes(&kat["left_hex"]), &bytes(&kat["right_hex"])),
            other => panic!("unknown op {other}"),
        };
        assert_eq!(actual, expected, "{}", kat["desc"]);
    }
}

/// Checks one data set; returns (roots, inclusion proofs, consistency proofs) checked.
fn check_dataset(name: &str, set: &Value) -> (usize, usize, usize) {
    let leaf_hashes: Vec<Hash> = list(&set["leaves_hex"])
        .iter()
        .map(|leaf| leaf_hash(&bytes(leaf)))
        .collect();
    let expected_leaf_hashes: Vec<Hash> = list(&set["leaf_hashes_hex"]).iter().map(hash).collect();
    assert_eq!(leaf_hashes, expected_leaf_hashes, "{name}: leaf hashes");
    let tree = MemoryTree::from_leaf_hashes(leaf_hashes.iter().copied()).unwrap();

    let roots = set["roots_by_size_hex"].as_object().unwrap();
    let mut appender = Appender::new();
    for size in 0..roots.len() as u64 {
        let expected = hash(&roots[&size.to_string()]);
        assert_eq!(
            root(&leaf_hashes[..size as usize]),
            expected,
            "{name}: mth {size}"
        );
        assert_eq!(
            root_at(&tree, size).unwrap(),
            expected,
            "{name}: stored {size}"
        );
        assert_eq!(appender.root(), expected, "{name}: appender {size}");
        if let Some(leaf) = leaf_hashes.get(size as usize) {
            appender.append(*leaf).unwrap();
        }
    }

    if let Some(levels) = set.get("node_hashes_by_level_hex") {
        for (level, nodes) in list(levels).iter().enumerate() {
            for (index, node) in list(nodes).iter().enumerate() {
                assert_eq!(
                    tree.node(level as u32, index as u64).unwrap(),
                    hash(node),
                    "{name}: node {level}/{index}"
                );
            }
        }
    }

    let inclusions = list(&set["inclusion_proofs"]);
    for case in inclusions {
        let (index, size) = (number(&case["leaf_index"]), number(&case["tree_size"]));
        let label = format!("{name}: inclusion {index}/{size}");
        let expected: Vec<Hash> = list(&case["proof_hex"]).iter().map(hash).collect();
        let leaf = hash(&case["leaf_hash_hex"]);
        let root_hash = hash(&case["root_hex"]);
        assert_eq!(leaf, leaf_hashes[index as usize], "{label}");
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap(),
            expected,
            "{label}"
        );
        verify_inclusion(&leaf, index, size, &expected, &root_hash).unwrap();
        assert!(
            verify_inclusion(&leaf, index, size, &expected, &flip_first_bit(&root_hash)).is_err()
        );
        for position in 0..expected.len() {
            let mut bad = expected.clone();
            bad[position] = flip_first_bit(&bad[position]);
            assert!(
                verify_inclusion(&leaf, index, size, &bad, &root_hash).is_err(),
                "{label}"
            );
        }
    }

    let consistencies = list(&set["consistency_proofs"]);
    for case in consistencies {
        let (size1, size2) = (number(&case["size1"]), number(&case["size2"]));
        let label = format!("{name}: consistency {size1}->{size2}");
        let expected: Vec<Hash> = list(&case["proof_hex"]).iter().map(hash).collect();
        let (root1, root2) = (hash(&case["root1_hex"]), hash(&case["root2_hex"]));
        assert_eq!(root1, root_at(&tree, size1).unwrap(), "{label}");
        assert_eq!(root2, root_at(&tree, size2).unwrap(), "{label}");
        assert_eq!(
            consistency_proof(&tree, size1, size2).unwrap(),
            expected,
            "{label}"
        );
        verify_consistency(size1, size2, &root1, &root2, &expected).unwrap();
        assert!(
            verify_consistency(size1, size2, &flip_first_bit(&root1), &root2, &expected).is_err()
        );
        assert!(
            verify_consistency(size1, size2, &root1, &flip_first_bit(&root2), &expected).is_err()
        );
        for position in 0..expected.len() {
            let mut bad = expected.clone();
            bad[position] = flip_first_bit(&bad[position]);
            assert!(
                verify_consistency(size1, size2, &root1, &root2, &bad).is_err(),
                "{label}"
            );
        }
    }
    (roots.len(), inclusions.len(), consistencies.len())
}

#[test]
fn every_dataset_root_and_proof() {
    let vectors = vectors();
    let mut totals = vec![check_dataset("upstream", &vectors["upstream"])];
    for set in list(&vectors["derived"]) {
        totals.push(check_dataset(set["name"].as_str().unwrap(), set));
    }
    assert_eq!(totals, vec![(9, 5, 5), (9, 36, 36), (65, 161, 181)]);
}

#[test]
fn every_verifier_probe() {
    let vectors = vectors();
    let probes = &vectors["upstream"]["verifier_probes"];
    let mut outcomes = (0, 0);
    for probe in list(&probes["inclusion"]) {
        let proof: Vec<Vec<u8>> = list(&probe["proof_hex"]).iter().map(bytes).collect();
        let result = verify_inclusion(
            &bytes(&probe["leaf_hash_hex"]),
            number(&probe["leaf_index"]),
            number(&probe["tree_size"]),
            &proof,
            &bytes(&probe["root_hex"]),
        );
        let want_error = probe["want_error"].as_bool().unwrap();
        assert_eq!(
            result.is_err(),
            want_error,
            "{}: {result:?}",
            probe["source_file"]
        );
        outcomes.0 += 1;
    }
    for probe in list(&probes["consistency"]) {
        let proof: Vec<Vec<u8>> = list(&probe["proof_hex"]).iter().map(bytes).collect();
        let result = verify_consistency(
            number(&probe["size1"]),
            number(&probe["size2"]),
            &bytes(&probe["root1_hex"]),
            &bytes(&probe["root2_hex"]),
            &proof,
        );
        let want_error = probe["want_error"].as_bool().unwrap();
        assert_eq!(
            result.is_err(),
            want_error,
            "{}: {result:?}",
            probe["source_file"]
        );
        outcomes.1 += 1;
    }
    assert_eq!(outcomes, (98, 98));
}
