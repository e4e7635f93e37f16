//! An in-memory copy of the tree's perfect-subtree hashes, so that a proof needs no
//! query (or one, for the lowest levels when the log outgrew the memory budget).
//!
//! Postgres stays the source of truth: the cache only ever holds hashes read from
//! `entries`/`nodes` or computed by the writer for a batch it committed, level by level
//! in index order, for the first `size` leaves. The writer extends it after each
//! commit; a background task loads it at start and catches up with what other replicas
//! appended. A node the cache lacks is read from Postgres, so a cold or stale cache
//! only costs time, never correctness. When the hashes outgrow the budget, the lowest
//! level is dropped (halving the memory each time); proofs then read those few nodes
//! near the leaf with one indexed query.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use veil_core::merkle::{Hash, NewNode, NodeAddr};

use crate::error::AuditError;
use crate::store::tree::{self, Nodes};

/// Leaves loaded per catch-up query.
const CHUNK: u64 = 65_536;
/// Memory per cached hash.
const HASH_BYTES: usize = std::mem::size_of::<Hash>();

/// The cache; share it with `Arc`.
#[derive(Debug)]
pub struct NodeCache {
    state: RwLock<State>,
    budget_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Leaves covered: `levels[l]` holds the `size >> l` complete nodes of level `l`.
    size: u64,
    /// Levels below it are not kept (the budget was reached).
    min_level: u32,
    levels: Vec<Vec<Hash>>,
}

impl State {
    fn bytes(&self) -> usize {
        self.levels.iter().map(Vec::len).sum::<usize>() * HASH_BYTES
    }

    fn get(&self, addr: NodeAddr) -> Option<Hash> {
        if addr.level < self.min_level {
            return None;
        }
        let level = self.levels.get(addr.level as usize)?;
        usize::try_from(addr.index)
            .ok()
            .and_then(|index| level.get(index))
            .copied()
    }

    /// Adds `hash` as node `addr`; false when it is not the next node of its level.
    fn push(&mut self, addr: NodeAddr, hash: Hash) -> bool {
        if addr.level < self.min_level {
            return true;
        }
        let level = addr.level as usize;
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        let nodes = &mut self.levels[level];
        if nodes.len() as u64 != addr.index {
            return false;
        }
        nodes.push(hash);
        true
    }

    fn reset(&mut self) {
        *self = State {
            min_level: self.min_level,
            ..State::default()
        };
    }
}

