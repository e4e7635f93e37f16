//! An in-memory node store, for tests and tools.

use super::appender::Appender;
use super::source::NodeSource;
use super::{Hash, MerkleError};

/// Every perfect subtree of a log kept in memory, grown with an [`Appender`] exactly as
/// a database-backed log would be.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    appender: Appender,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of the given leaf hashes.
    pub fn from_leaf_hashes(
        leaf_hashes: impl IntoIterator<Item = Hash>,
    ) -> Result<Self, MerkleError> {
        let mut tree = Self::new();
        for leaf in leaf_hashes {
            tree.append(leaf)?;
        }
        Ok(tree)
    }

    /// Appends a leaf hash, storing every node the append completes.
    pub fn append(&mut self, leaf_hash: Hash) -> Result<(), MerkleError> {
        for node in self.appender.append(leaf_hash)? {
            let level = node.addr.level as usize;
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            // Appends complete nodes left to right, so each lands at the end of its level.
            debug_assert_eq!(self.levels[level].len() as u64, node.addr.index);
            self.levels[level].push(node.hash);
        }
        Ok(())
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.appender.size()
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.appender.root()
    }

    /// The stored nodes of one level.
    pub fn level(&self, level: u32) -> &[Hash] {
        self.levels.get(level as usize).map_or(&[], Vec::as_slice)
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        usize::try_from(index)
            .ok()
            .and_then(|index| self.level(level).get(index))
            .copied()
            .ok_or(MerkleError::MissingNode { level, index })
    }
}
