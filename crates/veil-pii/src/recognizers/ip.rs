//! IPv4 and IPv6 addresses (with embedded IPv4, zone ids and CIDR prefixes),
//! parsed by hand: each address is validated, not just pattern-matched.

use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{COLON, DIGIT, DOT, char_before};

pub(crate) struct IpRecognizer;

const V4_SCORE: f32 = 0.6;
const V6_SCORE: f32 = 0.6;
const UNSPECIFIED_SCORE: f32 = 0.3;

/// Parses a dotted-quad IPv4 address at byte `i` of `s`; returns (end, octets).
pub(crate) fn parse_v4(s: &str, i: usize) -> Option<(usize, [u8; 4])> {
    let b = s.as_bytes();
    let mut pos = i;
    let mut octets = [0u8; 4];
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
        let start = pos;
        let mut value = 0u32;
        while pos < b.len() && b[pos].is_ascii_digit() && pos - start < 4 {
            value = value * 10 + u32::from(b[pos] - b'0');
            pos += 1;
        }
        let len = pos - start;
        if len == 0 || len > 3 || value > 255 {
            return None;
        }
        *octet = value as u8;
    }
    Some((pos, octets))
}

fn hex_len(b: &[u8], i: usize) -> usize {
    b[i..].iter().take_while(|c| c.is_ascii_hexdigit()).count()
}

/// Parses an IPv6 address at byte `i` of `s`; returns its end. Accepts `::`
/// compression and a trailing embedded IPv4 address.
pub(crate) fn parse_v6(s: &str, i: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut pos = i;
    let mut groups = 0u32;
    let mut compressed = false;
    if b[pos..].starts_with(b"::") {
        compressed = true;
        pos += 2;
    }
    loop {
        let n = hex_len(b, pos);
        if n == 0 {
            break;
        }
        // An embedded IPv4 address ends the address and counts as two groups.
        if n <= 3
            && b.get(pos + n) == Some(&b'.')
            && let Some((end, _)) = parse_v4(s, pos)
        {
            let fits = if compressed {
                groups + 2 <= 7
            } else {
                groups + 2 == 8
            };
            return fits.then_some(end);
        }
        // Not an embedded IPv4 address: the group ends the address at the dot,
        // and the caller rejects "…::256.1.1.1" because a digit follows the dot.
        if n > 4 {
            return None;
        }
        groups += 1;
        pos += n;
        if b[pos..].starts_with(b"::") {
            if compressed {
                return None;
            }
            compressed = true;
            pos += 2;
        } else if b.get(pos) == Some(&b':') && b.get(pos + 1).is_some_and(|c| c.is_ascii_hexdigit())
        {
            pos += 1;
        } else {
            break;
        }
    }
    let valid = if compressed { groups <= 7 } else { groups == 8 };
    valid.then_some(pos)
}

/// Extends an address over a zone id (`%eth0`) and a valid CIDR prefix.
fn suffixes(s: &str, mut end: usize, v6: bool) -> usize {
    let b = s.as_bytes();
    if v6 && b.get(end) == Some(&b'%') {
        let n = b[end + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if n > 0 {
            end += 1 + n;
        }
    }
    if b.get(end) == Some(&b'/') {
        let n = b[end + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if (1..=3).contains(&n) {
            let prefix: u32 = s[end + 1..end + 1 + n].parse().unwrap_or(u32::MAX);
            let max = if v6 { 128 } else { 32 };
            let followed_by_word = b
                .get(end + 1 + n)
                .is_some_and(|c| c.is_ascii_alphanumeric());
            if prefix <= max && !followed_by_word {
                end += 1 + n;
            }
        }
    }
    end
}

fn starts_apart(s: &str, i: usize, v6: bool) -> bool {
    match char_before(s, i) {
        None => true,
        Some(c) => !(c.is_alphanumeric() || c == '_' || (v6 && c == ':') || (!v6 && c == '.')),
    }
}

fn ends_apart(s: &str, end: usize, v6: bool) -> bool {
    let b = s.as_bytes();
    match s[end..].chars().next() {
        None => true,
        Some(c) if c.is_alphanumeric() || c == '_' => false,
        Some(':') if v6 => false,
        // "::ffff:192.168.1" must not yield "::ffff:192".
        Some('.') if v6 => !b.get(end + 1).is_some_and(|c| c.is_ascii_digit()),
        Some(_) => true,
    }
}

impl Recognizer for IpRecognizer {
    fn name(&self) -> &str {
        "IpRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::IpAddress.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::IpAddress) || input.flags & (DOT | COLON) == 0 {
            return;
        }
        let text = input.text;
        let b = text.as_bytes();
        for tok in input
            .tokens
            .iter()
            .filter(|t| t.has(COLON) || (t.has(DOT) && t.has(DIGIT)))
        {
            let mut i = tok.start;
            while i < tok.end {
                let c = b[i];
                if (c.is_ascii_hexdigit() || c == b':')
                    && tok.has(COLON)
                    && starts_apart(text, i, true)
                    && let Some(end) = parse_v6(text, i).filter(|e| *e > i + 1)
                    && ends_apart(text, end, true)
                {
                    let end = suffixes(text, end, true);
                    let unspecified =
                        &text[i..end.min(i + 2)] == "::" && (end == i + 2 || b[i + 2] == b'/');
                    let score = if unspecified {
                        UNSPECIFIED_SCORE
                    } else {
                        V6_SCORE
                    };
                    out.push(
                        Candidate::builtin(
                            BuiltIn::IpAddress,
                            i,
                            end,
                            score,
                            "IpRecognizer",
                            "ipv6",
                        )
                        .validated(),
                    );
                    i = end;
                    continue;
                }
                if c.is_ascii_digit()
                    && starts_apart(text, i, false)
                    && let Some((end, _)) = parse_v4(text, i)
                    && ends_apart(text, end, false)
                {
                    let end = suffixes(text, end, false);
                    out.push(
                        Candidate::builtin(
                            BuiltIn::IpAddress,
                            i,
                            end,
                            V4_SCORE,
                            "IpRecognizer",
                            "ipv4",
                        )
                        .validated(),
                    );
                    i = end;
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
    fn v6_forms() {
        for ok in [
            "::",
            "::1",
            "fe80::1",
            "2001:db8::8a2e:370:7334",
            "684D:1111:222:3333:4444:5555:6:77",
            "::ffff:192.0.2.1",
            "0:0:0:0:0:FFFF:129.144.52.38",
        ] {
            assert_eq!(parse_v6(ok, 0), Some(ok.len()), "{ok}");
        }
        for bad in [
            "684D:1111:222:3333:4444:5555:77",
            "2001::db8::1",
            "12345:db8::1",
            "1:2:3:4",
        ] {
            assert_ne!(parse_v6(bad, 0), Some(bad.len()), "{bad}");
        }
    }

    #[test]
    fn v4_forms() {
        assert_eq!(parse_v4("192.168.0.1", 0).map(|r| r.0), Some(11));
        assert!(parse_v4("256.1.1.1", 0).is_none());
        assert!(parse_v4("192.168.1", 0).is_none());
    }
}
