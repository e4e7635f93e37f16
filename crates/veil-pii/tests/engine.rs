//! Detection through the public API: overlaps, offsets, policy, explanations,
//! plug-in recognizers and sharing across threads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use veil_pii::{
    Analyzer, BuiltIn, Candidate, CustomRecognizerSpec, EntityType, Finding, Input, Policy,
    PolicySpec, Recognizer,
};

fn types(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.entity.name()).collect()
}

fn value<'t>(text: &'t str, f: &Finding) -> &'t str {
    &text[f.start..f.end]
}

#[test]
fn common_types_in_chat_messages() {
    let analyzer = Analyzer::new();
    let policy = Policy::default();
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "Hi, I'm Anna Schmidt, mail me at anna.schmidt@example.com",
            &[
                ("PERSON", "Anna Schmidt"),
                ("EMAIL_ADDRESS", "anna.schmidt@example.com"),
            ],
        ),
        (
            "my card 4111 1111 1111 1111 was charged twice",
            &[("CREDIT_CARD", "4111 1111 1111 1111")],
        ),
        (
            "IBAN: DE89 3704 0044 0532 0130 00, thanks",
            &[("IBAN_CODE", "DE89 3704 0044 0532 0130 00")],
        ),
        (
            "call me on +44 20 7946 0958 tomorrow",
            &[("PHONE_NUMBER", "+44 20 7946 0958")],
        ),
        ("my ssn is 078-05-1123", &[("US_SSN", "078-05-1123")]),
        (
            "server 192.168.10.24 and fe80::1 are down",
            &[("IP_ADDRESS", "192.168.10.24"), ("IP_ADDRESS", "fe80::1")],
        ),
        (
            "see https://example.com/a?b=1.",
            &[("URL", "https://example.com/a?b=1")],
        ),
        (
            "send BTC to 16Yeky6GMjeNkAiNcBY7ZhrLoMSgg1BoyZ please",
            &[("CRYPTO", "16Yeky6GMjeNkAiNcBY7ZhrLoMSgg1BoyZ")],
        ),
        (
            "my MAC address is 00:1A:2B:3C:4D:5E",
            &[("MAC_ADDRESS", "00:1A:2B:3C:4D:5E")],
        ),
        (
            "I was born on 12 March 1985",
            &[("DATE_OF_BIRTH", "12 March 1985")],
        ),
        (
            "Je m'appelle Marie Dubois, née le 12/03/1985",
            &[("PERSON", "Marie Dubois"), ("DATE_OF_BIRTH", "12/03/1985")],
        ),
        (
            "Ich wohne in der Hauptstraße 5, PLZ 10115",
            &[("STREET_ADDRESS", "Hauptstraße 5"), ("DE_PLZ", "10115")],
        ),
        (
            "Mi DNI es 12345678Z y mi NIE X9613851N",
            &[("ES_NIF", "12345678Z"), ("ES_NIE", "X9613851N")],
        ),
        ("Mijn BSN is 111222333", &[("NL_BSN", "111222333")]),
        ("Steuer-ID: 12345678903", &[("DE_TAX_ID", "12345678903")]),
        (
            "numéro de sécurité sociale 1 84 12 76 451 089 46",
            &[("FR_NIR", "1 84 12 76 451 089 46")],
        ),
        (
            "codice fiscale RSSMRA85T10A562S",
            &[("IT_FISCAL_CODE", "RSSMRA85T10A562S")],
        ),
        ("NHS number 401 023 2137", &[("UK_NHS", "401 023 2137")]),
        (
            "my national insurance number is AB 12 34 56 C",
            &[("UK_NINO", "AB 12 34 56 C")],
        ),
        ("Thanks Peter, see you", &[("PERSON", "Peter")]),
        ("Mijn naam is Jan de Vries", &[("PERSON", "Jan de Vries")]),
        ("Sehr geehrte Frau Becker", &[("PERSON", "Becker")]),
        // An acronym after a capitalized determiner is no name.
        (
            "Meine IBAN ist DE89 3704 0044 0532 0130 00.",
            &[("IBAN_CODE", "DE89 3704 0044 0532 0130 00")],
        ),
        (
            "Mon IBAN est FR14 2004 1010 0505 0001 3M02 606",
            &[("IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606")],
        ),
    ];
    for (text, expected) in cases {
        let findings = analyzer.analyze(text, &policy);
        let got: Vec<(&str, &str)> = findings
            .iter()
            .map(|f| (f.entity.name(), value(text, f)))
            .collect();
        assert_eq!(&got, expected, "{text}");
    }
}

