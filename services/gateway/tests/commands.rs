//! Privacy command detection: per-language tables of requests and of ordinary support
//! talk that must not trigger, with precision and recall printed per language.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use veil_gateway::commands::{CommandDetector, CommandKind, suggested_reply};

#[path = "commands/de.rs"]
mod de;
#[path = "commands/en.rs"]
mod en;
#[path = "commands/es.rs"]
mod es;
#[path = "commands/fr.rs"]
mod fr;
#[path = "commands/nl.rs"]
mod nl;

/// A message and the command it is (None: not a command).
pub type Case = (&'static str, Option<CommandKind>);

fn detector() -> &'static CommandDetector {
    static DETECTOR: OnceLock<CommandDetector> = OnceLock::new();
    DETECTOR.get_or_init(CommandDetector::new)
}

/// Runs a table with and without the locale hint; every case must come out right.
fn check_table(language: &str, cases: &[Case]) {
    let positives = cases.iter().filter(|(_, kind)| kind.is_some()).count();
    assert!(
        positives >= 25,
        "{language}: only {positives} positive cases"
    );
    assert!(
        cases.len() - positives >= 25,
        "{language}: too few negative cases"
    );
    let mut failures = Vec::new();
    for hint in [language, ""] {
        let (mut true_positive, mut false_positive, mut false_negative) = (0, 0, 0);
        for (text, expected) in cases {
            let found = detector().detect(text, hint);
            let got = found
                .as_ref()
                .map(|command| (command.kind, command.language));
            match (expected, &got) {
                (Some(kind), Some(got)) if *got == (*kind, language) => true_positive += 1,
                (Some(_), Some(_)) => {
                    false_positive += 1;
                    false_negative += 1;
                }
                (Some(_), None) => false_negative += 1,
                (None, Some(_)) => false_positive += 1,
                (None, None) => {}
            }
            if got != expected.map(|kind| (kind, language)) {
                failures.push(format!(
                    "[hint {hint:?}] {text:?}: expected {expected:?}, got {found:?}"
                ));
            }
            if let Some(command) = &found {
                assert!((0.0..=1.0).contains(&command.confidence), "{text:?}");
                assert!(text.get(command.matched.clone()).is_some(), "{text:?}");
            }
        }
        let precision = ratio(true_positive, true_positive + false_positive);
        let recall = ratio(true_positive, true_positive + false_negative);
        println!(
            "{language} (hint {hint:?}): {} cases, precision {precision:.3}, recall {recall:.3}",
            cases.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

#[test]
fn english_table() {
    check_table("en", en::CASES);
}

#[test]
fn german_table() {
    check_table("de", de::CASES);
}

#[test]
fn french_table() {
    check_table("fr", fr::CASES);
}

#[test]
fn spanish_table() {
    check_table("es", es::CASES);
}

#[test]
fn dutch_table() {
    check_table("nl", nl::CASES);
}

#[test]
fn how_questions_score_lower_than_requests() {
    let request = detector()
        .detect("Please delete my account.", "en")
        .unwrap();
    let question = detector()
        .detect("How can I delete my account?", "en")
        .unwrap();
    assert_eq!(question.kind, CommandKind::Erase);
    assert!(question.confidence < 0.6, "{question:?}");
    assert!(request.confidence >= 0.75, "{request:?}");
    let question = detector()
        .detect("Wie kann ich mein Konto löschen?", "")
        .unwrap();
    assert_eq!(
        (question.kind, question.language),
        (CommandKind::Erase, "de")
    );
    assert!(question.confidence < 0.6, "{question:?}");
}

#[test]
fn withdrawals_name_their_purposes() {
    let purposes = |text: &str| detector().detect(text, "").unwrap().purposes;
    assert_eq!(purposes("Stop sending me marketing emails"), ["marketing"]);
    assert_eq!(
        purposes("Don't use my chats to train your AI"),
        ["model_training"]
    );
    assert_eq!(
        purposes("Please stop using my data for analytics and personalisation."),
        ["analytics", "personalization"]
    );
    assert_eq!(
        purposes("Hört auf, meine Daten für Werbung zu nutzen"),
        ["marketing"]
    );
    assert!(purposes("I withdraw my consent.").is_empty());
    assert!(purposes("Delete my data, I hate your newsletter.").is_empty());
}

#[test]
fn negation_cancels_erasure_but_not_an_opt_out() {
    assert_eq!(detector().detect("Please don't delete my data", "en"), None);
    assert_eq!(
        detector().detect("Ich will meine Daten NICHT löschen", "de"),
        None
    );
    assert_eq!(
        detector().detect("Löscht meine Daten bitte nicht", "de"),
        None
    );
    let opt_out = detector()
        .detect("don't use my chats to train your AI", "en")
        .unwrap();
    assert_eq!(opt_out.kind, CommandKind::OptOutAiTraining);
    let erase = detector()
        .detect("I don't know how, but please delete my data", "en")
        .unwrap();
    assert_eq!(erase.kind, CommandKind::Erase);
    let erase = detector()
        .detect("I don't know how to delete my data", "en")
        .unwrap();
    assert_eq!(erase.kind, CommandKind::Erase);
}

#[test]
fn article_references_take_the_language_of_the_message() {
    let found = detector()
        .detect("Ich beantrage Löschung nach Art. 17", "")
        .unwrap();
    assert_eq!((found.kind, found.language), (CommandKind::Erase, "de"));
    let found = detector().detect("Art. 15", "fr-BE").unwrap();
    assert_eq!((found.kind, found.language), (CommandKind::Access, "fr"));
    let found = detector().detect("Art. 7(3) DSGVO", "").unwrap();
    assert_eq!(
        (found.kind, found.language),
        (CommandKind::WithdrawConsent, "de")
    );
    let found = detector().detect("Art. 20 please", "").unwrap();
    assert_eq!((found.kind, found.language), (CommandKind::Export, "en"));
}

#[test]
fn matched_span_covers_the_phrase_in_the_original_text() {
    let text = "Hola. ¿Qué datos tenéis de mí?";
    let found = detector().detect(text, "es").unwrap();
    assert_eq!(found.kind, CommandKind::Access);
    assert_eq!(&text[found.matched], "Qué datos tenéis de mí");
}

#[test]
fn replies_are_in_the_detected_language() {
    let found = detector().detect("Supprimez mes données", "").unwrap();
    assert_eq!(
        suggested_reply(found.kind, found.language),
        "J'ai transmis votre demande de suppression de vos données. Vous recevrez une confirmation dans un délai d'un mois."
    );
}

/// Throughput on a mix of ordinary and command messages; run with
/// `cargo test --release -p veil-gateway --test commands -- --ignored --nocapture`.
#[test]
#[ignore = "timing figure, not a check"]
fn throughput() {
    let tables = [en::CASES, de::CASES, fr::CASES, es::CASES, nl::CASES];
    let messages: Vec<&str> = tables
        .iter()
        .flat_map(|cases| cases.iter().map(|(text, _)| *text))
        .collect();
    let long = "I ordered a blue jacket last week but the size is wrong and I would like to know when the replacement will arrive, thanks a lot for your help. ".repeat(8);
    let started = std::time::Instant::now();
    let detector = CommandDetector::new();
    println!("build: {:?}", started.elapsed());
    for (name, batch) in [
        ("table", messages.clone()),
        ("1 KiB ordinary", vec![long.as_str()]),
    ] {
        let rounds = 20_000 / batch.len().max(1);
        let mut hits = 0usize;
        // The lazy DFAs build their states on first use; the first pass shows that cost.
        for pass in ["cold", "warm"] {
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                for text in &batch {
                    hits += usize::from(detector.detect(text, "").is_some());
                }
            }
            let per_message = started.elapsed() / u32::try_from(rounds * batch.len()).unwrap();
            println!("{name} ({pass}): {per_message:?} per message ({hits} hits)");
        }
    }
}
