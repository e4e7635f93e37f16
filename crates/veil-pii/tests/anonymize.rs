//! Operators, conversation pseudonyms, restore and streaming through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use veil_pii::{
    Analyzer, AnonymizeError, Anonymizer, BuiltIn, Keys, Operator, Policy, PolicySpec,
    PseudonymMap, StreamRedactor, StreamRestorer, restore,
};

fn policy(default_operator: Operator) -> Policy {
    Policy::new(PolicySpec {
        default_operator,
        ..PolicySpec::default()
    })
    .unwrap()
}

fn redact(
    analyzer: &Analyzer,
    anonymizer: &Anonymizer,
    policy: &Policy,
    map: &mut PseudonymMap,
    text: &str,
) -> String {
    let findings = analyzer.analyze(text, policy);
    anonymizer
        .anonymize(text, &findings, policy, map)
        .unwrap()
        .text
}

const TEXT: &str = "I'm Anna Schmidt, card 4111 1111 1111 1111, mail anna@example.com";

#[test]
fn each_operator() {
    let analyzer = Analyzer::new();
    let keys = Keys::none()
        .with_hash_key(b"tenant hash key")
        .with_encryption_key([9; 32]);
    let anonymizer = Anonymizer::new(keys);
    let mut map = PseudonymMap::new();
    let cases = [
        (Operator::Redact, "I'm , card , mail "),
        (
            Operator::Replace { with: None },
            "I'm <PERSON>, card <CREDIT_CARD>, mail <EMAIL_ADDRESS>",
        ),
        (
            Operator::Replace {
                with: Some("[x]".into()),
            },
            "I'm [x], card [x], mail [x]",
        ),
        (
            Operator::Mask {
                keep_last: 4,
                mask_char: '*',
            },
            "I'm **** ***midt, card **** **** **** 1111, mail ****@******e.com",
        ),
        (
            Operator::Pseudonymize,
            "I'm <PERSON_1>, card <CREDIT_CARD_1>, mail <EMAIL_ADDRESS_1>",
        ),
        (Operator::Keep, TEXT),
    ];
    for (operator, expected) in cases {
        assert_eq!(
            redact(
                &analyzer,
                &anonymizer,
                &policy(operator.clone()),
                &mut map,
                TEXT
            ),
            expected,
            "{operator:?}"
        );
    }
    let hashed = redact(
        &analyzer,
        &anonymizer,
        &policy(Operator::Hash),
        &mut map,
        TEXT,
    );
    assert!(!hashed.contains("Anna") && !hashed.contains("4111"));
    assert_eq!(
        hashed,
        redact(
            &analyzer,
            &anonymizer,
            &policy(Operator::Hash),
            &mut map,
            TEXT
        ),
        "keyed hash is stable"
    );
    let encrypted = redact(
        &analyzer,
        &anonymizer,
        &policy(Operator::Encrypt),
        &mut map,
        TEXT,
    );
    let token = encrypted.split(", mail ").nth(1).unwrap();
    assert_eq!(
        anonymizer.keys().decrypt(token).unwrap(),
        "anna@example.com"
    );
    // Keys are required by hash and encrypt.
    let keyless = Anonymizer::new(Keys::none());
    let findings = analyzer.analyze(TEXT, &policy(Operator::Hash));
    assert_eq!(
        keyless
            .anonymize(TEXT, &findings, &policy(Operator::Hash), &mut map)
            .err(),
        Some(AnonymizeError::MissingKey("hash"))
    );
}