#[test]
fn words_that_are_also_names_need_context() {
    let analyzer = Analyzer::new();
    let policy = Policy::default();
    for text in [
        "Will the grace period apply in May?",
        "May I ask when the package arrives?",
        "The meeting is on Monday in Paris",
        "Please mark the invoice as paid",
    ] {
        let findings = analyzer.analyze(text, &policy);
        assert!(
            findings.iter().all(|f| f.entity != BuiltIn::Person.into()),
            "{text}: {findings:?}"
        );
    }
    let findings = analyzer.analyze("Thanks Grace, the grace period is fine", &policy);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].start, "Thanks ".len());
}

#[test]
fn overlaps_resolve_to_the_validated_and_stronger_value() {
    let analyzer = Analyzer::new();
    let policy = Policy::default();
    // The IBAN holds digit groups that are also a valid phone number.
    let text = "IBAN DE89 3704 0044 0532 0130 00";
    assert_eq!(types(&analyzer.analyze(text, &policy)), ["IBAN_CODE"]);
    // The card is not a phone number either.
    assert_eq!(
        types(&analyzer.analyze("card 4012 8888 8888 1881", &policy)),
        ["CREDIT_CARD"]
    );
    // No URL inside an e-mail address.
    assert_eq!(
        types(&analyzer.analyze("write to info@presidio.site", &policy)),
        ["EMAIL_ADDRESS"]
    );
    // Deterministic: the same text gives the same result every time.
    let text = "Anna Schmidt, +49 30 1234567, anna@example.com, 10115 Berlin";
    let first = analyzer.analyze(text, &policy);
    for _ in 0..5 {
        assert_eq!(analyzer.analyze(text, &policy), first);
    }
}

#[test]
fn offsets_in_bytes_and_code_points() {
    let analyzer = Analyzer::new();
    let text = "Grüße 😀 von Zoë: zoë.müller@example.com";
    let findings = analyzer.analyze(text, &Policy::only(&[BuiltIn::EmailAddress]));
    // Non-ASCII local parts are not e-mail addresses in the ASCII sense we accept:
    // the address starts after "zoë.".
    let f = findings.last().expect("an address");
    let chars: Vec<char> = text.chars().collect();
    let by_chars: String = chars[f.char_start..f.char_end].iter().collect();
    assert_eq!(by_chars, &text[f.start..f.end]);
    assert!(f.char_start < f.start);
}

#[test]
fn policy_types_threshold_and_allow_list() {
    let analyzer = Analyzer::new();
    let text = "Mail support@example.com or anna@example.com, call +1 415 555 0132";
    let only_email = Policy::only(&[BuiltIn::EmailAddress]);
    assert_eq!(
        types(&analyzer.analyze(text, &only_email)),
        ["EMAIL_ADDRESS", "EMAIL_ADDRESS"]
    );
    let spec = PolicySpec {
        allow_list: vec!["SUPPORT@example.com".into()],
        ..PolicySpec::default()
    };
    let allowing = Policy::new(spec).unwrap();
    let found = analyzer.analyze(text, &allowing);
    assert_eq!(types(&found), ["EMAIL_ADDRESS", "PHONE_NUMBER"]);
    assert_eq!(value(text, &found[0]), "anna@example.com");
    // A bare nine-digit number is a weak SSN: reported only under a low threshold.
    let weak = "ref 078051121";
    assert!(
        analyzer
            .analyze(weak, &Policy::only(&[BuiltIn::UsSsn]))
            .is_empty()
    );
    assert_eq!(
        analyzer
            .analyze(weak, &Policy::only(&[BuiltIn::UsSsn]).with_threshold(0.2))
            .len(),
        1
    );
    // Context raises it over the threshold and says so.
    let ssn = analyzer.analyze("my SSN: 078051121", &Policy::only(&[BuiltIn::UsSsn]));
    assert_eq!(ssn.len(), 1);
    let e = &ssn[0].explanation;
    assert!(e.final_score > e.base_score);
    assert_eq!(
        e.context_words
            .iter()
            .map(|w| w.as_str())
            .collect::<Vec<_>>(),
        ["ssn"]
    );
}

