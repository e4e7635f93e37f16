//! Property tests: no panic on arbitrary Unicode; the redacted output never
//! contains a detected value; restore(pseudonymize(x)) == x; streaming gives the
//! one-shot result however the text is cut into chunks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::sync::{Arc, LazyLock};
use veil_pii::{
    Analyzer, Anonymizer, Operator, Policy, PolicySpec, PseudonymMap, StreamRedactor,
    placeholders_in, restore,
};

static ANALYZER: LazyLock<Arc<Analyzer>> = LazyLock::new(|| Arc::new(Analyzer::new()));
static REPLACE: LazyLock<Arc<Policy>> = LazyLock::new(|| Arc::new(Policy::default()));
static PSEUDO: LazyLock<Arc<Policy>> = LazyLock::new(|| {
    Arc::new(
        Policy::new(PolicySpec {
            default_operator: Operator::Pseudonymize,
            ..PolicySpec::default()
        })
        .unwrap(),
    )
});

/// Pieces of chat text: personal data of many types and ordinary words.
const FRAGMENTS: &[&str] = &[
    "Anna Schmidt",
    "anna.schmidt@example.com",
    "+49 30 1234567",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "078-05-1123",
    "192.168.1.20",
    "https://example.org/x?y=1",
    "Hauptstraße 5",
    "12/03/1985",
    "born",
    "my name is",
    "Thanks",
    "Peter",
    "call me",
    "IBAN",
    "and",
    "the",
    "order",
    "refund",
    "please",
    "Grace",
    "May",
    "tomorrow",
    ",",
    ".",
    "12345678Z",
    "X9613851N",
    "AB 12 34 56 C",
    "10115",
    "Berlin",
    "SW1A 1AA",
    "00:1A:2B:3C:4D:5E",
    "ich heiße",
    "Müller",
    "😀",
    "née le",
    "Mijn naam is",
    "Jan de Vries",
    "t.n.v.",
    "Zoë",
    "card",
    "ssn",
];

fn chat_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(FRAGMENTS),
            prop::sample::select(&[" ", " ", ", ", "\n", ": "][..]),
        ),
        1..16,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(f, sep)| format!("{f}{sep}"))
            .collect()
    })
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Whether `needle` occurs in `hay` as a whole word (not inside a longer one).
fn contains_word(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        !is_word(hay[..i].chars().next_back()) && !is_word(hay[i + needle.len()..].chars().next())
    })
}

fn redact(text: &str, policy: &Policy, map: &mut PseudonymMap) -> String {
    let findings = ANALYZER.analyze(text, policy);
    Anonymizer::default()
        .anonymize(text, &findings, policy, map)
        .unwrap()
        .text
}

proptest! {
    // A fixed seed keeps CI reproducible; run with PROPTEST_CASES and another seed
    // locally to search wider (see docs/pii.md for the known streaming limits).
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x005e_ed0f_7e11),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,200}", cut in 0usize..200) {
        let findings = ANALYZER.analyze(&text, &PSEUDO);
        for f in &findings {
            prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end) && f.start < f.end);
            prop_assert_eq!(text[..f.start].chars().count(), f.char_start);
            prop_assert_eq!(text[..f.end].chars().count(), f.char_end);
            prop_assert!((0.0..=1.0).contains(&f.score));
        }
        let mut map = PseudonymMap::new();
        let redacted = Anonymizer::default().anonymize(&text, &findings, &PSEUDO, &mut map).unwrap();
        prop_assert_eq!(restore(&redacted.text, &map), text.clone());
        let mut cut = cut.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut stream = StreamRedactor::new(ANALYZER.clone(), PSEUDO.clone(), Arc::new(Anonymizer::default()), PseudonymMap::new());
        let mut out = stream.push(&text[..cut]).unwrap();
        out.push_str(&stream.push(&text[cut..]).unwrap());
        out.push_str(&stream.finish().unwrap());
        prop_assert_eq!(restore(&out, stream.pseudonyms()), text);
    }

    #[test]
    fn arbitrary_bytes_as_lossy_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = ANALYZER.analyze(&text, &REPLACE);
    }

    #[test]
    fn redacted_output_never_contains_a_detected_value(text in chat_text()) {
        let findings = ANALYZER.analyze(&text, &REPLACE);
        let out = redact(&text, &REPLACE, &mut PseudonymMap::new());
        for f in &findings {
            let value = &text[f.start..f.end];
            prop_assert!(!contains_word(&out, value), "{:?} ({}) leaked in {:?}", value, f.entity, out);
        }
    }

    #[test]
    fn restore_inverts_pseudonymize(text in chat_text()) {
        let mut map = PseudonymMap::new();
        let out = redact(&text, &PSEUDO, &mut map);
        prop_assert_eq!(restore(&out, &map), text);
        // What a restore needs to reveal: every placeholder the text carries.
        let listed = placeholders_in(&out);
        for (placeholder, _) in map.entries() {
            prop_assert!(listed.iter().any(|p| p == placeholder), "{} not in {:?}", placeholder, listed);
        }
    }

    /// However the text is cut into chunks, streaming never releases a value that
    /// one-shot analysis detects, and the placeholders restore the exact text.
    /// (Only values that occur once are checked: one-shot analysis sees a later
    /// occurrence of a value, which may raise an earlier one that a stream has
    /// already released; streams carry values forward, not backward.)
    #[test]
    fn streaming_never_releases_a_detected_value(text in chat_text(), cuts in prop::collection::vec(0usize..400, 0..6)) {
        let one_shot = ANALYZER.analyze(&text, &PSEUDO);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).filter(|c| text.is_char_boundary(*c)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut stream = StreamRedactor::new(ANALYZER.clone(), PSEUDO.clone(), Arc::new(Anonymizer::default()), PseudonymMap::new());
        let mut out = String::new();
        let mut from = 0;
        for c in cuts.into_iter().chain(std::iter::once(text.len())) {
            out.push_str(&stream.push(&text[from..c]).unwrap());
            from = c;
        }
        out.push_str(&stream.finish().unwrap());
        for f in &one_shot {
            let value = &text[f.start..f.end];
            if text.matches(value).count() == 1 {
                prop_assert!(!contains_word(&out, value), "{:?} ({}) released in {:?}", value, f.entity, out);
            }
        }
        prop_assert_eq!(restore(&out, stream.pseudonyms()), text);
    }
}
