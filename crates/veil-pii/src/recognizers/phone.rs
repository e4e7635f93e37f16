//! Phone numbers in international and national formats. Candidates are cut from
//! runs of digits and separators, then validated per region with the
//! `phonenumber` crate (libphonenumber's metadata). Only the regions whose
//! national format fits a candidate are tried, which keeps the cost bounded.

use super::{isolated, phone_meta};
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{DIGIT, char_before};
use phonenumber::country::Id;

pub(crate) struct PhoneRecognizer;

impl PhoneRecognizer {
    pub(crate) fn new() -> Self {
        PhoneRecognizer
    }
}

/// Regions tried for national-format numbers when the policy names none.
pub const DEFAULT_REGIONS: &[Id] = &[
    Id::US,
    Id::CA,
    Id::GB,
    Id::DE,
    Id::FR,
    Id::ES,
    Id::NL,
    Id::IT,
    Id::IL,
    Id::IN,
    Id::BR,
];

const INTERNATIONAL_SCORE: f32 = 0.7;
const FORMATTED_SCORE: f32 = 0.6;
const PLAIN_SCORE: f32 = 0.4;
const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 15;

/// Whether a national number of `digits` could belong to `region` at all.
fn plausible(region: Id, d: &[u8]) -> bool {
    let n = d.len();
    let first = d[0];
    let trunk = first == b'0';
    let cc = |code: &[u8]| d.starts_with(code) && n > code.len() + 6;
    match region {
        Id::US | Id::CA => (n == 10 && first >= b'2' && d[3] >= b'2') || (n == 11 && first == b'1'),
        Id::GB => (trunk && (10..=11).contains(&n)) || cc(b"44"),
        Id::DE => (trunk && (6..=14).contains(&n)) || cc(b"49"),
        Id::FR => (trunk && n == 10) || cc(b"33"),
        Id::NL => (trunk && n == 10) || cc(b"31"),
        Id::IT => {
            (trunk && (6..=11).contains(&n))
                || (first == b'3' && (9..=10).contains(&n))
                || cc(b"39")
        }
        Id::ES => (n == 9 && matches!(first, b'6'..=b'9')) || cc(b"34"),
        Id::IL => (trunk && (9..=10).contains(&n)) || cc(b"972"),
        Id::IN => (n == 10 && matches!(first, b'6'..=b'9')) || (trunk && n == 11) || cc(b"91"),
        Id::BR => {
            (trunk && (11..=12).contains(&n))
                || ((10..=11).contains(&n) && first != b'0')
                || cc(b"55")
        }
        Id::JP => (trunk && (10..=11).contains(&n)) || cc(b"81"),
        Id::CN => (n == 11 && first == b'1') || (trunk && (10..=12).contains(&n)) || cc(b"86"),
        _ => true,
    }
}

/// Dates and IPv4 addresses share the shape of some phone numbers; they are not phones.
fn looks_like_date_or_ip(s: &str) -> bool {
    let mut lens = [0usize; 5];
    let mut count = 0;
    for group in s.split(['.', '/', '-']) {
        if group.is_empty() || !group.bytes().all(|b| b.is_ascii_digit()) || count == lens.len() {
            return false;
        }
        lens[count] = group.len();
        count += 1;
    }
    match &lens[..count] {
        [1 | 2, 1 | 2, 2 | 4] | [4, 1 | 2, 1 | 2] => true,
        [a, b, c, d] => [a, b, c, d].iter().all(|l| (1..=3).contains(*l)) && s.contains('.'),
        _ => false,
    }
}

/// A run of digits, separators and parentheses starting at `start`; returns the
/// end of each digit group (byte offset) and the number of digits up to it.
fn groups(b: &[u8], start: usize, limit: usize, ends: &mut Vec<(usize, usize)>) {
    ends.clear();
    let mut pos = start;
    let mut digits = 0;
    if b[pos] == b'+' {
        pos += 1;
    }
    loop {
        if pos < limit && b[pos] == b'(' {
            pos += 1;
        }
        let run = b[pos..limit]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if run == 0 {
            break;
        }
        pos += run;
        digits += run;
        if pos < limit && b[pos] == b')' {
            pos += 1;
        }
        ends.push((pos, digits));
        if digits > MAX_DIGITS + 4 {
            break;
        }
        // One separator (or ") " / " (") between groups.
        let mut k = pos;
        if k < limit && matches!(b[k], b' ' | b'-' | b'.' | b'/') {
            k += 1;
        }
        if k < limit && b[k] == b' ' && b[k - 1] != b' ' {
            k += 1;
        }
        // "(415)555-0132": after a closing parenthesis the next group may follow directly.
        let after_paren = pos > 0 && b[pos - 1] == b')';
        if k == pos && !(k < limit && b[k] == b'(') && !after_paren {
            break;
        }
        if k < limit
            && (b[k].is_ascii_digit()
                || (b[k] == b'(' && b.get(k + 1).is_some_and(u8::is_ascii_digit)))
        {
            pos = k;
        } else {
            break;
        }
    }
}

