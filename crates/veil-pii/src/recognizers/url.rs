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

/// Drops trailing punctuation that belongs to the sentence, keeping balanced `)`.
fn trim_end(s: &[u8], start: usize, mut end: usize) -> usize {
    while end > start {
        let b = s[end - 1];
        let drop = match b {
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'*' => true,
            b')' => {
                let opens = s[start..end].iter().filter(|c| **c == b'(').count();
                let closes = s[start..end].iter().filter(|c| **c == b')').count();
                closes > opens
            }
            b']' => {
                let opens = s[start..end].iter().filter(|c| **c == b'[').count();
                let closes = s[start..end].iter().filter(|c| **c == b']').count();
                closes > opens
            }
            _ => false,
        };
        if !drop {
            break;
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