#[test]
fn per_type_operators_and_entity_list() {
    let analyzer = Analyzer::new();
    let mut operators = BTreeMap::new();
    operators.insert(
        BuiltIn::CreditCard.into(),
        Operator::Mask {
            keep_last: 4,
            mask_char: '#',
        },
    );
    operators.insert(BuiltIn::EmailAddress.into(), Operator::Pseudonymize);
    let policy = Policy::new(PolicySpec {
        operators,
        ..PolicySpec::default()
    })
    .unwrap();
    let findings = analyzer.analyze(TEXT, &policy);
    let out = Anonymizer::default()
        .anonymize(TEXT, &findings, &policy, &mut PseudonymMap::new())
        .unwrap();
    assert_eq!(
        out.text,
        "I'm <PERSON>, card #### #### #### 1111, mail <EMAIL_ADDRESS_1>"
    );
    let ops: Vec<&str> = out.entities.iter().map(|e| e.operator).collect();
    assert_eq!(ops, ["replace", "mask", "pseudonymize"]);
    for e in &out.entities {
        assert_eq!(&out.text[e.redacted_start..e.redacted_end], e.replacement);
    }
}

#[test]
fn pseudonyms_hold_for_a_conversation_and_restore() {
    let analyzer = Analyzer::new();
    let anonymizer = Anonymizer::default();
    let policy = policy(Operator::Pseudonymize);
    let mut map = PseudonymMap::new();
    let first = redact(
        &analyzer,
        &anonymizer,
        &policy,
        &mut map,
        "Hi, I'm Anna Schmidt (anna@example.com)",
    );
    assert_eq!(first, "Hi, I'm <PERSON_1> (<EMAIL_ADDRESS_1>)");
    // The state is saved and loaded between messages (the gateway keeps it in the vault).
    let saved = serde_json::to_string(&map).unwrap();
    let mut map: PseudonymMap = serde_json::from_str(&saved).unwrap();
    let second = redact(
        &analyzer,
        &anonymizer,
        &policy,
        &mut map,
        "mail bob@example.com, cc anna@example.com",
    );
    assert_eq!(second, "mail <EMAIL_ADDRESS_2>, cc <EMAIL_ADDRESS_1>");
    let reply = "Dear <person_1>, I wrote to < EMAIL_ADDRESS_2 > and [EMAIL_ADDRESS_1]. <EMAIL_ADDRESS_7> is unknown.";
    assert_eq!(
        restore(reply, &map),
        "Dear Anna Schmidt, I wrote to bob@example.com and anna@example.com. <EMAIL_ADDRESS_7> is unknown."
    );
}

#[test]
fn streaming_redaction_matches_one_shot_at_every_split() {
    let analyzer = Arc::new(Analyzer::new());
    let policy = Arc::new(policy(Operator::Pseudonymize));
    let anonymizer = Arc::new(Anonymizer::default());
    let texts = [
        "Sure! Anna Schmidt's IBAN is DE89 3704 0044 0532 0130 00 and her phone +49 30 1234567.",
        "Kontakt: anna.schmidt@example.com, Karte 4111 1111 1111 1111, danke Hans Müller!",
    ];
    for text in texts {
        let mut one_shot_map = PseudonymMap::new();
        let expected = redact(&analyzer, &anonymizer, &policy, &mut one_shot_map, text);
        for split in (1..text.len()).filter(|i| text.is_char_boundary(*i)) {
            let mut stream = StreamRedactor::new(
                analyzer.clone(),
                policy.clone(),
                anonymizer.clone(),
                PseudonymMap::new(),
            );
            let mut out = stream.push(&text[..split]).unwrap();
            out.push_str(&stream.push(&text[split..]).unwrap());
            out.push_str(&stream.finish().unwrap());
            assert_eq!(out, expected, "split at {split}");
        }
    }
}

