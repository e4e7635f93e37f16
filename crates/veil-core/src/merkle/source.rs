//! Addresses of perfect subtrees and the store they are read from.

use std::collections::{BTreeMap, HashMap};

use super::{Hash, MerkleError};

/// A perfect subtree: the `index`-th node of `level`, covering leaves
/// `[index * 2^level, (index + 1) * 2^level)`. Level 0 holds the leaf hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    /// Height above the leaves.
    pub level: u32,
    /// Position within the level, from the left.
    pub index: u64,
}

impl NodeAddr {
    /// The node at `level`, `index`.
    pub fn new(level: u32, index: u64) -> Self {
        Self { level, index }
    }

    /// The first leaf it covers.
    pub fn first_leaf(&self) -> u64 {
        self.index << self.level
    }

    /// The sibling under the same parent.
    pub fn sibling(&self) -> Self {
        Self::new(self.level, self.index ^ 1)
    }
}

/// Reads stored perfect-subtree hashes. Only nodes wholly inside the tree size in use
/// are ever asked for.
pub trait NodeSource {
    /// The hash of the perfect subtree at `level`, `index`.
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        (**self).node(level, index)
    }
}

/// Nodes fetched in bulk (e.g. the rows of one query for a [`super::ProofPlan`]).
impl<S: std::hash::BuildHasher> NodeSource for HashMap<NodeAddr, Hash, S> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        self.get(&NodeAddr::new(level, index))
            .copied()
            .ok_or(MerkleError::MissingNode { level, index })
    }
}

/// Nodes fetched in bulk, ordered.
impl NodeSource for BTreeMap<NodeAddr, Hash> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        self.get(&NodeAddr::new(level, index))
            .copied()
            .ok_or(MerkleError::MissingNode { level, index })
    }
}

/// The fewest perfect subtrees covering leaves `[begin, end)`, left to right.
pub fn range_nodes(mut begin: u64, end: u64) -> Vec<NodeAddr> {
    let mut nodes = Vec::new();
    while begin < end {
        let aligned = if begin == 0 {
            63
        } else {
            begin.trailing_zeros()
        };
        let fits = 63 - (end - begin).leading_zeros();
        let level = aligned.min(fits);
        nodes.push(NodeAddr::new(level, begin >> level));
        begin += 1 << level;
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_nodes_cover_exactly_with_perfect_aligned_subtrees() {
        for begin in 0..40u64 {
            for end in begin..70u64 {
                let nodes = range_nodes(begin, end);
                let mut next = begin;
                for node in &nodes {
                    assert_eq!(node.first_leaf(), next);
                    next += 1 << node.level;
                }
                assert_eq!(next, end);
            }
        }
        assert_eq!(
            range_nodes(0, 13),
            vec![
                NodeAddr::new(3, 0),
                NodeAddr::new(2, 2),
                NodeAddr::new(0, 12)
            ]
        );
        assert_eq!(range_nodes(0, u64::MAX).len(), 64);
    }
}
