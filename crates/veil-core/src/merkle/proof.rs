//! Inclusion and consistency proofs (RFC 6962 section 2.1.1 PATH, 2.1.2 PROOF) computed
//! from stored perfect subtrees with O(log n) reads.

use super::source::{NodeAddr, NodeSource, range_nodes};
use super::{Hash, MerkleError, empty_root, fold_right};

/// Which stored nodes make up each hash of a proof. An element of one node is that
/// node's hash; an element of several is the ephemeral right-edge node they cover,
/// folded right to left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofPlan {
    elements: Vec<Vec<NodeAddr>>,
}

impl ProofPlan {
    /// Number of hashes in the proof.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether the proof is empty.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Every stored node the proof needs (O(log n); fetch them in one query).
    pub fn nodes(&self) -> impl Iterator<Item = NodeAddr> + '_ {
        self.elements.iter().flatten().copied()
    }

    /// Reads the nodes from `source` and assembles the proof hashes.
    pub fn resolve<S: NodeSource + ?Sized>(&self, source: &S) -> Result<Vec<Hash>, MerkleError> {
        self.elements
            .iter()
            .map(|element| fold_nodes(source, element))
            .collect()
    }
}

fn fold_nodes<S: NodeSource + ?Sized>(source: &S, nodes: &[NodeAddr]) -> Result<Hash, MerkleError> {
    let hashes = nodes
        .iter()
        .map(|node| source.node(node.level, node.index))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(fold_right(&hashes).unwrap_or_else(empty_root))
}

/// The proof elements from the complete node `seed` up to the root of a tree of `size`
/// (transparency-dev/merkle's `proof.nodes`): siblings up to the node where the path to
/// `seed` forks from the right edge, then the ephemeral node right of the fork (if any),
/// then the perfect subtrees left of the fork, lowest first.
fn path_from(seed: NodeAddr, size: u64) -> Vec<Vec<NodeAddr>> {
    let edge = size >> seed.level;
    let inner = 63 - (seed.index ^ edge).leading_zeros();
    let fork = NodeAddr::new(seed.level + inner, seed.index >> inner);
    let begin = fork.first_leaf();
    let end = begin + (1 << fork.level);

    let mut elements: Vec<Vec<NodeAddr>> = (0..inner)
        .map(|step| vec![NodeAddr::new(seed.level + step, seed.index >> step).sibling()])
        .collect();
    if end < size {
        elements.push(range_nodes(end, size));
    }
    elements.extend(
        range_nodes(0, begin)
            .into_iter()
            .rev()
            .map(|node| vec![node]),
    );
    elements
}

/// The nodes of an inclusion proof for leaf `index` in a tree of `size`.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    Ok(ProofPlan {
        elements: path_from(NodeAddr::new(0, index), size),
    })
}

/// The nodes of a consistency proof from `size1` to `size2` (RFC 6962 PROOF order; the
/// first hash is left out when `size1` is a power of two). Empty when the sizes are
/// equal or `size1` is 0.
pub fn consistency_plan(size1: u64, size2: u64) -> Result<ProofPlan, MerkleError> {
    if size1 > size2 {
        return Err(MerkleError::SizeOrder { size1, size2 });
    }
    if size1 == size2 || size1 == 0 {
        return Ok(ProofPlan {
            elements: Vec::new(),
        });
    }
    // The largest perfect subtree ending at size1; the proof is its inclusion path in
    // the tree of size2, preceded by the node itself unless it is the whole old tree.
    let level = size1.trailing_zeros();
    let seed = NodeAddr::new(level, (size1 - 1) >> level);
    let mut elements = Vec::new();
    if seed.index != 0 {
        elements.push(vec![seed]);
    }
    elements.extend(path_from(seed, size2));
    Ok(ProofPlan { elements })
}

/// The stored nodes whose right fold is the root of a tree of `size` (its frontier).
pub fn root_plan(size: u64) -> Vec<NodeAddr> {
    range_nodes(0, size)
}

/// Inclusion proof for leaf `index` in the tree of `size`, from stored nodes.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    inclusion_plan(index, size)?.resolve(source)
}

/// Consistency proof between tree sizes `size1 <= size2`, from stored nodes.
pub fn consistency_proof<S: NodeSource + ?Sized>(
    source: &S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, MerkleError> {
    consistency_plan(size1, size2)?.resolve(source)
}

/// Root of the tree of `size`, from its O(log n) frontier nodes.
pub fn root_at<S: NodeSource + ?Sized>(source: &S, size: u64) -> Result<Hash, MerkleError> {
    fold_nodes(source, &root_plan(size))
}