#[test]
fn streaming_token_by_token_releases_early_and_leaks_nothing() {
    let analyzer = Arc::new(Analyzer::new());
    let policy = Arc::new(policy(Operator::Replace { with: None }));
    let anonymizer = Arc::new(Anonymizer::default());
    let mut text = String::from("Your card 4111 1111 1111 1111 is linked to anna@example.com. ");
    for _ in 0..20 {
        text.push_str("Nothing personal in this part of the answer at all. ");
    }
    let mut stream = StreamRedactor::new(analyzer, policy, anonymizer, PseudonymMap::new());
    let mut out = String::new();
    let mut released_before_end = 0;
    // Chunks of three characters, as LLM tokens arrive.
    let chars: Vec<char> = text.chars().collect();
    for chunk in chars.chunks(3) {
        let piece: String = chunk.iter().collect();
        let released = stream.push(&piece).unwrap();
        released_before_end += released.len();
        out.push_str(&released);
    }
    out.push_str(&stream.finish().unwrap());
    assert!(
        out.starts_with("Your card <CREDIT_CARD> is linked to <EMAIL_ADDRESS>."),
        "{out}"
    );
    assert!(!out.contains("4111") && !out.contains("anna@"));
    // Text is released while the stream runs; only a short tail waits for the end.
    assert!(
        released_before_end > out.len() - 200,
        "{released_before_end} of {}",
        out.len()
    );
    assert_eq!(stream.entities().len(), 2);
}

/// A push redone from a clone taken before it, under a map in which another writer took
/// the placeholder the first try handed out: the text released earlier is untouched, the
/// redone part numbers the new value after the taken one, and the entities match it.
#[test]
fn a_push_redone_under_another_map_renumbers_only_what_it_releases() {
    let analyzer = Arc::new(Analyzer::new());
    let policy = Arc::new(policy(Operator::Pseudonymize));
    let anonymizer = Arc::new(Anonymizer::default());
    let filler = "Nothing personal in this part of the answer at all. ".repeat(3);
    let mut stream = StreamRedactor::new(analyzer, policy, anonymizer, PseudonymMap::new());
    let first = stream
        .push(&format!("Mail anna@example.com please. {filler}"))
        .unwrap();
    assert!(
        first.starts_with("Mail <EMAIL_ADDRESS_1> please."),
        "{first}"
    );

    let before = stream.clone();
    let second = format!("Or bob@example.com instead. {filler}");
    let tried = stream.push(&second).unwrap();
    assert!(tried.contains("<EMAIL_ADDRESS_2>"), "{tried}");

    // Meanwhile <EMAIL_ADDRESS_2> went to carl@example.com elsewhere.
    let mut taken = before.pseudonyms().clone();
    taken.placeholder_for(&BuiltIn::EmailAddress.into(), "carl@example.com");
    let mut redone = before.with_pseudonyms(taken);
    let again = redone.push(&second).unwrap();
    assert_eq!(
        again,
        tried.replace("<EMAIL_ADDRESS_2>", "<EMAIL_ADDRESS_3>")
    );
    redone.finish().unwrap();
    let placeholders: Vec<&str> = redone
        .entities()
        .iter()
        .map(|e| e.replacement.as_str())
        .collect();
    assert_eq!(placeholders, ["<EMAIL_ADDRESS_1>", "<EMAIL_ADDRESS_3>"]);
    assert_eq!(
        redone.pseudonyms().original("<EMAIL_ADDRESS_3>"),
        Some("bob@example.com")
    );
}
#[test]
fn streaming_restore_matches_one_shot() {
    let mut map = PseudonymMap::new();
    map.placeholder_for(&BuiltIn::Person.into(), "Anna Schmidt");
    map.placeholder_for(&BuiltIn::EmailAddress.into(), "anna@example.com");
    let reply = "Hello <PERSON_1>, we wrote to <email_address_1> — see [PERSON_1]'s note.";
    let expected = restore(reply, &map);
    for size in 1..8 {
        let mut r = StreamRestorer::new(&map);
        let mut out = String::new();
        let chars: Vec<char> = reply.chars().collect();
        for chunk in chars.chunks(size) {
            out.push_str(&r.push(&chunk.iter().collect::<String>()));
        }
        out.push_str(&r.finish());
        assert_eq!(out, expected, "chunks of {size}");
    }
}
