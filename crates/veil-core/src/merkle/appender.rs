//! Appending leaves in O(log n) (amortized O(1)) with the right-edge frontier.

use super::source::{NodeAddr, NodeSource, range_nodes};
use super::{Hash, MerkleError, empty_root, fold_right, node_hash};

/// A perfect-subtree node created by an append, to be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewNode {
    /// Where it goes.
    pub addr: NodeAddr,
    /// Its hash.
    pub hash: Hash,
}

/// The state needed to append: the tree size and the roots of the perfect subtrees
/// covering it (one per set bit of the size, largest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appender {
    size: u64,
    frontier: Vec<Hash>,
}

impl Appender {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored nodes that make up the frontier of a tree of `size`.
    pub fn frontier_nodes(size: u64) -> Vec<NodeAddr> {
        range_nodes(0, size)
    }

    /// Resumes from a frontier loaded from storage (hashes of
    /// [`Appender::frontier_nodes`], in that order).
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, MerkleError> {
        let expected = size.count_ones() as usize;
        if frontier.len() != expected {
            return Err(MerkleError::Frontier {
                expected,
                actual: frontier.len(),
            });
        }
        Ok(Self { size, frontier })
    }

    /// Resumes by reading the frontier of a tree of `size` from `source`.
    pub fn from_source<S: NodeSource + ?Sized>(source: &S, size: u64) -> Result<Self, MerkleError> {
        let frontier = Self::frontier_nodes(size)
            .into_iter()
            .map(|node| source.node(node.level, node.index))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_frontier(size, frontier)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frontier hashes, largest subtree first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        fold_right(&self.frontier).unwrap_or_else(empty_root)
    }

    /// Appends a leaf hash and returns the nodes to store: the leaf at level 0 and every
    /// perfect subtree it completes (as many as the trailing one bits of the old size).
    pub fn append(&mut self, leaf_hash: Hash) -> Result<Vec<NewNode>, MerkleError> {
        if self.size == u64::MAX {
            return Err(MerkleError::TreeFull);
        }
        let mut node = NewNode {
            addr: NodeAddr::new(0, self.size),
            hash: leaf_hash,
        };
        let mut created = Vec::with_capacity(1 + self.size.trailing_ones() as usize);
        created.push(node);
        let mut carry = self.size;
        while carry & 1 == 1 {
            let left = self.frontier.pop().ok_or(MerkleError::Frontier {
                expected: self.size.count_ones() as usize,
                actual: 0,
            })?;
            node = NewNode {
                addr: NodeAddr::new(node.addr.level + 1, node.addr.index >> 1),
                hash: node_hash(&left, &node.hash),
            };
            created.push(node);
            carry >>= 1;
        }
        self.frontier.push(node.hash);
        self.size += 1;
        Ok(created)
    }
}
