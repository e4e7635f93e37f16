//! Unit tests of the detector as a whole; the phrase tables are tested per language in
//! tests/commands.rs.

use super::rules::expand;
use super::{CommandDetector, CommandKind};
use super::{lang_any, lang_de, lang_en, lang_es, lang_fr, lang_nl};

#[test]
fn tables_compile_and_use_only_defined_fragments() {
    let detector = CommandDetector::try_new();
    assert!(detector.is_ok(), "{:?}", detector.err());
    let languages = [
        &lang_en::LANGUAGE,
        &lang_de::LANGUAGE,
        &lang_fr::LANGUAGE,
        &lang_es::LANGUAGE,
        &lang_nl::LANGUAGE,
    ];
    let neutral = lang_any::RULES
        .iter()
        .map(|spec| (spec, lang_any::FRAGMENTS));
    let all = languages
        .iter()
        .flat_map(|language| language.rules.iter().map(|spec| (spec, language.fragments)))
        .chain(neutral);
    for (spec, fragments) in all {
        let regex = expand(spec.pattern, fragments);
        let leftover = regex
            .find('{')
            .and_then(|at| regex[at + 1..].chars().next())
            .filter(char::is_ascii_uppercase);
        assert!(
            leftover.is_none(),
            "unexpanded fragment in {}",
            spec.pattern
        );
        assert!((0.0..=1.0).contains(&spec.confidence), "{}", spec.pattern);
    }
}

#[test]
fn detector_is_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<CommandDetector>();
}

#[test]
fn span_points_at_the_phrase_in_the_original_text() {
    let detector = CommandDetector::new();
    let text = "Hallo! Bitte löscht alle meine Daten.";
    let found = detector.detect(text, "").expect("erase");
    assert_eq!(found.kind, CommandKind::Erase);
    assert_eq!(&text[found.matched], "löscht alle meine Daten");
}

#[test]
fn ordinary_text_and_empty_text_are_not_commands() {
    let detector = CommandDetector::new();
    assert_eq!(detector.detect("", ""), None);
    assert_eq!(detector.detect("Привет, как дела?", "ru"), None);
    assert_eq!(
        detector.detect("What's the weather like in Paris?", "en"),
        None
    );
}

#[test]
fn article_references_with_a_paragraph_match() {
    let detector = CommandDetector::new();
    let found = detector.detect("Ich widerrufe nach Art. 7(3) DSGVO", "");
    assert_eq!(
        found.map(|found| found.kind),
        Some(CommandKind::WithdrawConsent)
    );
    let found = detector
        .detect("Art. 7 (3) GDPR", "en")
        .expect("withdrawal");
    assert_eq!(found.kind, CommandKind::WithdrawConsent);
}