impl NodeCache {
    /// An empty cache that keeps at most about `budget_bytes` of hashes.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            state: RwLock::new(State::default()),
            budget_bytes,
        }
    }

    // A panic while holding the lock cannot leave a half-pushed hash that matters:
    // sizes and levels are checked on every push, so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leaves covered.
    pub fn size(&self) -> u64 {
        self.read().size
    }

    /// The lowest level kept (0 while everything fits the budget).
    pub fn min_level(&self) -> u32 {
        self.read().min_level
    }

    /// Approximate memory held by the hashes.
    pub fn bytes(&self) -> usize {
        self.read().bytes()
    }

    /// Records the nodes a committed batch created while the tree grew from `from` to
    /// `to` leaves (as [`veil_core::merkle::Appender::append`] returned them). Ignored
    /// when the cache is not at `from`: catch-up fills the gap from Postgres.
    pub fn extend(&self, from: u64, to: u64, nodes: &[NewNode]) {
        let mut state = self.write();
        if state.size != from {
            return;
        }
        for node in nodes {
            if !state.push(node.addr, node.hash) {
                tracing::warn!(
                    level = node.addr.level,
                    index = node.addr.index,
                    "proof cache out of order; reloading it"
                );
                state.reset();
                return;
            }
        }
        state.size = to;
        self.enforce_budget(&mut state);
    }

    fn enforce_budget(&self, state: &mut State) {
        while state.bytes() > self.budget_bytes && (state.min_level as usize) < state.levels.len() {
            let lowest = state.min_level as usize;
            state.levels[lowest] = Vec::new();
            state.min_level += 1;
            tracing::info!(
                min_level = state.min_level,
                "proof cache over its budget; dropped its lowest level"
            );
        }
    }

    /// The hashes of `addrs`: from memory where cached, the rest with one query.
    pub async fn fetch(
        &self,
        db: &PgPool,
        addrs: impl IntoIterator<Item = NodeAddr>,
    ) -> Result<Nodes, AuditError> {
        let mut found = Nodes::new();
        let mut missing = Vec::new();
        {
            let state = self.read();
            for addr in addrs {
                match state.get(addr) {
                    Some(hash) => {
                        found.insert(addr, hash);
                    }
                    None => missing.push(addr),
                }
            }
        }
        if !missing.is_empty() {
            found.extend(tree::fetch(db, missing).await?);
        }
        Ok(found)
    }

    /// Loads what the tree in Postgres holds beyond the cache, a chunk at a time;
    /// returns the size reached.
    pub async fn catch_up(&self, db: &PgPool) -> Result<u64, AuditError> {
        let target = tree::size(db).await?;
        loop {
            let (from, min_level) = {
                let state = self.read();
                (state.size, state.min_level)
            };
            if from >= target {
                return Ok(from);
            }
            let to = target.min(from.saturating_add(CHUNK));
            let leaves = if min_level == 0 {
                tree::leaf_range(db, from, to).await?
            } else {
                Vec::new()
            };
            let nodes = tree::node_ranges(db, from, to, min_level.max(1)).await?;
            let mut state = self.write();
            // The writer may have extended it meanwhile; then read again from there.
            if state.size != from || state.min_level != min_level {
                continue;
            }
            let ok = leaves
                .iter()
                .enumerate()
                .all(|(i, hash)| state.push(NodeAddr::new(0, from + i as u64), *hash))
                && nodes.iter().all(|(addr, hash)| state.push(*addr, *hash));
            if !ok {
                state.reset();
                return Err(AuditError::Inconsistent(format!(
                    "stored nodes for leaves {from}..{to} are incomplete"
                )));
            }
            state.size = to;
            self.enforce_budget(&mut state);
        }
    }

    /// Loads the cache, then catches up every `every` until `shutdown` (another replica
    /// may be the writer).
    pub async fn run(&self, db: PgPool, every: Duration, shutdown: CancellationToken) {
        loop {
            match self.catch_up(&db).await {
                Ok(size) => tracing::debug!(size, "proof cache caught up"),
                Err(error) => tracing::warn!(
                    error = %veil_core::error::ErrorChain(&error),
                    "proof cache catch-up failed; proofs read from Postgres meanwhile"
                ),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use veil_core::merkle::{Appender, MemoryTree, NodeSource, leaf_hash};

    use super::*;

    fn appended(count: u64) -> (Vec<NewNode>, MemoryTree) {
        let mut appender = Appender::new();
        let mut tree = MemoryTree::new();
        let mut nodes = Vec::new();
        for i in 0..count {
            let leaf = leaf_hash(&i.to_be_bytes());
            nodes.extend(appender.append(leaf).unwrap());
            tree.append(leaf).unwrap();
        }
        (nodes, tree)
    }

    #[test]
    fn extended_nodes_match_the_tree_and_stop_at_its_size() {
        let (nodes, tree) = appended(11);
        let cache = NodeCache::new(usize::MAX);
        cache.extend(0, 11, &nodes);
        assert_eq!(cache.size(), 11);
        let state = cache.read();
        for level in 0..4u32 {
            for index in 0..(11u64 >> level) {
                assert_eq!(
                    state.get(NodeAddr::new(level, index)),
                    Some(tree.node(level, index).unwrap()),
                    "{level}/{index}"
                );
            }
            assert_eq!(state.get(NodeAddr::new(level, 11 >> level)), None);
        }
    }

    #[test]
    fn a_batch_from_another_size_is_ignored() {
        let (nodes, _) = appended(4);
        let cache = NodeCache::new(usize::MAX);
        cache.extend(2, 4, &nodes[3..]);
        assert_eq!(cache.size(), 0);
        assert_eq!(cache.read().get(NodeAddr::new(0, 2)), None);
    }

    #[test]
    fn over_budget_the_lowest_levels_go_first() {
        let (nodes, tree) = appended(64);
        // 64 leaves + 63 inner nodes; room for about half of them.
        let cache = NodeCache::new(64 * HASH_BYTES);
        cache.extend(0, 64, &nodes);
        assert_eq!(cache.min_level(), 1);
        assert!(cache.bytes() <= 64 * HASH_BYTES);
        let state = cache.read();
        assert_eq!(state.get(NodeAddr::new(0, 5)), None);
        assert_eq!(
            state.get(NodeAddr::new(1, 5)),
            Some(tree.node(1, 5).unwrap())
        );
    }
}
