//! URLs with a scheme, `www.` hosts and bare domain names (the latter score lower:
//! "see example.com" is a URL, but so is a file named `config.py`).

use super::ip::{parse_v4, parse_v6};
use super::tld::is_domain;
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{DOT, LOWER, UPPER};

pub(crate) struct UrlRecognizer;

const SCHEMES: &[&str] = &["https", "http", "ftp", "ftps", "sftp", "wss", "ws"];
const SCHEME_SCORE: f32 = 0.6;
const WWW_SCORE: f32 = 0.5;
const BARE_SCORE: f32 = 0.4;

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// Bytes allowed after the host (path, query, fragment); stops at whitespace and quotes.
fn is_path_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^'
        ))
}

/// Drops trailing punctuation that belongs to the sentence, keeping balanced `)` and `]`.
///
/// A trailing closer is dropped while the span has more closers than openers.
/// Openers are never dropped, so the brackets are counted once and each dropped
/// closer lowers its count: linear in the span however many closers follow it.
fn trim_end(s: &[u8], start: usize, mut end: usize) -> usize {
    let Some(span) = s.get(start..end) else {
        return end;
    };
    let (mut open_paren, mut close_paren, mut open_bracket, mut close_bracket) =
        (0usize, 0usize, 0usize, 0usize);
    for b in span {
        match b {
            b'(' => open_paren += 1,
            b')' => close_paren += 1,
            b'[' => open_bracket += 1,
            b']' => close_bracket += 1,
            _ => {}
        }
    }
    while end > start {
        match s[end - 1] {
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'*' => {}
            b')' if close_paren > open_paren => close_paren -= 1,
            b']' if close_bracket > open_bracket => close_bracket -= 1,
            _ => break,
        }
        end -= 1;
    }
    end
}