fn digits_of(s: &str, buf: &mut [u8; 24]) -> usize {
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        if n == buf.len() {
            break;
        }
        buf[n] = b;
        n += 1;
    }
    n
}

/// Validates a candidate; returns its score when it is a phone number.
fn validate(candidate: &str, regions: &[Id]) -> Option<f32> {
    let mut buf = [0u8; 24];
    let n = digits_of(candidate, &mut buf);
    if !(MIN_DIGITS..=MAX_DIGITS + 2).contains(&n) || looks_like_date_or_ip(candidate) {
        return None;
    }
    let d = &buf[..n];
    let digits = std::str::from_utf8(d).ok()?;
    if candidate.starts_with('+') {
        return phone_meta::valid_international(digits).then_some(INTERNATIONAL_SCORE);
    }
    if d.starts_with(b"00") && d[2] != b'0' && phone_meta::valid_international(&digits[2..]) {
        return Some(INTERNATIONAL_SCORE);
    }
    let formatted = candidate.bytes().any(|b| !b.is_ascii_digit());
    regions
        .iter()
        .filter(|r| plausible(**r, d))
        .any(|r| phone_meta::valid_national(r.as_ref(), digits))
        .then_some(if formatted {
            FORMATTED_SCORE
        } else {
            PLAIN_SCORE
        })
}

impl Recognizer for PhoneRecognizer {
    fn name(&self) -> &str {
        "PhoneRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::PhoneNumber.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::PhoneNumber) || input.flags & DIGIT == 0 {
            return;
        }
        let regions = if input.phone_regions.is_empty() {
            DEFAULT_REGIONS
        } else {
            input.phone_regions
        };
        let text = input.text;
        let b = text.as_bytes();
        let mut ends = Vec::new();
        // Values already confirmed by a checksum (IBANs, cards) hold no phone number.
        let mut confirmed: Vec<(usize, usize)> = out
            .iter()
            .filter(|c| c.checksum_validated)
            .map(|c| (c.start, c.end))
            .collect();
        confirmed.sort_unstable();
        let mut next_confirmed = 0;
        for run in input.digit_runs.iter().filter(|r| r.digits >= MIN_DIGITS) {
            let (wstart, wend) = (run.start, run.end);
            let mut i = wstart;
            while i < wend {
                let c = b[i];
                let starts = c.is_ascii_digit()
                    || (matches!(c, b'+' | b'(') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
                // A number glued to a letter ("is415-555-0132") is not taken, as in
                // libphonenumber's VALID leniency.
                let glued =
                    starts && char_before(text, i).is_some_and(|p| p.is_alphanumeric() || p == '+');
                let continues =
                    i > 1 && matches!(b[i - 1], b'-' | b'.' | b'/') && b[i - 2].is_ascii_digit();
                let apart = !glued && !continues;
                if !(starts && apart) {
                    i += 1;
                    continue;
                }
                while next_confirmed < confirmed.len() && confirmed[next_confirmed].1 <= i {
                    next_confirmed += 1;
                }
                if let Some(&(start, end)) = confirmed
                    .get(next_confirmed)
                    .filter(|(start, _)| *start <= i)
                {
                    debug_assert!(start <= i);
                    i = end;
                    continue;
                }
                groups(b, i, wend, &mut ends);
                let mut matched = None;
                // Longest first: drop trailing groups until a valid number remains.
                for &(end, digits) in ends.iter().rev() {
                    if digits < MIN_DIGITS {
                        break;
                    }
                    if digits > MAX_DIGITS + 2 || !isolated(text, i, end) {
                        continue;
                    }
                    if let Some(score) = validate(&text[i..end], regions) {
                        matched = Some((end, score));
                        break;
                    }
                }
                match matched {
                    Some((end, score)) => {
                        out.push(Candidate::builtin(
                            BuiltIn::PhoneNumber,
                            i,
                            end,
                            score,
                            "PhoneRecognizer",
                            "phonenumber",
                        ));
                        i = end;
                    }
                    None => {
                        // Try again from the next group that follows a space.
                        let next = b[i..wend]
                            .iter()
                            .position(|c| *c == b' ')
                            .map(|p| i + p + 1);
                        i = next.unwrap_or(wend);
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
    fn validates_formats() {
        assert!(validate("+1 415 555 0132", DEFAULT_REGIONS).is_some());
        assert!(validate("(415) 555-0132", DEFAULT_REGIONS).is_some());
        assert!(validate("+44 (20) 7123 4567", DEFAULT_REGIONS).is_some());
        assert!(validate("030 1234567", DEFAULT_REGIONS).is_some());
        assert!(validate("12.03.1985", DEFAULT_REGIONS).is_none());
        assert!(validate("1234567", DEFAULT_REGIONS).is_none());
    }
}