#[test]
fn custom_recognizers_with_their_own_names() {
    let analyzer = Analyzer::new();
    let spec = PolicySpec {
        custom_recognizers: vec![
            CustomRecognizerSpec::Regex {
                entity: "EMPLOYEE_ID".into(),
                pattern: r"\bEMP-\d{6}\b".into(),
                score: 0.4,
                context: vec!["employee".into()],
            },
            CustomRecognizerSpec::Words {
                entity: "PROJECT".into(),
                words: vec!["Project Falcon".into(), "Bluebird".into()],
                score: 0.9,
                case_sensitive: false,
            },
        ],
        ..PolicySpec::default()
    };
    let policy = Policy::new(spec).unwrap();
    let text = "employee EMP-123456 works on project falcon, not on Bluebirds";
    let found = analyzer.analyze(text, &policy);
    assert_eq!(types(&found), ["EMPLOYEE_ID", "PROJECT"]);
    assert_eq!(found[0].explanation.context_words[0].as_str(), "employee");
    assert!(found[0].score > 0.4);
    assert_eq!(value(text, &found[1]), "project falcon");
    assert_eq!(found[1].entity, EntityType::parse("PROJECT").unwrap());
}

#[test]
fn every_finding_explains_itself() {
    let analyzer = Analyzer::new();
    let text = "card 4111111111111111";
    let f = &analyzer.analyze(text, &Policy::default())[0];
    assert_eq!(f.explanation.recognizer.as_str(), "CreditCardRecognizer");
    assert!(f.explanation.checksum_validated);
    assert_eq!(f.explanation.final_score, f.score);
    // Debug output never shows the value.
    assert!(!format!("{f:?}").contains("4111"));
    let text = "please call +1 415 555 0132";
    let f = &analyzer.analyze(text, &Policy::default())[0];
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(json["entity"], "PHONE_NUMBER");
    assert_eq!(json["explanation"]["context_words"][0], "call");
    assert!(f.explanation.final_score > f.explanation.base_score);
}

/// A stand-in for an ML NER backend.
struct FakeNer;

impl Recognizer for FakeNer {
    fn name(&self) -> &str {
        "FakeNer"
    }
    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::Person.into()]
    }
    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if let Some(at) = input.text.find("Zxqv") {
            out.push(Candidate::builtin(
                BuiltIn::Person,
                at,
                at + 4,
                0.8,
                "FakeNer",
                "model",
            ));
        }
    }
}

#[test]
fn recognizers_plug_in() {
    let analyzer = Analyzer::builder()
        .with_recognizer(Box::new(FakeNer))
        .build();
    let found = analyzer.analyze("ask Zxqv about it", &Policy::default());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].explanation.recognizer.as_str(), "FakeNer");
    let only_model = Analyzer::builder()
        .without_builtin()
        .with_recognizer(Box::new(FakeNer))
        .build();
    assert_eq!(
        only_model.supported_entities(),
        vec![EntityType::from(BuiltIn::Person)]
    );
}

#[test]
fn one_analyzer_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Analyzer>();
    assert_send_sync::<Policy>();
    let analyzer = Arc::new(Analyzer::new());
    let policy = Arc::new(Policy::default());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (analyzer, policy) = (analyzer.clone(), policy.clone());
            std::thread::spawn(move || {
                let text = format!("user{i}@example.com and 4111 1111 1111 1111");
                analyzer.analyze(&text, &policy).len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 2);
    }
    assert!(analyzer.supported_entities().len() >= 20);
}

#[test]
fn repeated_values_are_found_everywhere() {
    let analyzer = Analyzer::new();
    let text = "My name is Zorblax. Zorblax likes tea.";
    let found = analyzer.analyze(text, &Policy::default());
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[1].explanation.pattern.as_str(), "repeated_value");
}

#[test]
fn a_url_followed_by_many_closing_brackets() {
    // Trimming is linear in the span: with 1M closers a quadratic trim would take
    // hours in a debug build; this takes well under a second.
    let analyzer = Analyzer::new();
    let policy = Policy::only(&[BuiltIn::Url]);
    for n in [65_536, 1_000_000] {
        let text = format!("see http://a.co/{} and (www.example.org/b))", ")".repeat(n));
        let findings = analyzer.analyze(&text, &policy);
        let urls: Vec<&str> = findings.iter().map(|f| value(&text, f)).collect();
        assert_eq!(urls, ["http://a.co/", "www.example.org/b"], "{n} closers");
    }
}
