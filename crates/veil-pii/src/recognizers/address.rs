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
    patterns: Vec<(Regex, &'static str)>,
    /// Street words of every language: a window without one holds no address.
    keywords: AhoCorasick,
}

/// Street words (lower case, matched case-insensitively anywhere in a window).
const KEYWORDS: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "drive",
    "dr",
    "court",
    "ct",
    "place",
    "pl",
    "way",
    "terrace",
    "close",
    "crescent",
    "parkway",
    "pkwy",
    "square",
    "sq",
    "highway",
    "hwy",
    "circle",
    "cir",
    "trail",
    "row",
    "walk",
    "gardens",
    "grove",
    "mews",
    "straße",
    "strasse",
    "str.",
    "weg",
    "gasse",
    "platz",
    "allee",
    "ring",
    "damm",
    "ufer",
    "chaussee",
    "steig",
    "pfad",
    "straat",
    "laan",
    "plein",
    "gracht",
    "kade",
    "singel",
    "dijk",
    "hof",
    "steeg",
    "dreef",
    "pad",
    "markt",
    "rue",
    "av.",
    "bd",
    "chemin",
    "allée",
    "impasse",
    "quai",
    "route",
    "cours",
    "passage",
    "calle",
    "c/",
    "avenida",
    "avda",
    "plaza",
    "pza",
    "paseo",
    "camino",
    "carrera",
    "ronda",
    "travesía",
    "glorieta",
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
            (en, "street_en"),
            (de, "street_de"),
            (nl, "street_nl"),
            (fr, "street_fr"),
            (es, "street_es"),
        ]
        .into_iter()
        .map(|(p, name)| (Regex::new(&p).expect("built-in pattern compiles"), name))
        .collect();
        let keywords = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(KEYWORDS)
            .expect("built-in keywords compile");
        StreetAddressRecognizer { patterns, keywords }
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
            // A street word that ends a word ("Baker Street", "Hauptstraße", "rue").
            let has_keyword = self.keywords.find_iter(window).any(|m| {
                !window[m.end()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphabetic)
            });
            if !has_keyword {
                continue;
            }
            for (re, pattern) in &self.patterns {
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
