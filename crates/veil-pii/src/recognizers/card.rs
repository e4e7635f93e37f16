//! Payment card numbers: 12 to 19 digits, contiguous or in groups split by spaces
//! or dashes, with a known issuer prefix and a valid Luhn check digit.

use super::isolated;
use crate::checksum::luhn;
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::DIGIT;

pub(crate) struct CardRecognizer;

impl CardRecognizer {
    pub(crate) fn new() -> Self {
        CardRecognizer
    }
}

/// Whether the leading digits and length belong to a card issuer range.
fn issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let p2 = u32::from(d[0] - b'0') * 10 + u32::from(d[1] - b'0');
    let p4 = p2 * 100 + u32::from(d[2] - b'0') * 10 + u32::from(d[3] - b'0');
    match d[0] {
        // UATP
        b'1' => n == 15,
        // Mastercard 2-series
        b'2' => (2221..=2720).contains(&p4) && n == 16,
        // Amex (15), Diners (14-19), JCB (16-19)
        b'3' => match p2 {
            34 | 37 => n == 15,
            30 | 36 | 38 | 39 => (14..=19).contains(&n),
            35 => (3528..=3589).contains(&p4) && (16..=19).contains(&n),
            _ => false,
        },
        // Visa
        b'4' => matches!(n, 13 | 16 | 19),
        // Mastercard 51-55, Maestro 50, 56-59
        b'5' => (12..=19).contains(&n),
        // Discover, UnionPay, Maestro, RuPay
        b'6' => (12..=19).contains(&n),
        _ => false,
    }
}

/// Reads a card number starting at `start`; returns its end when valid.
fn read_card(b: &[u8], text: &str, start: usize) -> Option<usize> {
    let mut digits = [0u8; 19];
    let mut n = 0;
    let mut pos = start;
    let mut groups = 0;
    let mut sep: Option<u8> = None;
    let mut best = None;
    loop {
        let len = b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 || n + len > 19 {
            break;
        }
        groups += 1;
        // Grouped numbers use groups of 3 to 6 digits (4-4-4-4, 4-6-5, 4-6-4).
        if groups > 1 && !(3..=6).contains(&len) {
            break;
        }
        digits[n..n + len].copy_from_slice(&b[pos..pos + len]);
        n += len;
        pos += len;
        if groups == 1 && len < 12 && !(4..=6).contains(&len) {
            break;
        }
        if (12..=19).contains(&n)
            && luhn(&digits[..n])
            && issuer_ok(&digits[..n])
            && isolated(text, start, pos)
        {
            best = Some(pos);
        }
        match b.get(pos) {
            Some(&c @ (b' ' | b'-'))
                if b.get(pos + 1).is_some_and(|d| d.is_ascii_digit())
                    && sep.is_none_or(|s| s == c) =>
            {
                sep = Some(c);
                pos += 1;
            }
            _ => break,
        }
    }
    best
}

impl Recognizer for CardRecognizer {
    fn name(&self) -> &str {
        "CreditCardRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::CreditCard.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::CreditCard) || input.flags & DIGIT == 0 {
            return;
        }
        let text = input.text;
        let b = text.as_bytes();
        let mut resume = 0;
        for tok in input.tokens.iter().filter(|t| t.has(DIGIT)) {
            let mut i = tok.start.max(resume);
            while i < tok.end {
                if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
                    if let Some(end) = read_card(b, text, i) {
                        out.push(
                            Candidate::builtin(
                                BuiltIn::CreditCard,
                                i,
                                end,
                                1.0,
                                "CreditCardRecognizer",
                                "luhn",
                            )
                            .validated(),
                        );
                        resume = end;
                        i = end;
                        continue;
                    }
                    // Skip the rest of this digit run.
                    while i < tok.end && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    continue;
                }
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers() {
        assert!(issuer_ok(b"4111111111111111"));
        assert!(issuer_ok(b"122000000000003"));
        assert!(!issuer_ok(b"1748503543012"));
        assert!(issuer_ok(b"371449635398431"));
    }
}
