//! Property tests: for random tree sizes and positions, every generated proof verifies
//! and any single flipped bit in the proof or the roots makes it fail.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use veil_core::merkle::{
    Hash, MemoryTree, consistency_proof, inclusion_proof, leaf_hash, root, root_at,
    verify_consistency, verify_inclusion,
};

fn tree(size: u64) -> (Vec<Hash>, MemoryTree) {
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let tree = MemoryTree::from_leaf_hashes(leaves.iter().copied()).unwrap();
    (leaves, tree)
}

fn flip(hash: &mut Hash, bit: usize) {
    hash[bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inclusion_proofs_verify_and_any_flip_fails(
        size in 1u64..600,
        index_seed in any::<u64>(),
        which in any::<usize>(),
        bit in 0usize..256,
    ) {
        let (leaves, tree) = tree(size);
        let index = index_seed % size;
        let root_hash = root_at(&tree, size).unwrap();
        prop_assert_eq!(root_hash, root(&leaves));
        let proof = inclusion_proof(&tree, index, size).unwrap();
        prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root_hash).is_ok());

        let mut bad_root = root_hash;
        flip(&mut bad_root, bit);
        prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &bad_root).is_err());
        let mut bad_leaf = leaves[index as usize];
        flip(&mut bad_leaf, bit);
        prop_assert!(verify_inclusion(&bad_leaf, index, size, &proof, &root_hash).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let position = which % bad.len();
            flip(&mut bad[position], bit);
            prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &bad, &root_hash).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_flip_fails(
        size2 in 2u64..600,
        size1_seed in any::<u64>(),
        which in any::<usize>(),
        bit in 0usize..256,
    ) {
        let (_, tree) = tree(size2);
        let size1 = 1 + size1_seed % (size2 - 1);
        let root1 = root_at(&tree, size1).unwrap();
        let root2 = root_at(&tree, size2).unwrap();
        let proof = consistency_proof(&tree, size1, size2).unwrap();
        prop_assert!(!proof.is_empty());
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &proof).is_ok());

        let mut bad_root1 = root1;
        flip(&mut bad_root1, bit);
        prop_assert!(verify_consistency(size1, size2, &bad_root1, &root2, &proof).is_err());
        let mut bad_root2 = root2;
        flip(&mut bad_root2, bit);
        prop_assert!(verify_consistency(size1, size2, &root1, &bad_root2, &proof).is_err());
        let mut bad = proof.clone();
        let position = which % bad.len();
        flip(&mut bad[position], bit);
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &bad).is_err());
        prop_assert!(verify_consistency(size1, size2, &root1, &root2, &proof[1..]).is_err());
    }
}
