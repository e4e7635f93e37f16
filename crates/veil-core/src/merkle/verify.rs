//! Proof verification as specified in RFC 9162 sections 2.1.3.2 and 2.1.4.2.
//!
//! Inputs arrive as raw bytes (from the wire or a database), so every hash length is
//! checked here, and the proof length must be exactly what the sizes imply.

use super::proof::{consistency_plan, inclusion_plan};
use super::{Hash, MerkleError, node_hash};

fn as_hash(bytes: &[u8]) -> Result<Hash, MerkleError> {
    bytes.try_into().map_err(|_| MerkleError::HashLength)
}

fn proof_hashes<P: AsRef<[u8]>>(proof: &[P], expected: usize) -> Result<Vec<Hash>, MerkleError> {
    if proof.len() != expected {
        return Err(MerkleError::ProofLength {
            expected,
            actual: proof.len(),
        });
    }
    proof.iter().map(|hash| as_hash(hash.as_ref())).collect()
}

/// Right-shifts `fn_` and `sn` together until the lowest bit of `fn_` is set or `fn_` is
/// 0 (the "repeat" steps of both RFC 9162 algorithms).
fn skip_right_edge(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// The root that `proof` leads to from `leaf_hash` at `index` in a tree of `size`.
pub fn root_from_inclusion_proof<P: AsRef<[u8]>>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[P],
) -> Result<Hash, MerkleError> {
    let expected = inclusion_plan(index, size)?.len();
    let proof = proof_hashes(proof, expected)?;
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = as_hash(leaf_hash)?;
    for p in &proof {
        if sn == 0 {
            return Err(MerkleError::ProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                skip_right_edge(&mut fn_, &mut sn);
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::ProofLength {
            expected,
            actual: proof.len(),
        });
    }
    Ok(r)
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` with root `root`.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: &[P],
    root: &[u8],
) -> Result<(), MerkleError> {
    let root = as_hash(root)?;
    let computed = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    if computed != root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.
///
/// Follows transparency-dev/merkle: `size1 == 0` is rejected (a consistency proof from
/// the empty tree proves nothing); equal sizes need an empty proof and equal roots.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[P],
) -> Result<(), MerkleError> {
    if size1 > size2 {
        return Err(MerkleError::SizeOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(MerkleError::EmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::ProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        };
    }
    let root1 = as_hash(root1)?;
    let root2 = as_hash(root2)?;
    let expected = consistency_plan(size1, size2)?.len();
    let mut path = proof_hashes(proof, expected)?;
    // RFC 9162 2.1.4.2 step 2: a power-of-two first tree is its own first proof node.
    if size1.is_power_of_two() {
        path.insert(0, root1);
    }
    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (first, rest) = path.split_first().ok_or(MerkleError::ProofLength {
        expected,
        actual: 0,
    })?;
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if sn == 0 {
            return Err(MerkleError::ProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                skip_right_edge(&mut fn_, &mut sn);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(MerkleError::ProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if fr != root1 || sr != root2 {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}
