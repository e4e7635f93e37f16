//! RFC 6962 / RFC 9162 Merkle tree (SHA-256): hashing, proofs over stored nodes, an
//! O(log n) appender, and the RFC 9162 verifiers.
//!
//! Storage model (for the audit service): every *perfect* subtree root is stored once
//! as `(level, index) -> hash`, level 0 being the leaf hashes; such a node never changes
//! as the log grows. Roots and proofs for any tree size are computed from O(log n) of
//! these nodes ([`ProofPlan`] lists which, so a database can fetch them in one query),
//! and the right-edge "ephemeral" nodes of a non-power-of-two tree are recomputed from
//! them. [`Appender`] keeps the right-edge perfect subtrees (the frontier) and reports
//! the new perfect nodes to store on each append.

mod appender;
mod memory;
mod proof;
mod source;
mod verify;

use sha2::{Digest as _, Sha256};

pub use appender::{Appender, NewNode};
pub use memory::MemoryTree;
pub use proof::{
    ProofPlan, consistency_plan, consistency_proof, inclusion_plan, inclusion_proof, root_at,
    root_plan,
};
pub use source::{NodeAddr, NodeSource, range_nodes};
pub use verify::{root_from_inclusion_proof, verify_consistency, verify_inclusion};

/// A SHA-256 tree hash.
pub type Hash = [u8; HASH_LEN];
/// Length of a [`Hash`].
pub const HASH_LEN: usize = 32;

/// Why a proof, a root or a tree operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// Leaf index not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// First tree larger than the second.
    #[error("first tree size {size1} is larger than second tree size {size2}")]
    SizeOrder {
        /// Older size.
        size1: u64,
        /// Newer size.
        size2: u64,
    },
    /// Consistency from an empty tree proves nothing and is rejected.
    #[error("consistency with an empty tree is meaningless")]
    EmptyTree,
    /// A leaf hash or root that is not 32 bytes.
    #[error("hash is not 32 bytes")]
    HashLength,
    /// A proof with the wrong number of hashes.
    #[error("proof has {actual} hashes, expected {expected}")]
    ProofLength {
        /// Hashes the proof must have.
        expected: usize,
        /// Hashes it has.
        actual: usize,
    },
    /// The proof does not lead to the given root(s).
    #[error("proof does not match the root")]
    RootMismatch,
    /// A node the computation needs is not in the store.
    #[error("node at level {level} index {index} is not stored")]
    MissingNode {
        /// Level of the node.
        level: u32,
        /// Index of the node within its level.
        index: u64,
    },
    /// A frontier whose hash count does not fit its tree size.
    #[error("frontier has {actual} hashes, expected {expected}")]
    Frontier {
        /// Hashes a frontier of that size has (the number of set bits of the size).
        expected: usize,
        /// Hashes given.
        actual: usize,
    },
    /// The tree already holds 2^64 - 1 leaves.
    #[error("tree is full")]
    TreeFull,
}

/// Leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Merkle Tree Hash of `leaf_hashes` straight from RFC 6962 section 2.1 (recursive split
/// at the largest power of two below n). A reference for tests and full re-verification.
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let split = largest_power_of_two_below(leaf_hashes.len() as u64) as usize;
            node_hash(&root(&leaf_hashes[..split]), &root(&leaf_hashes[split..]))
        }
    }
}

/// The largest power of two strictly below `n` (n >= 2).
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Right fold of the perfect subtrees covering `[begin, end)` where `begin` is aligned to
/// a power of two at least `end - begin`: exactly RFC 6962's MTH of that range.
fn fold_right(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right)),
    )
}

#[cfg(test)]
mod tests;
