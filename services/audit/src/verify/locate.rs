//! Rebuilding the tree, checking stored nodes and signed heads, and naming the first
//! tampered entry from all the evidence.

use std::collections::HashMap;

use veil_core::merkle::{
    Appender, Hash, MemoryTree, NodeSource, consistency_proof, node_hash, verify_consistency,
};

use super::{Finding, FindingKind, Report, Verifier};
use crate::tree_head::{self, PresentedHead};

/// The rebuilt tree, ready for stored nodes and heads.
#[derive(Debug)]
pub struct Rebuilt {
    verifier: Verifier,
    /// Every node, when the leaves start at 0 (not for a partial export).
    tree: Option<MemoryTree>,
    nodes_checked: u64,
    nodes_beyond_end: u64,
    /// The most precise mismatching stored node: (end of its range, level, index).
    worst_node: Option<(u64, u32, u64, Hash)>,
}

impl Verifier {
    /// Builds the tree of the leaves fed so far.
    pub fn rebuild(self) -> Rebuilt {
        let tree = (self.base == 0)
            .then(|| MemoryTree::from_leaf_hashes(self.leaves.iter().copied()).ok())
            .flatten();
        Rebuilt {
            verifier: self,
            tree,
            nodes_checked: 0,
            nodes_beyond_end: 0,
            worst_node: None,
        }
    }
}

impl Rebuilt {
    /// Compares one stored interior node with the rebuilt tree.
    pub fn check_node(&mut self, level: u32, index: u64, stored: &[u8]) {
        let Some(tree) = &self.tree else { return };
        self.nodes_checked += 1;
        let end = (index + 1) << level;
        if end > tree.size() {
            self.nodes_beyond_end += 1;
            return;
        }
        let Ok(rebuilt) = tree.node(level, index) else {
            return;
        };
        if rebuilt.as_slice() != stored {
            let stored: Hash = stored.try_into().unwrap_or([0; 32]);
            let candidate = (end, level, index, stored);
            if self
                .worst_node
                .is_none_or(|(e, l, _, _)| (end, level) < (e, l))
            {
                self.worst_node = Some(candidate);
            }
        }
    }
}

/// Perfect subtrees at levels above 0 in a tree of `size`.
fn interior_nodes(size: u64) -> u64 {
    (1..64).map(|level| size >> level).sum()
}

impl Rebuilt {
    /// Finishes the verification with the signed heads and, for a database, the size
    /// the tree state records.
    pub fn finish(self, heads: Vec<PresentedHead>, stored_size: Option<u64>) -> Report {
        finish(self, heads, stored_size)
    }
}

fn finish(mut rebuilt: Rebuilt, heads: Vec<PresentedHead>, stored_size: Option<u64>) -> Report {
    let n = rebuilt.verifier.size();
    let base = rebuilt.verifier.base;
    let mut findings = std::mem::take(&mut rebuilt.verifier.findings);
    classify_moved_leaves(&rebuilt.verifier, &mut findings);

    if let Some(stored_size) = stored_size {
        if stored_size > n {
            findings.push(Finding {
                kind: FindingKind::Removed,
                index: Some(n),
                end: Some(stored_size),
                detail: format!("the tree state records {stored_size} entries but {n} are stored"),
            });
        }
        let expected = interior_nodes(stored_size.min(n));
        let present = rebuilt.nodes_checked - rebuilt.nodes_beyond_end;
        if rebuilt.tree.is_some() && present < expected {
            findings.push(Finding {
                kind: FindingKind::Node,
                index: None,
                end: None,
                detail: format!("{} stored tree nodes are missing", expected - present),
            });
        }
    }
    if let Some(finding) = locate_by_node(&rebuilt) {
        findings.push(finding);
    }
    let mut report = Report {
        entries: n - base,
        nodes_checked: rebuilt.nodes_checked,
        ..Report::default()
    };
    check_heads(&rebuilt, heads, &mut findings, &mut report);
    // The narrowest evidence first: a range that ends later says less about where the
    // first tampering is than an exact entry inside it.
    findings.sort_by_key(|f| {
        (
            f.end.unwrap_or(u64::MAX),
            !f.is_exact(),
            f.index.unwrap_or(u64::MAX),
        )
    });
    findings.dedup();
    report.findings = findings;
    report
}

/// A leaf whose bytes hash to another entry's stored leaf hash was moved, not edited.
fn classify_moved_leaves(verifier: &Verifier, findings: &mut [Finding]) {
    let mismatched = |f: &Finding| {
        f.kind == FindingKind::Changed && f.detail.starts_with("event bytes do not match")
    };
    if !findings.iter().any(mismatched) {
        return;
    }
    let base = verifier.base;
    let by_stored: HashMap<Hash, u64> = verifier
        .stored
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.map(|h| (h, base + i as u64)))
        .collect();
    for finding in findings.iter_mut().filter(|f| mismatched(f)) {
        let Some(position) = finding.index else {
            continue;
        };
        let Some(leaf) = usize::try_from(position - base)
            .ok()
            .and_then(|i| verifier.leaves.get(i))
        else {
            continue;
        };
        if let Some(other) = by_stored.get(leaf).filter(|other| **other != position) {
            finding.kind = FindingKind::Reordered;
            finding.detail = format!("holds the event that was appended as entry {other}");
        }
    }
}

