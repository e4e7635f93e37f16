//! Fuzzes detection and every anonymization path: analyze, anonymize with each
//! operator, restore, and streaming redaction with chunk boundaries taken from the
//! input. Panics and broken invariants are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use veil_pii::{Analyzer, Anonymizer, Keys, Operator, Policy, PolicySpec, PseudonymMap, StreamRedactor, restore};

static ANALYZER: LazyLock<Arc<Analyzer>> = LazyLock::new(|| Arc::new(Analyzer::new()));
static ANONYMIZER: LazyLock<Arc<Anonymizer>> =
    LazyLock::new(|| Arc::new(Anonymizer::new(Keys::none().with_hash_key(b"fuzz").with_encryption_key([7; 32]))));

fn policy(operator: Operator, threshold: f32) -> Policy {
    let spec = PolicySpec { default_operator: operator, threshold, ..PolicySpec::default() };
    Policy::new(spec).expect("a policy without custom parts compiles")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let threshold = f32::from(selector % 4) / 4.0;
    let operators = [
        Operator::Redact,
        Operator::Replace { with: None },
        Operator::Mask { keep_last: usize::from(selector % 6), mask_char: '*' },
        Operator::Hash,
        Operator::Pseudonymize,
        Operator::Encrypt,
        Operator::Keep,
    ];
    let operator = operators[usize::from(selector) % operators.len()].clone();
    let policy = policy(operator, threshold);

    let findings = ANALYZER.analyze(text, &policy);
    let mut last_end = 0;
    for f in &findings {
        assert!(f.start >= last_end && f.start < f.end && f.end <= text.len(), "findings sorted and disjoint");
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        assert!((0.0..=1.0).contains(&f.score));
        last_end = f.end;
    }
    let mut map = PseudonymMap::new();
    let redacted = ANONYMIZER.anonymize(text, &findings, &policy, &mut map).expect("keys are set");
    if matches!(policy.operator_for(&veil_pii::BuiltIn::Person.into()), Operator::Pseudonymize) {
        assert_eq!(restore(&redacted.text, &map), text, "restore inverts pseudonymize");
    }

    // Stream the same text, cut where the selector says.
    let policy = Arc::new(policy);
    let mut stream = StreamRedactor::new(ANALYZER.clone(), policy, ANONYMIZER.clone(), PseudonymMap::new());
    let step = usize::from(selector % 17) + 1;
    let mut from = 0;
    while from < text.len() {
        let mut to = (from + step).min(text.len());
        while !text.is_char_boundary(to) {
            to += 1;
        }
        stream.push(&text[from..to]).expect("keys are set");
        from = to;
    }
    stream.finish().expect("keys are set");
});
