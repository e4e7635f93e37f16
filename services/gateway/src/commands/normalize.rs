//! Folding a message for matching: lowercase, diacritics stripped, typographic
//! apostrophes made plain, with a map back to the original byte offsets.

use std::ops::Range;

/// A folded copy of a message and where each of its bytes came from.
pub(crate) struct Folded {
    /// Lowercase text without diacritics; what the rules match against.
    pub text: String,
    /// Original byte offset of the character that produced each folded byte; empty
    /// when the message was ASCII, where offsets are the same in both.
    origin: Vec<u32>,
}

impl Folded {
    /// Folds `original`; ASCII messages (the common case) skip the offset map.
    pub fn new(original: &str) -> Self {
        if original.is_ascii() {
            return Self {
                text: original.to_ascii_lowercase(),
                origin: Vec::new(),
            };
        }
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        for (offset, ch) in original.char_indices() {
            let before = text.len();
            fold_char(ch, &mut text);
            // Offsets fit u32: messages are bounded far below 4 GiB by the gateway.
            let at = u32::try_from(offset).unwrap_or(u32::MAX);
            origin.resize(origin.len() + (text.len() - before), at);
        }
        Self { text, origin }
    }

    /// Maps a byte span of the folded text back to the span of whole characters of
    /// `original` that produced it.
    pub fn original_span(&self, original: &str, span: Range<usize>) -> Range<usize> {
        if self.origin.is_empty() {
            return span;
        }
        if span.is_empty() {
            let at = self.origin_of(span.start, original.len());
            return at..at;
        }
        let start = self.origin_of(span.start, original.len());
        let last = self.origin_of(span.end - 1, original.len());
        let last_len = original
            .get(last..)
            .and_then(|rest| rest.chars().next())
            .map_or(0, char::len_utf8);
        start..last + last_len
    }

    fn origin_of(&self, folded: usize, fallback: usize) -> usize {
        self.origin.get(folded).map_or(fallback, |&at| at as usize)
    }
}

/// Appends the folded form of one character.
fn fold_char(ch: char, out: &mut String) {
    if ch.is_ascii() {
        out.push(ch.to_ascii_lowercase());
        return;
    }
    for lower in ch.to_lowercase() {
        match strip(lower) {
            Some(plain) => out.push_str(plain),
            None => out.push(lower),
        }
    }
}

/// Plain form of the accented letters and punctuation of the supported languages.
fn strip(ch: char) -> Option<&'static str> {
    Some(match ch {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'ç' | 'ć' | 'č' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => "i",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ś' | 'š' => "s",
        'ź' | 'ż' | 'ž' => "z",
        'ř' => "r",
        'ł' => "l",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ĳ' => "ij",
        '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{02BC}' | '\u{00B4}' | '\u{0060}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{00AB}' | '\u{00BB}' => "\"",
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' => "-",
        '\u{00A0}' | '\u{2007}' | '\u{202F}' | '\u{2009}' | '\u{200A}' => " ",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::Folded;

    #[test]
    fn folds_case_accents_and_apostrophes() {
        let folded = Folded::new("Löscht MEINE Daten, s’il vous plaît — Straße");
        assert_eq!(folded.text, "loscht meine daten, s'il vous plait - strasse");
    }

    #[test]
    fn maps_spans_back_to_whole_characters() {
        let original = "Bitte löscht meine Daten";
        let folded = Folded::new(original);
        let start = folded.text.find("loscht").expect("folded verb");
        let span = folded.original_span(original, start..start + "loscht".len());
        assert_eq!(&original[span], "löscht");
        let end = folded.text.len();
        let span = folded.original_span(original, end - 5..end);
        assert_eq!(&original[span], "Daten");
    }

    #[test]
    fn expansions_map_to_the_character_that_produced_them() {
        let original = "Straße";
        let folded = Folded::new(original);
        let span = folded.original_span(original, 4..5);
        assert_eq!(&original[span], "ß");
    }

    #[test]
    fn ascii_keeps_offsets() {
        let folded = Folded::new("Delete My Data");
        assert_eq!(folded.text, "delete my data");
        assert_eq!(folded.original_span("Delete My Data", 7..14), 7..14);
    }
}
