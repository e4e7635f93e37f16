//! Deterministic overlap resolution. Candidates are ranked, then accepted greedily
//! unless they overlap one already accepted:
//! 1. a checksum-validated span beats one that is not,
//! 2. then the higher score,
//! 3. then the longer span,
//! 4. then the earlier start, then the type order.
//!
//! So a phone number inside an IBAN or a card never survives, nor a URL inside an
//! e-mail address (which is validated and scores higher).

use crate::analyzer::score_of;
use crate::recognizer::Candidate;
use std::cmp::Ordering;

/// Fills `order` with the indices of the accepted candidates, sorted by start.
/// Works cluster by cluster (runs of transitively overlapping spans), so the
/// cost stays near-linear on long texts with many findings.
pub(crate) fn resolve(candidates: &[Candidate], order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..candidates.len());
    order.sort_by_key(|&i| (candidates[i].start, candidates[i].end));
    let mut write = 0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        let mut max_end = candidates[order[i]].end;
        while j < order.len() && candidates[order[j]].start < max_end {
            max_end = max_end.max(candidates[order[j]].end);
            j += 1;
        }
        let cluster = &mut order[i..j];
        let kept = if cluster.len() == 1 {
            1
        } else {
            resolve_cluster(candidates, cluster)
        };
        for k in 0..kept {
            order[write + k] = order[i + k];
        }
        write += kept;
        i = j;
    }
    order.truncate(write);
}

/// Greedy acceptance by rank inside one cluster; the accepted indices end up at
/// the front of `cluster`, sorted by start. Returns how many were accepted.
fn resolve_cluster(candidates: &[Candidate], cluster: &mut [usize]) -> usize {
    cluster.sort_by(|&a, &b| rank(&candidates[a], &candidates[b]));
    let mut accepted = 0;
    for k in 0..cluster.len() {
        let c = &candidates[cluster[k]];
        let clash = cluster[..accepted]
            .iter()
            .any(|&j| candidates[j].start < c.end && c.start < candidates[j].end);
        if !clash {
            cluster.swap(accepted, k);
            accepted += 1;
        }
    }
    cluster[..accepted].sort_by_key(|&i| candidates[i].start);
    accepted
}

fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.checksum_validated
        .cmp(&a.checksum_validated)
        .then_with(|| score_of(b).total_cmp(&score_of(a)))
        .then_with(|| (b.end - b.start).cmp(&(a.end - a.start)))
        .then_with(|| a.start.cmp(&b.start))
        .then_with(|| a.entity.cmp(&b.entity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::BuiltIn;

    fn cand(entity: BuiltIn, start: usize, end: usize, score: f32, validated: bool) -> Candidate {
        let mut c = Candidate::builtin(entity, start, end, score, "test", "test");
        c.checksum_validated = validated;
        c
    }

    #[test]
    fn validated_beats_higher_score() {
        let cands = vec![
            cand(BuiltIn::PhoneNumber, 5, 15, 0.9, false),
            cand(BuiltIn::IbanCode, 0, 22, 0.8, true),
        ];
        let mut order = Vec::new();
        resolve(&cands, &mut order);
        assert_eq!(order, vec![1]);
    }

    #[test]
    fn keeps_disjoint_sorted() {
        let cands = vec![
            cand(BuiltIn::Url, 30, 40, 0.5, false),
            cand(BuiltIn::EmailAddress, 0, 10, 1.0, true),
            cand(BuiltIn::Url, 5, 10, 0.5, false),
            cand(BuiltIn::PhoneNumber, 12, 20, 0.6, false),
        ];
        let mut order = Vec::new();
        resolve(&cands, &mut order);
        assert_eq!(order, vec![1, 3, 0]);
    }
}
