//! Street addresses: a house number next to a street name that carries a street
//! word ("Street", "-straße", "rue", "Calle", "-straat"). Looked for only around
//! numbers, so prose without digits costs nothing.

use super::neighbourhoods;
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::DIGIT;
use aho_corasick::AhoCorasick;
use regex::Regex;

pub(crate) struct StreetAddressRecognizer {
    /// Each with its name and its language's bit ([`EN`] ...), which street words name.
    patterns: Vec<(Regex, &'static str, u8)>,
    /// Street words of every language: a window without one holds no address.
    keywords: AhoCorasick,
}

/// The language of a street pattern, as a bit: a street word names the patterns it serves.
const EN: u8 = 1;
const DE: u8 = 1 << 1;
const NL: u8 = 1 << 2;
const FR: u8 = 1 << 3;
const ES: u8 = 1 << 4;

/// Where a street word stands in its word: the English, French and Spanish ones are
/// words of their own ("Baker Street", "rue", "Calle"); the German and Dutch ones end a
/// compound ("Hauptstraße", "Dorpsstraat"). A match elsewhere ("st" ending "ist", "rue"
/// ending "true") is no street word, and the patterns, costly Unicode regexes on text with
/// non-ASCII letters (their lazy DFA gives up there), are not run for it.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Word,
    Suffix,
}

/// Street words (lower case, matched case-insensitively), the patterns they serve and
/// where they stand.
const KEYWORDS: &[(&str, u8, Place)] = &[
    ("street", EN, Place::Word),
    ("st", EN, Place::Word),
    ("avenue", EN | FR, Place::Word),
    ("ave", EN, Place::Word),
    ("road", EN, Place::Word),
    ("rd", EN, Place::Word),
    ("boulevard", EN | FR, Place::Word),
    ("blvd", EN, Place::Word),
    ("lane", EN, Place::Word),
    ("ln", EN, Place::Word),
    ("drive", EN, Place::Word),
    ("dr", EN, Place::Word),
    ("court", EN, Place::Word),
    ("ct", EN, Place::Word),
    ("place", EN | FR, Place::Word),
    ("pl", EN, Place::Word),
    ("way", EN, Place::Word),
    ("terrace", EN, Place::Word),
    ("close", EN, Place::Word),
    ("crescent", EN, Place::Word),
    ("parkway", EN, Place::Word),
    ("pkwy", EN, Place::Word),
    ("square", EN | FR, Place::Word),
    ("sq", EN, Place::Word),
    ("highway", EN, Place::Word),
    ("hwy", EN, Place::Word),
    ("circle", EN, Place::Word),
    ("cir", EN, Place::Word),
    ("trail", EN, Place::Word),
    ("row", EN, Place::Word),
    ("walk", EN, Place::Word),
    ("gardens", EN, Place::Word),
    ("grove", EN, Place::Word),
    ("mews", EN, Place::Word),
    ("straße", DE, Place::Suffix),
    ("strasse", DE, Place::Suffix),
    ("str.", DE, Place::Suffix),
    ("weg", DE | NL, Place::Suffix),
    ("gasse", DE, Place::Suffix),
    ("platz", DE, Place::Suffix),
    ("allee", DE, Place::Suffix),
    ("allee", FR, Place::Word),
    ("ring", DE, Place::Suffix),
    ("damm", DE, Place::Suffix),
    ("ufer", DE, Place::Suffix),
    ("chaussee", DE, Place::Suffix),
    ("steig", DE, Place::Suffix),
    ("pfad", DE, Place::Suffix),
    ("straat", NL, Place::Suffix),
    ("laan", NL, Place::Suffix),
    ("plein", NL, Place::Suffix),
    ("gracht", NL, Place::Suffix),
    ("kade", NL, Place::Suffix),
    ("singel", NL, Place::Suffix),
    ("dijk", NL, Place::Suffix),
    ("hof", NL, Place::Suffix),
    ("steeg", NL, Place::Suffix),
    ("dreef", NL, Place::Suffix),
    ("pad", NL, Place::Suffix),
    ("markt", NL, Place::Suffix),
    ("rue", FR, Place::Word),
    ("av.", FR | ES, Place::Word),
    ("bd", FR, Place::Word),
    ("chemin", FR, Place::Word),
    ("allée", FR, Place::Word),
    ("impasse", FR, Place::Word),
    ("quai", FR, Place::Word),
    ("route", FR, Place::Word),
    ("cours", FR, Place::Word),
    ("passage", FR, Place::Word),
    ("calle", ES, Place::Word),
    ("c/", ES, Place::Word),
    ("avenida", ES, Place::Word),
    ("avda", ES, Place::Word),
    ("plaza", ES, Place::Word),
    ("pza", ES, Place::Word),
    ("paseo", ES, Place::Word),
    ("camino", ES, Place::Word),
    ("carrera", ES, Place::Word),
    ("ronda", ES, Place::Word),
    ("travesía", ES, Place::Word),
    ("glorieta", ES, Place::Word),
];

const NAME: &str = "StreetAddressRecognizer";
const SCORE: f32 = 0.6;

