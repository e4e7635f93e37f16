//! Context words: words near a value that make it more likely to be what a
//! recognizer thinks it is ("SSN", "IBAN", "geboren"). They raise the score; the
//! explanation lists the words that did.

use crate::entity::BuiltIn;
use crate::finding::Label;
use crate::text::{Token, fold_into};
use std::sync::Arc;

/// How much a context word raises a score (Presidio uses the same factor).
pub const CONTEXT_BOOST: f32 = 0.35;
/// The lowest score a value with context gets.
pub const MIN_SCORE_WITH_CONTEXT: f32 = 0.55;
/// Tokens looked at before a value.
const WINDOW_BEFORE: usize = 6;
/// Tokens looked at after a value.
const WINDOW_AFTER: usize = 3;

/// Context words per built-in type: lower case, in en, de, fr, es and nl.
/// A word of five letters or more also matches as the start of a longer word,
/// so "steuer" matches "Steuernummer".
pub fn words_for(entity: BuiltIn) -> &'static [&'static str] {
    use BuiltIn::*;
    match entity {
        Person => &[],
        EmailAddress => &["email", "e-mail", "mail", "courriel", "correo"],
        PhoneNumber => &[
            "phone",
            "telephone",
            "tel",
            "mobile",
            "cell",
            "call",
            "fax",
            "whatsapp",
            "number",
            "telefon",
            "handy",
            "rufnummer",
            "téléphone",
            "portable",
            "teléfono",
            "telefono",
            "móvil",
            "movil",
            "celular",
            "telefoonnummer",
            "mobiel",
            "bel",
        ],
        CreditCard => &[
            "credit",
            "card",
            "visa",
            "mastercard",
            "amex",
            "debit",
            "kreditkarte",
            "karte",
            "carte",
            "bancaire",
            "tarjeta",
            "creditcard",
            "kaart",
            "cc",
        ],
        IbanCode => &[
            "iban", "bank", "account", "konto", "compte", "cuenta", "rekening", "bic", "swift",
        ],
        UsSsn => &["ssn", "social", "security", "ssns", "ss#", "ssid"],
        IpAddress => &[
            "ip", "ipv4", "ipv6", "address", "server", "host", "gateway", "subnet",
        ],
        Url => &[
            "url", "website", "link", "site", "http", "webseite", "lien", "enlace",
        ],
        Crypto => &[
            "wallet", "btc", "bitcoin", "eth", "ethereum", "crypto", "address",
        ],
        MacAddress => &[
            "mac", "hardware", "ethernet", "physical", "device", "address", "wifi", "nic",
        ],
        DateOfBirth => &[
            "born",
            "birth",
            "birthday",
            "dob",
            "d.o.b",
            "birthdate",
            "geboren",
            "geburtsdatum",
            "geburtstag",
            "geb",
            "né",
            "née",
            "naissance",
            "nacido",
            "nacida",
            "nacimiento",
            "cumpleaños",
            "geboortedatum",
            "verjaardag",
            "jarig",
            "age",
        ],
        StreetAddress => &[
            "address",
            "live",
            "living",
            "lives",
            "street",
            "adresse",
            "wohne",
            "wohnhaft",
            "anschrift",
            "habite",
            "domicile",
            "dirección",
            "direccion",
            "vivo",
            "domicilio",
            "adres",
            "woon",
            "woonachtig",
            "ship",
            "deliver",
            "send",
        ],
        UsPassport => &["passport", "travel", "document", "passports"],
        UsDriverLicense => &[
            "driver", "license", "licence", "dl", "driving", "permit", "lic",
        ],
        UsItin => &["itin", "taxpayer", "tax", "individual"],
        AbaRoutingNumber => &["aba", "routing", "abarouting", "bank", "transit"],
        UsNpi => &["npi", "provider", "national", "identifier"],
        UkNhs => &["nhs", "health", "national", "patient", "medical"],
        UkNino => &["nino", "national", "insurance", "ni"],
        UkPostcode => &[
            "postcode", "post", "code", "address", "zip", "live", "lives", "living", "deliver",
            "ship",
        ],
        DeTaxId => &[
            "steuer",
            "steuer-id",
            "steuerid",
            "idnr",
            "identifikationsnummer",
            "tin",
            "tax",
            "steuernummer",
        ],
        DePlz => &[
            "plz",
            "postleitzahl",
            "adresse",
            "anschrift",
            "wohnort",
            "wohne",
            "wohnhaft",
            "postcode",
            "zip",
            "ort",
            "lieferadresse",
        ],
        FrNir => &[
            "nir",
            "sécurité",
            "securite",
            "sociale",
            "insee",
            "vitale",
            "sécu",
            "secu",
            "ssn",
        ],
        EsNif => &[
            "nif",
            "dni",
            "documento",
            "identidad",
            "fiscal",
            "identificación",
            "identificacion",
        ],
        EsNie => &[
            "nie",
            "extranjero",
            "identidad",
            "número",
            "numero",
            "identificación",
            "identificacion",
        ],
        NlBsn => &[
            "bsn",
            "burgerservicenummer",
            "sofinummer",
            "sofi",
            "persoonsnummer",
        ],
        ItFiscalCode => &["codice", "fiscale", "cf", "fiscal", "tax"],
    }
}

