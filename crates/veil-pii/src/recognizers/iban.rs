//! IBANs: a country code, two check digits and the BBAN, contiguous or in groups
//! split by spaces or dashes; validated by mod-97 and the country's BBAN format.

use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::DIGIT;

pub(crate) struct IbanRecognizer;

const MAX_LEN: usize = 34;

fn is_head(b: &[u8], i: usize) -> bool {
    let upper = b.get(i).is_some_and(u8::is_ascii_uppercase)
        && b.get(i + 1).is_some_and(u8::is_ascii_uppercase);
    let lower = b.get(i).is_some_and(u8::is_ascii_lowercase)
        && b.get(i + 1).is_some_and(u8::is_ascii_lowercase);
    (upper || lower)
        && b.get(i + 2).is_some_and(u8::is_ascii_digit)
        && b.get(i + 3).is_some_and(u8::is_ascii_digit)
}

/// IBAN lengths of countries not (yet) in `iban_validate`'s registry: Pakistan, and
/// the countries publishing IBANs outside the SWIFT registry (mostly in Africa).
fn supplementary_length(country: &[u8]) -> Option<usize> {
    Some(match country {
        b"PK" => 24,
        b"AO" | b"CV" | b"GW" | b"MZ" => 25,
        b"DZ" | b"IR" => 26,
        b"CM" | b"CF" | b"TD" | b"KM" | b"CG" | b"GQ" | b"GA" | b"MG" => 27,
        b"BJ" | b"BF" | b"CI" | b"ML" | b"MA" | b"NE" | b"SN" | b"TG" | b"HN" => 28,
        _ => return None,
    })
}

/// Reads an IBAN at `start`; returns its end when some prefix ending on a group
/// boundary validates (so "IBAN ... 8901 X" still yields the IBAN).
fn read_iban(b: &[u8], start: usize) -> Option<usize> {
    // Letters must be all upper case or, for people typing fast, all lower case.
    let lower = b[start].is_ascii_lowercase();
    let letter_ok = |c: u8| {
        if lower {
            c.is_ascii_lowercase()
        } else {
            c.is_ascii_uppercase()
        }
    };
    let mut buf = [0u8; MAX_LEN];
    let mut n = 0;
    let mut pos = start;
    // Group ends: (byte end, compact length).
    let mut ends: [(usize, usize); 12] = [(0, 0); 12];
    let mut groups = 0;
    let mut sep: Option<u8> = None;
    loop {
        let run = b[pos..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || letter_ok(**c))
            .count();
        if run == 0 || n + run > MAX_LEN || groups == ends.len() {
            break;
        }
        for (k, c) in b[pos..pos + run].iter().enumerate() {
            buf[n + k] = c.to_ascii_uppercase();
        }
        n += run;
        pos += run;
        ends[groups] = (pos, n);
        groups += 1;
        // A letter or digit of the other case right after ends the value.
        if b.get(pos).is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        match b.get(pos) {
            Some(&c @ (b' ' | b'-'))
                if b.get(pos + 1)
                    .is_some_and(|d| d.is_ascii_digit() || letter_ok(*d))
                    && sep.is_none_or(|s| s == c) =>
            {
                sep = Some(c);
                pos += 1;
            }
            _ => break,
        }
    }
    for &(end, len) in ends[..groups].iter().rev() {
        if len < 15 {
            break;
        }
        let Ok(candidate) = std::str::from_utf8(&buf[..len]) else {
            continue;
        };
        match iban::Iban::try_from(candidate) {
            Ok(_) => return Some(end),
            // Countries that use IBANs but are missing from the crate's registry:
            // the checksum is verified and the length checked against our table.
            Err(iban::ParseIbanError::UnknownCountry(_))
                if supplementary_length(&buf[..2]) == Some(len) =>
            {
                return Some(end);
            }
            Err(_) => {}
        }
    }
    None
}

impl Recognizer for IbanRecognizer {
    fn name(&self) -> &str {
        "IbanRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::IbanCode.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::IbanCode) || input.flags & DIGIT == 0 {
            return;
        }
        let b = input.text.as_bytes();
        let mut resume = 0;
        for tok in input
            .tokens
            .iter()
            .filter(|t| t.has(DIGIT) && t.end - t.start >= 4)
        {
            if tok.start < resume {
                continue;
            }
            // The IBAN may follow a prefix such as "IBAN:" in the same token.
            let mut i = tok.start;
            while i + 4 <= tok.end {
                if is_head(b, i)
                    && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
                    && let Some(end) = read_iban(b, i)
                {
                    out.push(
                        Candidate::builtin(
                            BuiltIn::IbanCode,
                            i,
                            end,
                            1.0,
                            "IbanRecognizer",
                            "iban",
                        )
                        .validated(),
                    );
                    resume = end;
                    break;
                }
                i += 1;
            }
        }
    }
}
