//! Built-in recognizers. Each one looks only at the tokens whose character kinds
//! can start its entity, so a long text is mostly skipped by flag tests.

pub(crate) mod address;
pub(crate) mod card;
pub(crate) mod crypto;
pub(crate) mod date;
pub(crate) mod email;
pub(crate) mod iban;
pub(crate) mod ids_eu;
pub(crate) mod ids_uk;
pub(crate) mod ids_us;
pub(crate) mod ip;
pub(crate) mod mac;
pub(crate) mod phone;
pub(crate) mod phone_meta;
pub(crate) mod tld;
pub(crate) mod url;

use crate::recognizer::{DigitRun, Input, Recognizer};
use crate::text::{Token, char_at, char_before};

/// Every built-in pattern recognizer (PERSON is added by the analyzer, which owns
/// the name lists).
pub(crate) fn builtin() -> Vec<Box<dyn Recognizer>> {
    vec![
        Box::new(email::EmailRecognizer),
        Box::new(url::UrlRecognizer),
        Box::new(ip::IpRecognizer),
        Box::new(mac::MacRecognizer),
        Box::new(card::CardRecognizer::new()),
        Box::new(iban::IbanRecognizer),
        Box::new(crypto::CryptoRecognizer),
        Box::new(phone::PhoneRecognizer::new()),
        Box::new(ids_us::UsIdsRecognizer::new()),
        Box::new(ids_uk::UkIdsRecognizer::new()),
        Box::new(ids_eu::EuIdsRecognizer::new()),
        Box::new(date::DateOfBirthRecognizer::new()),
        Box::new(address::StreetAddressRecognizer::new()),
    ]
}

/// Whether two consecutive tokens are separated by a single space-like character
/// (not a line break), so that a value may continue across them.
#[inline]
pub(crate) fn joined(text: &str, prev: &Token, next: &Token) -> bool {
    let gap = &text[prev.end..next.start];
    let mut chars = gap.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c != '\n' && c != '\r')
}

/// Fills `out` with the runs of single-space-joined tokens that contain digits.
pub(crate) fn digit_runs(text: &str, tokens: &[Token], out: &mut Vec<DigitRun>) {
    out.clear();
    let mut i = 0;
    while i < tokens.len() {
        if !tokens[i].has(crate::text::DIGIT) {
            i += 1;
            continue;
        }
        let first = i;
        i += 1;
        while i < tokens.len()
            && tokens[i].has(crate::text::DIGIT)
            && joined(text, &tokens[i - 1], &tokens[i])
        {
            i += 1;
        }
        let (start, end) = (tokens[first].start, tokens[i - 1].end);
        let digits = text.as_bytes()[start..end]
            .iter()
            .filter(|b| b.is_ascii_digit())
            .count();
        out.push(DigitRun {
            start,
            end,
            digits,
            first_token: first,
            last_token: i - 1,
        });
    }
}

/// Whether `[start, end)` stands apart from neighbouring letters and digits, and
/// does not continue a longer number through a separator (`12-345` is not `345`).
pub(crate) fn isolated(text: &str, start: usize, end: usize) -> bool {
    if let Some(c) = char_before(text, start) {
        if c.is_alphanumeric() {
            return false;
        }
        if matches!(c, '-' | '.' | '/' | '_')
            && char_before(text, start - 1).is_some_and(|p| p.is_alphanumeric())
        {
            return false;
        }
    }
    if let Some(c) = char_at(text, end) {
        if c.is_alphanumeric() {
            return false;
        }
        if matches!(c, '-' | '/' | '_' | '.')
            && char_at(text, end + 1).is_some_and(|n| n.is_ascii_digit())
        {
            return false;
        }
    }
    true
}

/// Byte ranges around tokens that satisfy `pred`: from `before` tokens before to
/// `after` tokens after each, with overlapping ranges merged. Recognizers whose
/// values mix words and numbers (dates, addresses) look only there.
pub(crate) fn neighbourhoods<'a>(
    input: &'a Input<'_>,
    before: usize,
    after: usize,
    pred: impl Fn(&Token) -> bool + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let tokens = input.tokens;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < tokens.len() && !pred(&tokens[i]) {
            i += 1;
        }
        if i >= tokens.len() {
            return None;
        }
        let first = i.saturating_sub(before);
        let mut last = (i + after).min(tokens.len() - 1);
        i += 1;
        while i <= last + before && i < tokens.len() {
            if pred(&tokens[i]) {
                last = (i + after).min(tokens.len() - 1);
            }
            i += 1;
        }
        Some((tokens[first].start, tokens[last].end))
    })
}
