//! Language hints.

use serde::{Deserialize, Serialize};

/// A language whose name lists and context words Veil ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    En,
    /// German.
    De,
    /// French.
    Fr,
    /// Spanish.
    Es,
    /// Dutch.
    Nl,
}

impl Language {
    /// Every supported language.
    pub const ALL: [Language; 5] = [
        Language::En,
        Language::De,
        Language::Fr,
        Language::Es,
        Language::Nl,
    ];

    /// Bit of the language in a [`LangSet`].
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Parses an ISO 639-1 code (`en`, `de-CH` is read as `de`).
    pub fn parse(code: &str) -> Option<Language> {
        let base = code.split(['-', '_']).next().unwrap_or(code);
        match base.to_ascii_lowercase().as_str() {
            "en" => Some(Language::En),
            "de" => Some(Language::De),
            "fr" => Some(Language::Fr),
            "es" => Some(Language::Es),
            "nl" => Some(Language::Nl),
            _ => None,
        }
    }
}

/// A set of languages as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LangSet(pub u8);

impl LangSet {
    /// All languages.
    pub const ALL: LangSet = LangSet(0b1_1111);

    /// Builds a set from hints; no hints means all languages.
    pub fn from_hints(hints: &[Language]) -> LangSet {
        if hints.is_empty() {
            return LangSet::ALL;
        }
        LangSet(hints.iter().fold(0, |acc, l| acc | l.bit()))
    }

    /// Whether the set shares a language with a bit mask.
    #[inline]
    pub fn intersects(self, bits: u8) -> bool {
        self.0 & bits != 0
    }

    /// Whether the set holds a language.
    #[inline]
    pub fn contains(self, lang: Language) -> bool {
        self.0 & lang.bit() != 0
    }
}
