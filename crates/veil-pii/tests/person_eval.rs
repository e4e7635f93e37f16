//! PERSON accuracy on a hand-written evaluation set (tests/data/person_eval.txt):
//! precision, recall and F1 over exact name spans, printed and held to a floor.
//! Titles in the annotation ("Mr. Patel") may be left out of a found span.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use veil_pii::{Analyzer, BuiltIn, Policy};

const DATA: &str = include_str!("data/person_eval.txt");
const TITLES: &[&str] = &["Mr. ", "Mrs. ", "Dr. ", "Frau ", "Madame ", "Herr "];

/// The text without brackets and the annotated spans (byte offsets).
fn parse(line: &str) -> (String, Vec<(usize, usize)>) {
    let mut text = String::new();
    let mut spans = Vec::new();
    let mut open = None;
    for c in line.chars() {
        match c {
            '[' => open = Some(text.len()),
            ']' => {
                if let Some(start) = open.take() {
                    let mut s = start;
                    for t in TITLES {
                        if text[s..].starts_with(t) {
                            s += t.len();
                        }
                    }
                    spans.push((s, text.len()));
                }
            }
            _ => text.push(c),
        }
    }
    (text, spans)
}

#[test]
fn person_precision_and_recall() {
    let analyzer = Analyzer::new();
    let policy = Policy::only(&[BuiltIn::Person]);
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for line in DATA
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (text, gold) = parse(line);
        let found: Vec<(usize, usize)> = analyzer
            .analyze(&text, &policy)
            .iter()
            .map(|f| (f.start, f.end))
            .collect();
        for span in &found {
            if gold.contains(span) {
                tp += 1;
            } else {
                fp += 1;
                println!("false positive: {:?} in {text:?}", &text[span.0..span.1]);
            }
        }
        for span in gold.iter().filter(|g| !found.contains(g)) {
            fn_ += 1;
            println!("missed: {:?} in {text:?}", &text[span.0..span.1]);
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::EPSILON);
    println!(
        "PERSON: tp {tp} fp {fp} fn {fn_}  precision {precision:.3} recall {recall:.3} F1 {f1:.3}"
    );
    assert!(
        precision >= 0.85 && recall >= 0.8,
        "precision {precision:.3} recall {recall:.3}"
    );
}

/// The held-out set: not used to tune the rules, so it gives a fairer figure.
#[test]
fn person_held_out() {
    let analyzer = Analyzer::new();
    let policy = Policy::only(&[BuiltIn::Person]);
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for line in include_str!("data/person_holdout.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (text, gold) = parse(line);
        let found: Vec<(usize, usize)> = analyzer
            .analyze(&text, &policy)
            .iter()
            .map(|f| (f.start, f.end))
            .collect();
        for span in &found {
            if gold.contains(span) {
                tp += 1;
            } else {
                fp += 1;
                println!(
                    "held-out false positive: {:?} in {text:?}",
                    &text[span.0..span.1]
                );
            }
        }
        for span in gold.iter().filter(|g| !found.contains(g)) {
            fn_ += 1;
            println!("held-out missed: {:?} in {text:?}", &text[span.0..span.1]);
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!(
        "PERSON held-out: tp {tp} fp {fp} fn {fn_}  precision {precision:.3} recall {recall:.3}"
    );
    assert!(
        precision >= 0.75 && recall >= 0.7,
        "precision {precision:.3} recall {recall:.3}"
    );
}
