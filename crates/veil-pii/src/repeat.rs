//! A value found once is personal data wherever it appears in the same text: a
//! name recognized after "my name is" is also redacted where it stands alone, and
//! a number whose context made it an SSN once is an SSN everywhere. Without this,
//! redacted output could still contain a detected value.

use crate::analyzer::KnownValue;
use crate::finding::Label;
use crate::recognizer::Candidate;
use crate::text::on_word_boundaries;
use aho_corasick::{AhoCorasick, MatchKind};

/// Shortest value repeated (single characters would match by chance; longer ones
/// must stand as whole words).
const MIN_LEN: usize = 2;
/// Up to this many distinct values, a plain search per value is cheaper than an automaton.
const DIRECT_SEARCH_MAX: usize = 8;

/// Adds a candidate for every occurrence (on word boundaries) of a known value.
pub(crate) fn add_known(text: &str, known: &[KnownValue], candidates: &mut Vec<Candidate>) {
    let mut push = |k: &KnownValue, start: usize, end: usize| {
        if on_word_boundaries(text, start, end) {
            candidates.push(Candidate {
                entity: k.entity.clone(),
                start,
                end,
                score: k.score.clamp(0.0, 1.0),
                checksum_validated: false,
                recognizer: Label::Static("KnownValues"),
                pattern: Label::Static("known_value"),
                apply_context: false,
                context_words: Vec::new(),
            });
        }
    };
    let usable: Vec<&KnownValue> = known.iter().filter(|k| k.value.len() >= MIN_LEN).collect();
    if usable.len() <= DIRECT_SEARCH_MAX {
        for k in usable {
            for (pos, _) in text.match_indices(k.value.as_str()) {
                push(k, pos, pos + k.value.len());
            }
        }
    } else if let Ok(automaton) = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(usable.iter().map(|k| k.value.as_str()))
    {
        for m in automaton.find_iter(text) {
            push(usable[m.pattern().as_usize()], m.start(), m.end());
        }
    }
}

/// Adds every other occurrence of an accepted value that no finding covers yet.
/// `order` holds the accepted candidates sorted by start and stays so.
pub(crate) fn propagate(text: &str, candidates: &mut Vec<Candidate>, order: &mut Vec<usize>) {
    let mut values: Vec<usize> = Vec::new();
    for &i in order.iter() {
        let c = &candidates[i];
        // A validated value is validated again wherever it recurs.
        if c.checksum_validated {
            continue;
        }
        let value = &text[c.start..c.end];
        if value.len() >= MIN_LEN
            && !values
                .iter()
                .any(|&j| &text[candidates[j].start..candidates[j].end] == value)
        {
            values.push(i);
        }
    }
    if values.is_empty() {
        return;
    }
    let before = candidates.len();
    let accepted: &[usize] = order;
    let add = |source: usize, start: usize, end: usize, candidates: &mut Vec<Candidate>| {
        // Most repeats are findings already; skip those without copying.
        let k = accepted.partition_point(|&i| candidates[i].start < end);
        let covered = k > 0 && candidates[accepted[k - 1]].end > start;
        if covered || !on_word_boundaries(text, start, end) {
            return;
        }
        let mut copy = candidates[source].clone();
        copy.start = start;
        copy.end = end;
        copy.pattern = Label::Static("repeated_value");
        copy.context_words = Vec::new();
        // The copy carries the original's final score; context is not searched again.
        copy.score = crate::analyzer::score_of(&candidates[source]);
        copy.apply_context = false;
        candidates.push(copy);
    };
    if values.len() <= DIRECT_SEARCH_MAX {
        for &source in &values {
            let value = &text[candidates[source].start..candidates[source].end];
            for (pos, _) in text.match_indices(value) {
                add(source, pos, pos + value.len(), candidates);
            }
        }
    } else {
        let patterns: Vec<&str> = values
            .iter()
            .map(|&i| &text[candidates[i].start..candidates[i].end])
            .collect();
        let Ok(automaton) = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
        else {
            return;
        };
        for m in automaton.find_iter(text) {
            add(
                values[m.pattern().as_usize()],
                m.start(),
                m.end(),
                candidates,
            );
        }
    }
    if candidates.len() == before {
        return;
    }
    // Merge: keep the accepted findings, add copies that overlap nothing kept.
    let mut extra: Vec<usize> = (before..candidates.len()).collect();
    extra.sort_by_key(|&i| (candidates[i].start, std::cmp::Reverse(candidates[i].end)));
    let accepted = std::mem::take(order);
    let (mut a, mut x) = (0, 0);
    while a < accepted.len() || x < extra.len() {
        let take_accepted = x >= extra.len()
            || (a < accepted.len() && candidates[accepted[a]].start <= candidates[extra[x]].start);
        let next = if take_accepted { accepted[a] } else { extra[x] };
        let overlaps = order
            .last()
            .is_some_and(|&last| candidates[last].end > candidates[next].start)
            || (!take_accepted
                && a < accepted.len()
                && candidates[accepted[a]].start < candidates[next].end);
        if take_accepted {
            a += 1;
            // An accepted finding always stays; drop a copy that ran into it.
            while order.last().is_some_and(|&last| {
                last >= before && candidates[last].end > candidates[next].start
            }) {
                order.pop();
            }
            order.push(next);
        } else {
            x += 1;
            if !overlaps {
                order.push(next);
            }
        }
    }
}
