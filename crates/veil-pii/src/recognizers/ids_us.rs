//! US identifiers: SSN, ITIN, passport, driver licence, ABA routing number, NPI.
//! Bare digit runs are weak evidence on their own (many numbers have nine digits),
//! so they score low and rely on context words; checksums and delimiters add weight.

use super::isolated;
use crate::checksum::{aba, luhn};
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::DIGIT;
use regex::Regex;

pub(crate) struct UsIdsRecognizer {
    nine: Regex,
    passport: Regex,
    license_alnum: Regex,
    license_digits: Regex,
    aba_dashed: Regex,
    npi: Regex,
}

const NAME: &str = "UsIdsRecognizer";
const TYPES: &[BuiltIn] = &[
    BuiltIn::UsSsn,
    BuiltIn::UsItin,
    BuiltIn::UsPassport,
    BuiltIn::UsDriverLicense,
    BuiltIn::AbaRoutingNumber,
    BuiltIn::UsNpi,
];

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in pattern compiles")
}

impl UsIdsRecognizer {
    pub(crate) fn new() -> Self {
        UsIdsRecognizer {
            nine: regex(r"(?-u)\b\d{3}[- .]?\d{2}[- .]?\d{4}\b"),
            passport: regex(r"(?-u)\b[A-Z]?\d{8,9}\b"),
            license_alnum: regex(r"(?-u)\b[A-Z]{1,2}\d{4,14}\b"),
            license_digits: regex(r"(?-u)\b\d{9,13}\b"),
            aba_dashed: regex(r"(?-u)\b\d{4}-\d{4}-\d\b"),
            npi: regex(r"(?-u)\b\d{4}[- ]?\d{3}[- ]?\d{3}\b"),
        }
    }
}

/// Shape of a 3-2-4 number: both delimiters equal, none, or partial.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Delimited,
    Plain,
    Partial,
    Mixed,
}

fn shape(s: &str) -> Shape {
    let mut found = [0u8; 2];
    let mut n = 0;
    for b in s.bytes().filter(|b| !b.is_ascii_digit()) {
        if n < 2 {
            found[n] = b;
        }
        n += 1;
    }
    match n {
        0 => Shape::Plain,
        1 => Shape::Partial,
        2 if found[0] == found[1] => Shape::Delimited,
        _ => Shape::Mixed,
    }
}

fn nine_digits(s: &str) -> Option<[u8; 9]> {
    let mut d = [0u8; 9];
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        *d.get_mut(n)? = b;
        n += 1;
    }
    (n == 9).then_some(d)
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
}

/// Numbers that are not assigned or are famous specimens (the Woolworth card).
fn ssn_ok(d: &[u8; 9]) -> bool {
    let area = num(&d[..3]);
    let group = num(&d[3..5]);
    let serial = num(&d[5..]);
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    if d.iter().all(|b| *b == d[0]) {
        return false;
    }
    !matches!(
        &d[..],
        b"078051120" | b"219099999" | b"457555462" | b"123456789"
    )
}

