//! E-mail addresses: found around each `@`, validated by structure and top-level domain.

use super::tld::{is_domain, is_tld};
use crate::entity::{BuiltIn, EntityType};
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::AT;

pub(crate) struct EmailRecognizer;

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'.' | b'_'
                | b'%'
                | b'+'
                | b'-'
                | b'\''
                | b'!'
                | b'#'
                | b'$'
                | b'&'
                | b'*'
                | b'='
                | b'?'
                | b'^'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

impl Recognizer for EmailRecognizer {
    fn name(&self) -> &str {
        "EmailRecognizer"
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![BuiltIn::EmailAddress.into()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        if !input.wants(BuiltIn::EmailAddress) || input.flags & AT == 0 {
            return;
        }
        let bytes = input.text.as_bytes();
        for tok in input.tokens.iter().filter(|t| t.has(AT)) {
            let mut search_from = tok.start;
            while let Some(rel) = bytes[search_from..tok.end].iter().position(|b| *b == b'@') {
                let at = search_from + rel;
                search_from = at + 1;
                let mut start = at;
                while start > tok.start && is_local_byte(bytes[start - 1]) {
                    start -= 1;
                }
                // Quotes and punctuation around an address are not part of it.
                while start < at && matches!(bytes[start], b'.' | b'\'' | b'`' | b'{' | b'|') {
                    start += 1;
                }
                let mut end = at + 1;
                while end < tok.end && is_domain_byte(bytes[end]) {
                    end += 1;
                }
                while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
                    end -= 1;
                }
                if start == at || end <= at + 1 {
                    continue;
                }
                let local = &input.text[start..at];
                let domain = &input.text[at + 1..end];
                if local.starts_with('.')
                    || local.ends_with('.')
                    || local.contains("..")
                    || local.len() > 64
                {
                    continue;
                }
                if !is_domain(domain) {
                    continue;
                }
                let tld = domain.rsplit('.').next().unwrap_or("");
                let validated = is_tld(tld);
                let mut c = Candidate::builtin(
                    BuiltIn::EmailAddress,
                    start,
                    end,
                    1.0,
                    "EmailRecognizer",
                    "email",
                );
                c.checksum_validated = validated;
                out.push(c);
                search_from = end.max(search_from);
            }
        }
    }
}
