//! UK identifiers: NHS number (mod 11), National Insurance number (strict
//! prefix and suffix letters) and postcodes (strict letter positions).

use super::{isolated, joined};
use crate::checksum::nhs;
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{DIGIT, LOWER, Token, UPPER};
use regex::Regex;

pub(crate) struct UkIdsRecognizer {
    nhs: Regex,
    nino: Regex,
    postcode: Regex,
}

const NAME: &str = "UkIdsRecognizer";
const TYPES: &[BuiltIn] = &[BuiltIn::UkNhs, BuiltIn::UkNino, BuiltIn::UkPostcode];

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

impl UkIdsRecognizer {
    pub(crate) fn new() -> Self {
        UkIdsRecognizer {
            nhs: regex(r"(?-u)\b\d{3}[- ]?\d{3}[- ]?\d{4}\b"),
            nino: regex(
                r"(?-u)(?i)\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
            ),
            postcode: regex(
                r"(?-u)\b(?:GIR ?0AA|[A-PR-UWYZ](?:\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRV-Y]) ?\d[ABD-HJLNP-UW-Z]{2})\b",
            ),
        }
    }
}

/// Digit runs widened by one letter-only token on each side ("AA 12 34 56 B",
/// "GIR 0AA"), so only text around numbers is searched.
fn widened<'a>(
    input: &'a Input<'_>,
    min_digits: usize,
    affix: impl Fn(&Token) -> bool + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let (tokens, text) = (input.tokens, input.text);
    input
        .digit_runs
        .iter()
        .filter(move |r| r.digits >= min_digits)
        .map(move |r| {
            let (first, last) = (r.first_token, r.last_token);
            let (mut ws, mut we) = (r.start, r.end);
            if first > 0
                && first < tokens.len()
                && affix(&tokens[first - 1])
                && joined(text, &tokens[first - 1], &tokens[first])
            {
                ws = tokens[first - 1].start;
            }
            if last + 1 < tokens.len()
                && affix(&tokens[last + 1])
                && joined(text, &tokens[last], &tokens[last + 1])
            {
                we = tokens[last + 1].end;
            }
            (ws, we)
        })
}

const NINO_BAD_PREFIXES: &[&[u8; 2]] = &[b"BG", b"GB", b"NK", b"KN", b"NT", b"TN", b"ZZ"];

impl Recognizer for UkIdsRecognizer {
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
        if input.wants(BuiltIn::UkNhs) {
            for run in input.digit_runs.iter().filter(|r| r.digits >= 10) {
                let (ws, we) = (run.start, run.end);
                for m in self.nhs.find_iter(&text[ws..we]) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let mut d = [0u8; 10];
                    for (slot, b) in d
                        .iter_mut()
                        .zip(m.as_str().bytes().filter(u8::is_ascii_digit))
                    {
                        *slot = b;
                    }
                    if nhs(&d) && isolated(text, s, e) {
                        let grouped = m.len() > 10;
                        let score = if grouped { 0.6 } else { 0.4 };
                        out.push(
                            Candidate::builtin(BuiltIn::UkNhs, s, e, score, NAME, "nhs")
                                .validated(),
                        );
                    }
                }
            }
        }
        // Letters without digits ("AA", "B", "GIR") belong to these values too.
        let short_alpha = |t: &Token| !t.has(DIGIT) && t.has(UPPER | LOWER) && t.end - t.start <= 4;
        if input.wants(BuiltIn::UkNino) {
            for (ws, we) in widened(input, 6, short_alpha) {
                for m in self.nino.find_iter(&text[ws..we]) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let p = m.as_str().as_bytes();
                    let prefix = [p[0].to_ascii_uppercase(), p[1].to_ascii_uppercase()];
                    if NINO_BAD_PREFIXES.iter().any(|bad| **bad == prefix) || !isolated(text, s, e)
                    {
                        continue;
                    }
                    out.push(Candidate::builtin(BuiltIn::UkNino, s, e, 0.5, NAME, "nino"));
                }
            }
        }
        if input.wants(BuiltIn::UkPostcode) {
            let upper_affix = |t: &Token| !t.has(DIGIT) && t.has(UPPER) && t.end - t.start <= 4;
            for (ws, we) in widened(input, 1, upper_affix) {
                for m in self.postcode.find_iter(&text[ws..we]) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    if !isolated(text, s, e) {
                        continue;
                    }
                    let spaced = m.as_str().contains(' ');
                    let score = if spaced { 0.3 } else { 0.1 };
                    out.push(Candidate::builtin(
                        BuiltIn::UkPostcode,
                        s,
                        e,
                        score,
                        NAME,
                        "uk_postcode",
                    ));
                }
            }
        }
    }
}