fn itin_ok(d: &[u8; 9]) -> bool {
    let group = num(&d[3..5]);
    d[0] == b'9' && matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

fn shape_score(shape: Shape) -> f32 {
    match shape {
        Shape::Delimited => 0.5,
        Shape::Plain => 0.3,
        _ => 0.05,
    }
}

impl Recognizer for UsIdsRecognizer {
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
            let (ws, we, digits) = (run.start, run.end, run.digits);
            if digits < 6 {
                continue;
            }
            let window = &text[ws..we];
            if digits >= 9
                && input.wants_any(&[BuiltIn::UsSsn, BuiltIn::UsItin, BuiltIn::AbaRoutingNumber])
            {
                for m in self.nine.find_iter(window) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let sh = shape(m.as_str());
                    let Some(d) = nine_digits(m.as_str()) else {
                        continue;
                    };
                    if sh == Shape::Mixed || !isolated(text, s, e) {
                        continue;
                    }
                    if input.wants(BuiltIn::UsSsn) && ssn_ok(&d) {
                        out.push(Candidate::builtin(
                            BuiltIn::UsSsn,
                            s,
                            e,
                            shape_score(sh),
                            NAME,
                            "ssn",
                        ));
                    }
                    if input.wants(BuiltIn::UsItin) && itin_ok(&d) {
                        out.push(Candidate::builtin(
                            BuiltIn::UsItin,
                            s,
                            e,
                            shape_score(sh),
                            NAME,
                            "itin",
                        ));
                    }
                    if input.wants(BuiltIn::AbaRoutingNumber)
                        && sh == Shape::Plain
                        && matches!(d[0], b'0'..=b'3' | b'6'..=b'8')
                        && aba(&d)
                    {
                        out.push(
                            Candidate::builtin(BuiltIn::AbaRoutingNumber, s, e, 0.3, NAME, "aba")
                                .validated(),
                        );
                    }
                }
            }
            if digits >= 9 && input.wants(BuiltIn::AbaRoutingNumber) {
                for m in self.aba_dashed.find_iter(window) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let Some(d) = nine_digits(m.as_str()) else {
                        continue;
                    };
                    if matches!(d[0], b'0'..=b'3' | b'6'..=b'8') && aba(&d) && isolated(text, s, e)
                    {
                        out.push(
                            Candidate::builtin(
                                BuiltIn::AbaRoutingNumber,
                                s,
                                e,
                                0.4,
                                NAME,
                                "aba_dashed",
                            )
                            .validated(),
                        );
                    }
                }
            }
            if digits >= 8 && input.wants(BuiltIn::UsPassport) {
                for m in self.passport.find_iter(window) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let letter = m.as_str().as_bytes()[0].is_ascii_uppercase();
                    if m.len() == 9 && isolated(text, s, e) {
                        let (score, pattern) = if letter {
                            (0.1, "passport_next_generation")
                        } else {
                            (0.05, "passport")
                        };
                        out.push(Candidate::builtin(
                            BuiltIn::UsPassport,
                            s,
                            e,
                            score,
                            NAME,
                            pattern,
                        ));
                    }
                }
            }
            if input.wants(BuiltIn::UsDriverLicense) {
                for m in self.license_digits.find_iter(window) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    if isolated(text, s, e) {
                        out.push(Candidate::builtin(
                            BuiltIn::UsDriverLicense,
                            s,
                            e,
                            0.01,
                            NAME,
                            "license_digits",
                        ));
                    }
                }
                for m in self.license_alnum.find_iter(window) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                    if (6..=14).contains(&digits) && isolated(text, s, e) {
                        out.push(Candidate::builtin(
                            BuiltIn::UsDriverLicense,
                            s,
                            e,
                            0.3,
                            NAME,
                            "license_alphanumeric",
                        ));
                    }
                }
            }
            if digits >= 10 && input.wants(BuiltIn::UsNpi) {
                for m in self.npi.find_iter(window) {
                    let (s, e) = (ws + m.start(), ws + m.end());
                    let mut d = [0u8; 15];
                    d[..5].copy_from_slice(b"80840");
                    let mut n = 5;
                    for b in m.as_str().bytes().filter(u8::is_ascii_digit) {
                        d[n] = b;
                        n += 1;
                    }
                    let sh = shape(m.as_str());
                    let consistent = matches!(sh, Shape::Plain | Shape::Delimited);
                    let repeated = d[5..14].iter().all(|x| *x == d[5]);
                    if n == 15
                        && matches!(d[5], b'1' | b'2')
                        && consistent
                        && !repeated
                        && luhn(&d)
                        && isolated(text, s, e)
                    {
                        out.push(
                            Candidate::builtin(BuiltIn::UsNpi, s, e, 0.4, NAME, "npi").validated(),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssn_rules() {
        assert!(ssn_ok(b"078051123"));
        assert!(!ssn_ok(b"078051120"));
        assert!(!ssn_ok(b"666000000"));
        assert!(!ssn_ok(b"078001123"));
        assert!(itin_ok(b"911701234"));
        assert!(!itin_ok(b"911891234"));
    }
}