impl StreetAddressRecognizer {
    pub(crate) fn new() -> Self {
        let cap = r"\p{Lu}[\p{L}'.\-]*";
        let en = format!(
            r"\b\d{{1,5}}[A-Za-z]?,?\s+(?:{cap}\s+){{0,3}}(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|terrace|close|crescent|parkway|pkwy|square|sq|highway|hwy|circle|cir|trail|row|walk|gardens|grove|mews)\b\.?(?:,?\s+(?i:apt|apartment|suite|unit|flat)\.?\s*#?\w+)?"
        );
        let de = format!(
            r"\b(?:{cap}\s+){{0,2}}\p{{Lu}}[\p{{L}}\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|steig|pfad)\s+\d{{1,4}}(?:\s?[a-zA-Z]\b)?"
        );
        let nl = format!(
            r"\b(?:(?:{cap}|van|de|der|den|het)\s+){{0,3}}\p{{Lu}}[\p{{L}}'\-]*(?:straat|laan|weg|plein|gracht|kade|singel|dijk|hof|steeg|dreef|pad|markt)\s+\d{{1,4}}(?:\s?[a-zA-Z]\b|-\d+)?"
        );
        let fr = format!(
            r"\b\d{{1,4}}(?:\s?(?i:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|chemin|place|allée|allee|impasse|quai|route|cours|square|passage)\s+(?:(?:de|du|des|la|le|l'|d')\s*)*{cap}(?:\s+(?:(?:de|du|des|la|le|l'|d')\s*)*{cap}){{0,3}}"
        );
        let es = format!(
            r"\b(?i:calle|c/|avenida|avda\.?|av\.|plaza|pza\.|paseo|camino|carrera|ronda|travesía|glorieta)\s+(?:(?:de|del|la|las|los|el)\s+)*{cap}(?:\s+(?:(?:de|del|la|las|los|el)\s+)*{cap}){{0,3}},?\s+(?:(?i:n)[º°o]\.?\s*)?\d{{1,4}}\b"
        );
        let patterns = [
            (en, "street_en", EN),
            (de, "street_de", DE),
            (nl, "street_nl", NL),
            (fr, "street_fr", FR),
            (es, "street_es", ES),
        ]
        .into_iter()
        .map(|(p, name, language)| {
            let re = Regex::new(&p).expect("built-in pattern compiles");
            (re, name, language)
        })
        .collect();
        let keywords = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(KEYWORDS.iter().map(|(word, ..)| word))
            .expect("built-in keywords compile");
        StreetAddressRecognizer { patterns, keywords }
    }
}

impl StreetAddressRecognizer {
    /// The languages (bits) whose street words stand in `window` where such a word stands:
    /// ending a word, and starting one or ending a compound (see [`Place`]).
    fn street_words(&self, window: &str) -> u8 {
        let mut wanted = 0;
        for m in self.keywords.find_overlapping_iter(window) {
            let (_, patterns, place) = KEYWORDS[m.pattern().as_usize()];
            let letter_after = window[m.end()..]
                .chars()
                .next()
                .is_some_and(char::is_alphabetic);
            let before = window[..m.start()].chars().next_back();
            let in_place = match place {
                Place::Word => !before.is_some_and(char::is_alphabetic),
                Place::Suffix => before.is_some_and(|c| c.is_alphabetic() || c == '-'),
            };
            if !letter_after && in_place {
                wanted |= patterns;
            }
        }
        wanted
    }
}

impl Recognizer for StreetAddressRecognizer {
    fn name(&self) -> &str {
        NAME
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::StreetAddress.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::StreetAddress) || input.flags & DIGIT == 0 {
            return;
        }
        let text = input.text;
        let first = out.len();
        for (ws, we) in neighbourhoods(input, 5, 6, |t| t.has(DIGIT) && t.end - t.start <= 6) {
            let window = &text[ws..we];
            let wanted = self.street_words(window);
            let patterns = self.patterns.iter();
            for (re, pattern, _) in patterns.filter(|(.., language)| wanted & language != 0) {
                for m in re.find_iter(window) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let end = text[s..e].trim_end_matches([',', ' ']).len() + s;
                    let duplicate = out[first..].iter().any(|c| c.start < end && s < c.end);
                    if !duplicate {
                        out.push(Candidate::builtin(
                            BuiltIn::StreetAddress,
                            s,
                            end,
                            SCORE,
                            NAME,
                            pattern,
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(window: &str) -> u8 {
        StreetAddressRecognizer::new().street_words(window)
    }

    #[test]
    fn a_street_word_counts_only_where_such_a_word_stands() {
        assert_eq!(wanted("Meine Nummer ist +49 30 12345678, bitte"), 0);
        assert_eq!(wanted("it is true, 5 of them"), 0);
        assert_eq!(wanted("221B Baker Street, London"), EN);
        assert_eq!(wanted("Hauptstraße 5, 10115 Berlin"), DE);
        assert_eq!(wanted("Dorpsstraat 12"), NL);
        assert_eq!(wanted("Kirchweg 3"), DE | NL);
        assert_eq!(wanted("12 rue de la Paix"), FR);
        assert_eq!(wanted("Lindenallee 4"), DE);
        assert_eq!(wanted("3 allee des Pins"), FR);
        assert_eq!(wanted("Calle de Alcalá, 45"), ES);
        assert_eq!(wanted("10 place Vendôme"), EN | FR);
    }
}
