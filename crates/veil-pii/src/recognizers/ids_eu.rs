//! Continental European identifiers: German tax id and postcode, French NIR,
//! Spanish NIF and NIE, Dutch BSN and Italian codice fiscale.

use super::isolated;
use crate::checksum::{
    elfproef, es_control_letter, iso7064_mod11_10, it_fiscal_check, mod_of_digits,
};
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{CAPITALIZED, DIGIT};
use regex::Regex;

pub(crate) struct EuIdsRecognizer {
    de_tax: Regex,
    plz: Regex,
    nir: Regex,
    nif: Regex,
    nie: Regex,
    bsn: Regex,
    fiscal: Regex,
}

const NAME: &str = "EuIdsRecognizer";
const TYPES: &[BuiltIn] = &[
    BuiltIn::DeTaxId,
    BuiltIn::DePlz,
    BuiltIn::FrNir,
    BuiltIn::EsNif,
    BuiltIn::EsNie,
    BuiltIn::NlBsn,
    BuiltIn::ItFiscalCode,
];

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

impl EuIdsRecognizer {
    pub(crate) fn new() -> Self {
        EuIdsRecognizer {
            de_tax: regex(r"(?-u)\b\d{2} ?\d{3} ?\d{3} ?\d{3}\b"),
            plz: regex(r"(?-u)\b\d{5}\b"),
            nir: regex(r"(?-u)\b[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AaBb]) ?\d{3} ?\d{3} ?\d{2}\b"),
            nif: regex(r"(?-u)\b\d{7,8}-?[A-Za-z]\b"),
            nie: regex(r"(?-u)\b[XYZxyz]-?\d{7}-?[A-Za-z]\b"),
            bsn: regex(r"(?-u)\b(?:\d{9}|\d{4}[. ]\d{2}[. ]\d{3}|\d{3}[. ]\d{3}[. ]\d{3})\b"),
            fiscal: regex(
                r"(?-u)(?i)\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b",
            ),
        }
    }
}

fn digits<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut d = [0u8; N];
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        *d.get_mut(n)? = b;
        n += 1;
    }
    (n == N).then_some(d)
}

/// Steuer-IdNr: 11 digits, no leading zero, at most one digit repeated in the first
/// ten (at most three times, not three in a row), ISO 7064 check digit.
fn de_tax_ok(d: &[u8; 11]) -> bool {
    if d[0] == b'0' {
        return false;
    }
    let mut counts = [0u8; 10];
    for b in &d[..10] {
        counts[usize::from(b - b'0')] += 1;
    }
    let multi = counts.iter().filter(|c| **c > 1).count();
    let max = counts.iter().copied().max().unwrap_or(0);
    if multi > 1 || max > 3 {
        return false;
    }
    if max == 3 && d[..10].windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        return false;
    }
    iso7064_mod11_10(d)
}

/// NIR: the key is 97 minus the 13-digit number mod 97. Corsica's departments
/// 2A and 2B count as 19 and 18 (the official "subtract 1,000,000 or 2,000,000").
fn nir_ok(s: &str) -> bool {
    let mut chars = [0u8; 15];
    let mut k = 0;
    for b in s.bytes().filter(u8::is_ascii_alphanumeric) {
        if k == chars.len() {
            return false;
        }
        chars[k] = b.to_ascii_uppercase();
        k += 1;
    }
    if k != chars.len() {
        return false;
    }
    let mut body = [0u8; 13];
    body.copy_from_slice(&chars[..13]);
    match (body[5], body[6]) {
        (b'2', b'A') => body[5..7].copy_from_slice(b"19"),
        (b'2', b'B') => body[5..7].copy_from_slice(b"18"),
        _ => {}
    }
    let month = u32::from(body[3].wrapping_sub(b'0')) * 10 + u32::from(body[4].wrapping_sub(b'0'));
    if !matches!(month, 1..=12 | 20..=42 | 50..=99) {
        return false;
    }
    let (Some(rem), Some(key)) = (mod_of_digits(&body, 97), mod_of_digits(&chars[13..], 100))
    else {
        return false;
    };
    key == 97 - rem
}

fn es_number_ok(number: u32, letter: u8) -> bool {
    es_control_letter(number) == letter.to_ascii_uppercase()
}

impl Recognizer for EuIdsRecognizer {
    fn name(&self) -> &str {
        NAME
    }

