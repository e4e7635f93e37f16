//! Cryptocurrency wallet addresses: Bitcoin base58check (P2PKH, P2SH), bech32 and
//! bech32m (SegWit v0, Taproot), and Ethereum (EIP-55 checksum when mixed case).

use crate::entity::{BuiltIn, EntityType};
use crate::keccak::keccak256_short;
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::{DIGIT, LOWER, UPPER};
use sha2::{Digest, Sha256};

pub(crate) struct CryptoRecognizer;

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn base58_value(c: u8) -> Option<u32> {
    BASE58.iter().position(|x| *x == c).map(|p| p as u32)
}

/// Decodes a base58 string into exactly 25 bytes (version, hash160, checksum).
fn base58_decode_25(s: &[u8]) -> Option<[u8; 25]> {
    let mut out = [0u8; 25];
    for &c in s {
        let mut carry = base58_value(c)?;
        for byte in out.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        if carry != 0 {
            return None;
        }
    }
    // Leading '1's encode leading zero bytes.
    let ones = s.iter().take_while(|c| **c == b'1').count();
    let zeros = out.iter().take_while(|b| **b == 0).count();
    (ones == zeros).then_some(out)
}

fn base58check_ok(s: &[u8]) -> bool {
    if !(25..=35).contains(&s.len()) || !matches!(s[0], b'1' | b'3') {
        return false;
    }
    let Some(raw) = base58_decode_25(s) else {
        return false;
    };
    if !matches!(raw[0], 0x00 | 0x05) {
        return false;
    }
    let first = Sha256::digest(&raw[..21]);
    let second = Sha256::digest(first);
    second[..4] == raw[21..]
}

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk = 1u32;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// Validates a lower-case `bc1...` address (bech32 for v0, bech32m for v1+).
fn bech32_ok(s: &[u8]) -> bool {
    if !(14..=74).contains(&s.len()) || !s.starts_with(b"bc1") {
        return false;
    }
    let data = &s[3..];
    let mut values = [0u8; 71];
    for (i, c) in data.iter().enumerate() {
        match BECH32.iter().position(|x| x == c) {
            Some(v) => values[i] = v as u8,
            None => return false,
        }
    }
    let values = &values[..data.len()];
    let hrp = [b'b' >> 5, b'c' >> 5, 0, b'b' & 31, b'c' & 31];
    let check = bech32_polymod(hrp.iter().copied().chain(values.iter().copied()));
    match values.first() {
        Some(0) => check == 1 && (s.len() == 42 || s.len() == 62),
        Some(v) if *v <= 16 => check == 0x2bc830a3,
        _ => false,
    }
}

/// Ethereum: `0x` + 40 hex; mixed case must pass EIP-55. Returns (valid, checksummed).
fn eth_ok(s: &[u8]) -> (bool, bool) {
    if s.len() != 42 || !s.starts_with(b"0x") || !s[2..].iter().all(u8::is_ascii_hexdigit) {
        return (false, false);
    }
    let hex = &s[2..];
    let has_upper = hex.iter().any(u8::is_ascii_uppercase);
    let has_lower = hex.iter().any(u8::is_ascii_lowercase);
    if !(has_upper && has_lower) {
        return (true, false);
    }
    let mut lower = [0u8; 40];
    for (d, c) in lower.iter_mut().zip(hex) {
        *d = c.to_ascii_lowercase();
    }
    let Some(hash) = keccak256_short(&lower) else {
        return (false, false);
    };
    for (i, c) in hex.iter().enumerate() {
        if c.is_ascii_alphabetic() {
            let nibble = if i % 2 == 0 {
                hash[i / 2] >> 4
            } else {
                hash[i / 2] & 0x0f
            };
            if (nibble >= 8) != c.is_ascii_uppercase() {
                return (false, false);
            }
        }
    }
    (true, true)
}

impl Recognizer for CryptoRecognizer {
    fn name(&self) -> &str {
        "CryptoRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::Crypto.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::Crypto) {
            return;
        }
        let text = input.text;
        let b = text.as_bytes();
        for tok in input
            .tokens
            .iter()
            .filter(|t| t.has(DIGIT) && t.has(LOWER | UPPER) && t.end - t.start >= 25)
        {
            let mut i = tok.start;
            while i < tok.end {
                if !b[i].is_ascii_alphanumeric()
                    || (i > tok.start && b[i - 1].is_ascii_alphanumeric())
                {
                    i += 1;
                    continue;
                }
                let run = b[i..tok.end]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .count();
                let end = i + run;
                let word = &b[i..end];
                let found = if word.starts_with(b"0x") {
                    let (ok, checksummed) = eth_ok(word);
                    ok.then_some((checksummed, if checksummed { 1.0 } else { 0.5 }, "eth"))
                } else if word.starts_with(b"bc1") {
                    bech32_ok(word).then_some((true, 1.0, "bech32"))
                } else {
                    base58check_ok(word).then_some((true, 1.0, "base58check"))
                };
                if let Some((validated, score, pattern)) = found {
                    let mut c = Candidate::builtin(
                        BuiltIn::Crypto,
                        i,
                        end,
                        score,
                        "CryptoRecognizer",
                        pattern,
                    );
                    c.checksum_validated = validated;
                    out.push(c);
                }
                i = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoin() {
        assert!(base58check_ok(b"16Yeky6GMjeNkAiNcBY7ZhrLoMSgg1BoyZ"));
        assert!(base58check_ok(b"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"));
        assert!(!base58check_ok(b"16Yeky6GMjeNkAiNcBY7ZhrLoMSgg1BoyZ2"));
        assert!(bech32_ok(b"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"));
        assert!(bech32_ok(
            b"bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
        ));
    }

    #[test]
    fn ethereum() {
        assert_eq!(
            eth_ok(b"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            (true, true)
        );
        assert_eq!(
            eth_ok(b"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            (false, false)
        );
        assert_eq!(
            eth_ok(b"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
            (true, false)
        );
    }
}