/// Turns the most precise mismatching stored node into a finding, naming the moved
/// entry when the node is a pair of leaves and a substitution explains it.
fn locate_by_node(rebuilt: &Rebuilt) -> Option<Finding> {
    let (end, level, index, stored) = rebuilt.worst_node?;
    let start = index << level;
    let leaves = &rebuilt.verifier.leaves;
    if level == 1 {
        let (a, b) = (start as usize, start as usize + 1);
        if node_hash(&leaves[b], &leaves[a]) == stored {
            return Some(Finding::exact(
                FindingKind::Reordered,
                start,
                format!("swapped with entry {}", start + 1),
            ));
        }
        for (position, sibling, left) in [(a, b, true), (b, a, false)] {
            let found = leaves.iter().enumerate().position(|(j, leaf)| {
                j != position && {
                    let candidate = if left {
                        node_hash(leaf, &leaves[sibling])
                    } else {
                        node_hash(&leaves[sibling], leaf)
                    };
                    candidate == stored
                }
            });
            if let Some(j) = found {
                return Some(Finding::exact(
                    FindingKind::Reordered,
                    position as u64,
                    format!("its appended event is now stored as entry {j}"),
                ));
            }
        }
    }
    Some(Finding {
        kind: FindingKind::Changed,
        index: Some(start),
        end: Some(end),
        detail: format!(
            "stored tree node at level {level} index {index} no longer matches these entries \
             (their leaf hashes were rewritten too)"
        ),
    })
}

fn check_heads(
    rebuilt: &Rebuilt,
    mut heads: Vec<PresentedHead>,
    findings: &mut Vec<Finding>,
    report: &mut Report,
) {
    let verifier = &rebuilt.verifier;
    let n = verifier.size();
    heads.sort_by_key(|head| head.tree_size);
    heads.dedup();
    report.heads = heads.len();
    let roots = roots_at(verifier, heads.iter().map(|h| h.tree_size));
    let mut last_good = verifier.base;
    let mut previous: Option<&PresentedHead> = None;
    for head in &heads {
        let size = head.tree_size;
        if let Err(error) = tree_head::verify(head, &verifier.trusted) {
            findings.push(Finding {
                kind: FindingKind::Head,
                index: None,
                end: None,
                detail: format!("tree head of size {size}: {error}"),
            });
            continue;
        }
        if size > n {
            findings.push(Finding {
                kind: FindingKind::Removed,
                index: Some(n),
                end: Some(size),
                detail: format!("the log has {n} entries but a head was signed at size {size}"),
            });
            continue;
        }
        if size < verifier.base {
            continue;
        }
        match roots.get(&size) {
            Some(root) if root.as_slice() == head.root_hash.as_slice() => {
                report.heads_verified += 1;
                last_good = size;
            }
            _ => {
                findings.push(Finding {
                    kind: FindingKind::Changed,
                    index: Some(last_good),
                    end: Some(size),
                    detail: format!(
                        "the root of the first {size} entries differs from the signed head"
                    ),
                });
                continue;
            }
        }
        if let (Some(tree), Some(before)) = (&rebuilt.tree, previous) {
            let proof = consistency_proof(tree, before.tree_size, size);
            let consistent = proof.is_ok_and(|proof| {
                verify_consistency(
                    before.tree_size,
                    size,
                    &before.root_hash,
                    &head.root_hash,
                    &proof,
                )
                .is_ok()
            });
            if consistent {
                report.consistent_pairs += 1;
            } else {
                findings.push(Finding {
                    kind: FindingKind::Head,
                    index: None,
                    end: None,
                    detail: format!(
                        "heads of sizes {} and {size} are not consistent",
                        before.tree_size
                    ),
                });
            }
        }
        previous = Some(head);
    }
    match heads.last() {
        None => report
            .notes
            .push("no signed tree head: nothing anchors the log".into()),
        Some(last) if last.tree_size < n => report.notes.push(format!(
            "entries {}..{} are not covered by a signed tree head yet",
            last.tree_size,
            n - 1
        )),
        Some(_) => {}
    }
    if verifier.trusted.is_empty() && !heads.is_empty() {
        report
            .notes
            .push("no trusted key given: heads were checked with the keys they carry".into());
    }
}

/// Roots of the fed leaves at each of `sizes` (those the leaves reach).
fn roots_at(verifier: &Verifier, sizes: impl Iterator<Item = u64>) -> HashMap<u64, Hash> {
    let mut sizes: Vec<u64> = sizes
        .filter(|s| *s >= verifier.base && *s <= verifier.size() && *s > 0)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut roots = HashMap::new();
    let Ok(mut appender) = Appender::from_frontier(verifier.base, verifier.base_frontier.clone())
    else {
        return roots;
    };
    let mut wanted = sizes.into_iter().peekable();
    if wanted.peek() == Some(&appender.size()) {
        roots.insert(appender.size(), appender.root());
        wanted.next();
    }
    for leaf in &verifier.leaves {
        if appender.append(*leaf).is_err() {
            break;
        }
        if wanted.peek() == Some(&appender.size()) {
            roots.insert(appender.size(), appender.root());
            wanted.next();
        }
    }
    roots
}