    fn entities(&self) -> Vec<EntityType> {
        TYPES.iter().map(|b| (*b).into()).collect()
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants_any(TYPES) || input.flags & DIGIT == 0 {
            return;
        }
        let text = input.text;
        for run in input.digit_runs {
            let (ws, we, digit_count) = (run.start, run.end, run.digits);
            let window = &text[ws..we];
            let mut push = |entity: BuiltIn,
                            s: usize,
                            e: usize,
                            score: f32,
                            pattern: &'static str,
                            validated: bool| {
                if isolated(text, ws + s, ws + e) {
                    let mut c = Candidate::builtin(entity, ws + s, ws + e, score, NAME, pattern);
                    c.checksum_validated = validated;
                    out.push(c);
                }
            };
            if input.wants(BuiltIn::DeTaxId) && digit_count >= 11 {
                for m in self.de_tax.find_iter(window) {
                    if digits::<11>(m.as_str()).is_some_and(|d| de_tax_ok(&d)) {
                        push(BuiltIn::DeTaxId, m.start(), m.end(), 0.5, "de_tax_id", true);
                    }
                }
            }
            if input.wants(BuiltIn::DePlz) && digit_count >= 5 {
                for m in self.plz.find_iter(window) {
                    let value: u32 = m.as_str().parse().unwrap_or(0);
                    if (1001..=99998).contains(&value) {
                        // "80331 München": a capitalized word after the number looks like a town.
                        let next_capitalized = input
                            .tokens
                            .iter()
                            .find(|t| t.start > ws + m.end())
                            .is_some_and(|t| t.has(CAPITALIZED) && !t.has(DIGIT));
                        let score = if next_capitalized { 0.3 } else { 0.05 };
                        push(BuiltIn::DePlz, m.start(), m.end(), score, "de_plz", false);
                    }
                }
            }
            if input.wants(BuiltIn::FrNir) && digit_count >= 13 {
                for m in self.nir.find_iter(window) {
                    if nir_ok(m.as_str()) {
                        push(BuiltIn::FrNir, m.start(), m.end(), 0.7, "fr_nir", true);
                    }
                }
            }
            if input.wants(BuiltIn::EsNif) && digit_count >= 7 {
                for m in self.nif.find_iter(window) {
                    let s = m.as_str();
                    let letter = s.as_bytes()[s.len() - 1];
                    let number: u32 = s
                        .bytes()
                        .filter(u8::is_ascii_digit)
                        .fold(0, |a, b| a * 10 + u32::from(b - b'0'));
                    if es_number_ok(number, letter) {
                        push(BuiltIn::EsNif, m.start(), m.end(), 0.9, "es_nif", true);
                    }
                }
            }
            if input.wants(BuiltIn::EsNie) && digit_count >= 7 {
                for m in self.nie.find_iter(window) {
                    let s = m.as_str().as_bytes();
                    let prefix = match s[0].to_ascii_uppercase() {
                        b'X' => 0,
                        b'Y' => 1,
                        _ => 2,
                    };
                    let number = s
                        .iter()
                        .filter(|b| b.is_ascii_digit())
                        .fold(prefix, |a, b| a * 10 + u32::from(b - b'0'));
                    if es_number_ok(number, s[s.len() - 1]) {
                        push(BuiltIn::EsNie, m.start(), m.end(), 0.95, "es_nie", true);
                    }
                }
            }
            if input.wants(BuiltIn::NlBsn) && digit_count >= 9 {
                for m in self.bsn.find_iter(window) {
                    if digits::<9>(m.as_str()).is_some_and(|d| elfproef(&d)) {
                        let grouped = m.len() > 9;
                        push(
                            BuiltIn::NlBsn,
                            m.start(),
                            m.end(),
                            if grouped { 0.5 } else { 0.4 },
                            "nl_bsn",
                            true,
                        );
                    }
                }
            }
            if input.wants(BuiltIn::ItFiscalCode) && we - ws >= 16 {
                for m in self.fiscal.find_iter(window) {
                    let mut code = [0u8; 16];
                    for (d, b) in code.iter_mut().zip(m.as_str().bytes()) {
                        *d = b.to_ascii_uppercase();
                    }
                    let valid = it_fiscal_check(&code) == Some(code[15]);
                    let score = if valid { 1.0 } else { 0.3 };
                    push(
                        BuiltIn::ItFiscalCode,
                        m.start(),
                        m.end(),
                        score,
                        "it_fiscal_code",
                        valid,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_tax_id() {
        assert!(de_tax_ok(b"12345678903"));
        assert!(!de_tax_ok(b"11111111111"));
        assert!(!de_tax_ok(b"11112345678"));
        assert!(!de_tax_ok(b"02345678901"));
    }

    #[test]
    fn french_nir() {
        // Specimen from public documentation: 1 84 12 76 451 089 46.
        assert!(nir_ok("184127645108946"));
        assert!(!nir_ok("184127645108947"));
    }
}
