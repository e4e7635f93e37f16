//! MAC addresses: six hex pairs split by `:` or `-` (one separator throughout),
//! or Cisco's three dotted quads. All-zero and broadcast addresses are not personal.

use super::isolated;
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{COLON, DASH, DOT};

pub(crate) struct MacRecognizer;

const SCORE: f32 = 0.6;

/// Parses a MAC address at `i`; returns its end and the 12 hex digits.
fn parse(b: &[u8], i: usize) -> Option<(usize, [u8; 12])> {
    let mut digits = [0u8; 12];
    let hex = |j: usize| b.get(j).is_some_and(|c| c.is_ascii_hexdigit());
    // Six pairs: xx:xx:xx:xx:xx:xx or xx-xx-...
    if i + 17 <= b.len() && matches!(b.get(i + 2), Some(b':') | Some(b'-')) {
        let sep = b[i + 2];
        let mut ok = true;
        for g in 0..6 {
            let p = i + g * 3;
            if !(hex(p) && hex(p + 1)) || (g < 5 && b[p + 2] != sep) {
                ok = false;
                break;
            }
            digits[g * 2] = b[p];
            digits[g * 2 + 1] = b[p + 1];
        }
        if ok {
            return Some((i + 17, digits));
        }
    }
    // Three quads: xxxx.xxxx.xxxx
    if i + 14 <= b.len() && b.get(i + 4) == Some(&b'.') {
        for g in 0..3 {
            let p = i + g * 5;
            if !(0..4).all(|k| hex(p + k)) || (g < 2 && b[p + 4] != b'.') {
                return None;
            }
            digits[g * 4..g * 4 + 4].copy_from_slice(&b[p..p + 4]);
        }
        return Some((i + 14, digits));
    }
    None
}

impl Recognizer for MacRecognizer {
    fn name(&self) -> &str {
        "MacAddressRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::MacAddress.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::MacAddress) {
            return;
        }
        let text = input.text;
        let b = text.as_bytes();
        for tok in input
            .tokens
            .iter()
            .filter(|t| t.has(COLON | DASH | DOT) && t.end - t.start >= 14)
        {
            let mut i = tok.start;
            while i + 14 <= tok.end {
                let fresh = i == tok.start
                    || !(b[i - 1].is_ascii_hexdigit() || matches!(b[i - 1], b':' | b'-' | b'.'));
                if fresh
                    && b[i].is_ascii_hexdigit()
                    && let Some((end, digits)) = parse(b, i)
                {
                    let next_bad = b
                        .get(end)
                        .is_some_and(|c| c.is_ascii_hexdigit() || *c == b':' || *c == b'-')
                        || (b.get(end) == Some(&b'.')
                            && b.get(end + 1).is_some_and(|c| c.is_ascii_hexdigit()));
                    let special = digits.iter().all(|d| *d == b'0')
                        || digits.iter().all(|d| d.eq_ignore_ascii_case(&b'f'));
                    if !next_bad && !special && isolated(text, i, end) {
                        out.push(Candidate::builtin(
                            BuiltIn::MacAddress,
                            i,
                            end,
                            SCORE,
                            "MacAddressRecognizer",
                            "mac",
                        ));
                        i = end;
                        continue;
                    }
                }
                i += 1;
            }
        }
    }
}