/// Parses the host after a scheme; returns its end.
fn host_end(text: &str, from: usize, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(from) == Some(&b'[') {
        let close = bytes[from..limit].iter().position(|b| *b == b']')? + from;
        let inner = &text[from + 1..close];
        return parse_v6(inner, 0)
            .filter(|e| *e == inner.len())
            .map(|_| close + 1);
    }
    // Skip user info ("user:pass@") when present.
    let mut host_start = from;
    if let Some(at) = bytes[from..limit]
        .iter()
        .take_while(|b| !matches!(b, b'/' | b'?' | b'#'))
        .position(|b| *b == b'@')
    {
        host_start = from + at + 1;
    }
    let mut end = host_start;
    while end < limit && is_host_byte(bytes[end]) {
        end += 1;
    }
    while end > host_start && matches!(bytes[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let host = &text[host_start..end];
    let ok = is_domain(host)
        || parse_v4(host, 0).is_some_and(|(e, _)| e == host.len())
        || host.eq_ignore_ascii_case("localhost");
    ok.then_some(end)
}

/// Extends a URL over port, path, query and fragment, then trims sentence punctuation.
fn url_end(text: &str, start: usize, host_end: usize, limit: usize) -> usize {
    let bytes = text.as_bytes();
    let mut end = host_end;
    if end < limit && matches!(bytes[end], b':' | b'/' | b'?' | b'#') {
        while end < limit && is_path_byte(bytes[end]) {
            end += 1;
        }
    }
    let trimmed = trim_end(bytes, start, end);
    trimmed.max(host_end)
}

impl Recognizer for UrlRecognizer {
    fn name(&self) -> &str {
        "UrlRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::Url.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::Url) || input.flags & DOT == 0 {
            return;
        }
        let text = input.text;
        let bytes = text.as_bytes();
        for tok in input
            .tokens
            .iter()
            .filter(|t| t.has(DOT) && t.has(LOWER | UPPER))
        {
            let mut i = tok.start;
            while i < tok.end {
                // A scheme URL.
                if bytes[i].is_ascii_alphabetic()
                    && (i == tok.start || !bytes[i - 1].is_ascii_alphanumeric())
                    && let Some(scheme) = SCHEMES.iter().find(|s| {
                        let n = s.len();
                        i + n + 3 <= tok.end
                            && bytes[i..i + n].eq_ignore_ascii_case(s.as_bytes())
                            && &bytes[i + n..i + n + 3] == b"://"
                    })
                {
                    let host_from = i + scheme.len() + 3;
                    if let Some(h) = host_end(text, host_from, tok.end) {
                        let end = url_end(text, i, h, tok.end);
                        out.push(Candidate::builtin(
                            BuiltIn::Url,
                            i,
                            end,
                            SCHEME_SCORE,
                            "UrlRecognizer",
                            "scheme_url",
                        ));
                        i = end;
                        continue;
                    }
                }
                // A bare or www. domain, not part of an e-mail address or a longer word.
                if bytes[i].is_ascii_alphanumeric()
                    && (i == tok.start
                        || !(is_host_byte(bytes[i - 1])
                            || matches!(bytes[i - 1], b'@' | b'/' | b':' | b'_')))
                {
                    let mut end = i;
                    while end < tok.end && is_host_byte(bytes[end]) {
                        end += 1;
                    }
                    let mut host_end = end;
                    while host_end > i && matches!(bytes[host_end - 1], b'.' | b'-') {
                        host_end -= 1;
                    }
                    let host = &text[i..host_end];
                    let followed_by_at = bytes.get(host_end) == Some(&b'@');
                    let has_letter = host.bytes().any(|b| b.is_ascii_alphabetic());
                    if !followed_by_at && has_letter && host.contains('.') && is_domain(host) {
                        let www = host.len() > 4 && host[..4].eq_ignore_ascii_case("www.");
                        let end = url_end(text, i, host_end, tok.end);
                        let (score, pattern) = if www {
                            (WWW_SCORE, "www_url")
                        } else {
                            (BARE_SCORE, "bare_domain")
                        };
                        out.push(Candidate::builtin(
                            BuiltIn::Url,
                            i,
                            end,
                            score,
                            "UrlRecognizer",
                            pattern,
                        ));
                        i = end;
                        continue;
                    }
                    i = end.max(i + 1);
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

    /// The former definition: recount the brackets of the whole span for every
    /// trailing closer (quadratic). Kept to check the linear version against.
    fn trim_end_recounting(s: &[u8], start: usize, mut end: usize) -> usize {
        while end > start {
            let count = |b: u8| s[start..end].iter().filter(|c| **c == b).count();
            let drop = match s[end - 1] {
                b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'*' => true,
                b')' => count(b')') > count(b'('),
                b']' => count(b']') > count(b'['),
                _ => false,
            };
            if !drop {
                break;
            }
            end -= 1;
        }
        end
    }

    #[test]
    fn trimming_matches_the_recounting_definition() {
        // Every string of up to 7 bytes over brackets, punctuation and a letter,
        // trimmed from every start.
        let alphabet = b"()[].a";
        let mut s = Vec::new();
        for len in 0..=7u32 {
            for mut n in 0..alphabet.len().pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                for start in 0..=s.len() {
                    assert_eq!(
                        trim_end(&s, start, s.len()),
                        trim_end_recounting(&s, start, s.len()),
                        "{:?} from {start}",
                        String::from_utf8_lossy(&s)
                    );
                }
            }
        }
    }

    #[test]
    fn a_million_unbalanced_closers_are_trimmed_in_one_pass() {
        // Each byte is counted once and each dropped byte adjusts a counter, so
        // this is ~3M byte steps; recounting the span for every closer took
        // ~1e12 (hours in a debug build). No timing assertion: the test simply
        // does not finish in reasonable time if trimming turns quadratic again.
        for (open, close) in [(b'(', b')'), (b'[', b']')] {
            let mut s = b"http://a.co/x".to_vec();
            s.push(open);
            s.push(b'y');
            s.extend(std::iter::repeat_n(close, 1_000_000));
            // One closer balances the opener; the rest belong to the sentence.
            assert_eq!(trim_end(&s, 0, s.len()), 16);
        }
    }
}