/// Finds context words for `entity` around `[start, end)` and returns them.
/// `tokens` are the text's tokens; the window is a few tokens on each side.
pub fn find(
    text: &str,
    tokens: &[Token],
    start: usize,
    end: usize,
    words: &[&'static str],
) -> Vec<Label> {
    let mut hint = tokens.partition_point(|t| t.end <= start);
    find_near(text, tokens, start, end, words, &mut hint)
}

/// Like [`find`], starting the token search from `hint` (the token index of the
/// previous look-up), which is much cheaper on long texts whose values come in order.
pub fn find_near(
    text: &str,
    tokens: &[Token],
    start: usize,
    end: usize,
    words: &[&'static str],
    hint: &mut usize,
) -> Vec<Label> {
    let mut found = Vec::new();
    if words.is_empty() {
        return found;
    }
    // First letters of the words: most pieces are rejected on their first byte.
    let initials = words.iter().fold(0u64, |m, w| m | initial_bit(w));
    *hint = locate(tokens, start, *hint);
    for_each_piece(text, tokens, start, end, *hint, |piece| {
        if initials & initial_bit(piece) == 0 {
            return;
        }
        for word in words {
            if matches(piece, word) && !found.iter().any(|f: &Label| f.as_str() == *word) {
                found.push(Label::Static(word));
            }
        }
    });
    found
}

fn initial_bit(word: &str) -> u64 {
    match word.as_bytes().first() {
        Some(b @ b'a'..=b'z') => 1 << (b - b'a'),
        Some(b @ b'0'..=b'9') => 1 << (26 + (b - b'0')),
        Some(_) => 1 << 40,
        None => 0,
    }
}

/// Like [`find`] for words that are not static (tenant-defined context).
pub fn find_dynamic(
    text: &str,
    tokens: &[Token],
    start: usize,
    end: usize,
    words: &[Arc<str>],
) -> Vec<Label> {
    let mut found = Vec::new();
    if !words.is_empty() {
        let first = tokens.partition_point(|t| t.end <= start);
        for_each_piece(text, tokens, start, end, first, |piece| {
            for word in words {
                if matches(piece, word) && !found.iter().any(|f: &Label| f.as_str() == &**word) {
                    found.push(Label::Shared(word.clone()));
                }
            }
        });
    }
    found
}

fn matches(piece: &str, word: &str) -> bool {
    piece == word
        || (word.len() >= 5 && piece.starts_with(word))
        || (piece.contains('-') && piece.split('-').any(|p| p == word))
}

/// Calls `f` with each lower-cased word piece in the window around `[start, end)`.
/// The index of the first token that ends after `start`, searched by galloping
/// from `hint` (exact for any hint).
fn locate(tokens: &[Token], start: usize, hint: usize) -> usize {
    let ends_before = |i: usize| tokens[i].end <= start;
    let hint = hint.min(tokens.len());
    if hint < tokens.len() && ends_before(hint) {
        // Forward: find a bound past the answer, then binary search.
        let mut step = 1;
        let mut lo = hint + 1;
        while lo + step < tokens.len() && ends_before(lo + step) {
            lo += step;
            step *= 2;
        }
        let hi = (lo + step).min(tokens.len());
        lo + tokens[lo..hi].partition_point(|t| t.end <= start)
    } else {
        // Backward: the answer is at or before `hint`.
        let mut step = 1;
        let mut hi = hint;
        while hi >= step && !ends_before(hi - step) {
            hi -= step;
            step *= 2;
        }
        let lo = hi.saturating_sub(step);
        lo + tokens[lo..hi].partition_point(|t| t.end <= start)
    }
}

/// Calls `f` with each lower-cased word piece in the window around `[start, end)`;
/// `first` is the first token that ends after `start`.
fn for_each_piece(
    text: &str,
    tokens: &[Token],
    start: usize,
    end: usize,
    first: usize,
    mut f: impl FnMut(&str),
) {
    let last = first + tokens[first..].iter().take_while(|t| t.start < end).count();
    let before = first.saturating_sub(WINDOW_BEFORE)..first;
    let after = last..(last + WINDOW_AFTER).min(tokens.len());
    // The token holding the value may carry a prefix such as "IBAN:" or "NPI:".
    if let Some(tok) = tokens.get(first)
        && tok.start < start
    {
        pieces(&text[tok.start..start], &mut f);
    }
    for tok in tokens[before].iter().chain(tokens[after].iter()) {
        pieces(tok.text(text), &mut f);
    }
    if last > 0
        && let Some(tok) = tokens.get(last - 1)
        && tok.end > end
    {
        pieces(&text[end..tok.end], &mut f);
    }
}

fn pieces(token: &str, f: &mut impl FnMut(&str)) {
    let mut buf = [0u8; 64];
    for piece in token.split(|c: char| !(c.is_alphanumeric() || c == '#' || c == '-')) {
        let piece = piece.trim_matches('-');
        if piece.len() < 2 {
            continue;
        }
        if let Some(folded) = fold_into(piece, &mut buf) {
            f(folded);
        }
    }
}

/// Applies the context boost to a base score.
pub fn boosted(base: f32) -> f32 {
    (base + CONTEXT_BOOST).clamp(MIN_SCORE_WITH_CONTEXT, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    #[test]
    fn finds_words_before_and_after() {
        let text = "Meine Steuer-ID: 12345678903 liegt vor";
        let mut toks = Vec::new();
        tokenize(text, &mut toks);
        let start = text.find("123").unwrap_or(0);
        let found = find(text, &toks, start, start + 11, words_for(BuiltIn::DeTaxId));
        assert!(found.iter().any(|w| w.as_str() == "steuer"));
    }

    #[test]
    fn prefix_in_same_token() {
        let text = "nino:PR123612C";
        let mut toks = Vec::new();
        tokenize(text, &mut toks);
        let found = find(text, &toks, 5, text.len(), words_for(BuiltIn::UkNino));
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn galloping_matches_binary_search() {
        let text = "a bb ccc dddd e ff ggg hhhh i jj kkk llll m nn ooo pppp";
        let mut toks = Vec::new();
        tokenize(text, &mut toks);
        for start in 0..text.len() {
            let expected = toks.partition_point(|t| t.end <= start);
            for hint in 0..=toks.len() {
                assert_eq!(
                    locate(&toks, start, hint),
                    expected,
                    "start {start} hint {hint}"
                );
            }
        }
    }

    #[test]
    fn boost_is_capped() {
        assert!((boosted(0.05) - MIN_SCORE_WITH_CONTEXT).abs() < 1e-6);
        assert!((boosted(0.9) - 1.0).abs() < 1e-6);
    }
}
