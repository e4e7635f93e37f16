//! Puts original values back into text that contains placeholders, such as an
//! LLM's reply. LLMs change placeholders a little (`<email_address_1>`,
//! `< EMAIL_ADDRESS_1 >`, `[EMAIL_ADDRESS_1]`, `&lt;EMAIL_ADDRESS_1&gt;`, or drop the
//! brackets); each candidate is normalized and looked up as a plain string, never
//! used as a pattern.

use super::pseudonym::PseudonymMap;

/// Longest inner part of a placeholder we look at (type name + number).
const MAX_INNER: usize = 72;

/// Normalizes the inside of a bracket pair into `<TYPE_N>` form, or `None`.
fn normalize(inner: &str, buf: &mut String) -> bool {
    buf.clear();
    let trimmed = inner.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_INNER {
        return false;
    }
    buf.push('<');
    let mut last_sep = false;
    for c in trimmed.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => {
                buf.push(c.to_ascii_uppercase());
                last_sep = false;
            }
            '_' | ' ' | '-' => {
                if !last_sep {
                    buf.push('_');
                }
                last_sep = true;
            }
            _ => return false,
        }
    }
    buf.push('>');
    true
}

/// Where a placeholder candidate starts and ends in a text; its normalized form is left
/// in the caller's buffer.
struct Span {
    start: usize,
    end: usize,
}

/// The bracketed candidate (`<..>`, `[..]`, `&lt;..&gt;`) that starts at byte `i`.
fn bracketed_at(text: &str, i: usize, buf: &mut String) -> Option<Span> {
    let rest = &text[i..];
    let (open_len, close): (usize, &str) = if rest.starts_with('<') {
        (1, ">")
    } else if rest.starts_with('[') {
        (1, "]")
    } else if rest.len() >= 4 && rest.as_bytes()[..4].eq_ignore_ascii_case(b"&lt;") {
        (4, "&gt;")
    } else {
        return None;
    };
    let body = &rest[open_len..];
    let limit = body.len().min(MAX_INNER + 8);
    let close_at = body[..floor_boundary(body, limit)].find(close)?;
    if !normalize(&body[..close_at], buf) {
        return None;
    }
    Some(Span {
        start: i,
        end: i + open_len + close_at + close.len(),
    })
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A bare candidate (`EMAIL_ADDRESS_1` without brackets) at a word start.
fn bare_at(text: &str, i: usize, buf: &mut String) -> Option<Span> {
    let bytes = text.as_bytes();
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    let len = bytes[i..]
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
        .count();
    if !(3..=MAX_INNER).contains(&len)
        || !bytes[i + len - 1].is_ascii_digit()
        || !text[i..i + len].contains('_')
    {
        return None;
    }
    buf.clear();
    buf.push('<');
    buf.push_str(&text[i..i + len]);
    buf.push('>');
    Some(Span {
        start: i,
        end: i + len,
    })
}

/// The candidate that starts at byte `i`, in any form.
fn candidate_at(text: &str, i: usize, buf: &mut String) -> Option<Span> {
    match text.as_bytes()[i] {
        b'<' | b'[' | b'&' => bracketed_at(text, i, buf),
        b'A'..=b'Z' => bare_at(text, i, buf),
        _ => None,
    }
}

/// Every placeholder `text` names in a form [`restore`] accepts, normalized
/// (`< email_address_1 >` -> `<EMAIL_ADDRESS_1>`), sorted and without repeats: what a
/// restore of `text` needs to know, and nothing more.
pub fn placeholders_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut buf = String::new();
    for i in 0..text.len() {
        if !text.is_char_boundary(i) || candidate_at(text, i, &mut buf).is_none() {
            continue;
        }
        // A placeholder ends in `_<number>`; `<b>` and `[note]` do not.
        let inner = &buf[1..buf.len() - 1];
        let numbered = inner.rsplit_once('_').is_some_and(|(name, n)| {
            !name.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        });
        if numbered {
            found.push(buf.clone());
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Replaces every placeholder of `map` in `text` by its original value.
pub fn restore(text: &str, map: &PseudonymMap) -> String {
    let mut out = String::with_capacity(text.len());
    restore_into(text, map, &mut out, usize::MAX);
    out
}

/// [`restore`], unless the result would be longer than `max_bytes`: then `None`, found
/// before it is built. A short text naming one long original many times would
/// otherwise restore to many times its size.
pub fn restore_within(text: &str, map: &PseudonymMap, max_bytes: usize) -> Option<String> {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    restore_into(text, map, &mut out, max_bytes).then_some(out)
}

/// Appends `text` restored to `out`; false (and `out` incomplete) once `out` would pass
/// `limit` bytes.
fn restore_into(text: &str, map: &PseudonymMap, out: &mut String, limit: usize) -> bool {
    let fits = |out: &String, more: usize| out.len().saturating_add(more) <= limit;
    if map.is_empty() {
        if !fits(out, text.len()) {
            return false;
        }
        out.push_str(text);
        return true;
    }
    let mut buf = String::new();
    let mut pos = 0;
    let mut i = 0;
    while i < text.len() {
        let hit = candidate_at(text, i, &mut buf)
            .and_then(|span| map.original(&buf).map(|value| (span, value)));
        match hit {
            Some((span, value)) => {
                if !fits(out, span.start - pos + value.len()) {
                    return false;
                }
                out.push_str(&text[pos..span.start]);
                out.push_str(value);
                pos = span.end;
                i = span.end;
            }
            None => i += 1,
        }
    }
    if !fits(out, text.len() - pos) {
        return false;
    }
    out.push_str(&text[pos..]);
    true
}

/// Cuts a stream of chunks (an LLM's streamed reply) into text that is safe to restore
/// now: everything but a tail that may be the start of a placeholder cut by a chunk
/// boundary. It needs only the length of the longest placeholder, not the values, so a
/// caller can reveal just the originals of the placeholders a piece names.
#[derive(Debug)]
pub struct StreamCutter {
    pending: String,
    /// 0: nothing to restore, nothing held back.
    hold_limit: usize,
}

impl StreamCutter {
    /// A cutter for placeholders of at most `longest_placeholder` bytes (`<TYPE_N>`
    /// form); 0 when there are none.
    pub fn new(longest_placeholder: usize) -> Self {
        // "&lt;" + inner + "&gt;" is the longest form of a placeholder.
        let hold_limit = if longest_placeholder == 0 {
            0
        } else {
            longest_placeholder + 8
        };
        StreamCutter {
            pending: String::new(),
            hold_limit,
        }
    }

    /// Feeds a chunk; returns the text that is safe to restore and emit now.
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let cut = self.safe_cut();
        self.pending.drain(..cut).collect()
    }

    /// Ends the stream; returns what was held back.
    pub fn finish(self) -> String {
        self.pending
    }

    /// The end of the text that cannot hold the beginning of a cut placeholder.
    fn safe_cut(&self) -> usize {
        let text = self.pending.as_str();
        if self.hold_limit == 0 {
            return text.len();
        }
        let window_start = floor_boundary(text, text.len().saturating_sub(self.hold_limit));
        // An opening bracket with no closing one after it may begin a placeholder.
        let bytes = text.as_bytes();
        for i in window_start..bytes.len() {
            let opens = match bytes[i] {
                b'<' => !text[i..].contains('>'),
                b'[' => !text[i..].contains(']'),
                b'&' => !text[i..].to_ascii_lowercase().contains("&gt;"),
                _ => false,
            };
            if opens {
                return i;
            }
        }
        // A trailing run of capitals, digits and underscores may be a bare placeholder.
        let tail = bytes
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        if tail > 0 && tail <= self.hold_limit {
            bytes.len() - tail
        } else {
            bytes.len()
        }
    }
}

/// Restores placeholders in a stream of chunks (an LLM's streamed reply). Text is
/// released as soon as it cannot be the start of a placeholder cut by a chunk
/// boundary; only such a tail is held back.
#[derive(Debug)]
pub struct StreamRestorer<'m> {
    map: &'m PseudonymMap,
    cutter: StreamCutter,
}

impl<'m> StreamRestorer<'m> {
    /// A restorer over a conversation's placeholders.
    pub fn new(map: &'m PseudonymMap) -> Self {
        StreamRestorer {
            map,
            cutter: StreamCutter::new(map.longest_placeholder()),
        }
    }

    /// Feeds a chunk; returns the restored text that is safe to emit now.
    pub fn push(&mut self, chunk: &str) -> String {
        restore(&self.cutter.push(chunk), self.map)
    }

    /// Ends the stream; returns what was held back, restored.
    pub fn finish(self) -> String {
        restore(&self.cutter.finish(), self.map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::BuiltIn;

    fn map() -> PseudonymMap {
        let mut m = PseudonymMap::new();
        m.placeholder_for(&BuiltIn::EmailAddress.into(), "anna@example.com");
        m.placeholder_for(&BuiltIn::Person.into(), "Anna (a.k.a. $1 .*)");
        m
    }

    #[test]
    fn tolerant_forms() {
        let m = map();
        for reply in [
            "Write to <EMAIL_ADDRESS_1>.",
            "Write to <email_address_1>.",
            "Write to < EMAIL_ADDRESS_1 >.",
            "Write to [EMAIL_ADDRESS_1].",
            "Write to &lt;EMAIL_ADDRESS_1&gt;.",
            "Write to EMAIL_ADDRESS_1.",
            "Write to <Email Address 1>.",
        ] {
            assert_eq!(restore(reply, &m), "Write to anna@example.com.", "{reply}");
        }
        assert_eq!(restore("<PERSON_1> wrote", &m), "Anna (a.k.a. $1 .*) wrote");
        assert_eq!(
            restore("<EMAIL_ADDRESS_9> and <b>", &m),
            "<EMAIL_ADDRESS_9> and <b>"
        );
    }

    #[test]
    fn restoring_within_a_bound_refuses_before_building() {
        let m = map();
        let reply = "EMAIL_ADDRESS_1 ".repeat(1000);
        let full = restore(&reply, &m);
        assert_eq!(full.len(), 1000 * "anna@example.com ".len());
        assert_eq!(restore_within(&reply, &m, full.len()), Some(full.clone()));
        assert_eq!(restore_within(&reply, &m, full.len() - 1), None);
        // Plain text (no placeholder) counts too.
        assert_eq!(restore_within("plain", &PseudonymMap::new(), 4), None);
        assert_eq!(
            restore_within("plain", &PseudonymMap::new(), 5).as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn placeholders_in_lists_every_form_restore_accepts() {
        let reply = "Mail <email_address_1>, [PERSON_2], &lt;IBAN_CODE_1&gt; or PHONE_NUMBER_3 \
                     and < EMAIL_ADDRESS_1 >, not <b>, [note], <Über_1> or HTTP2.";
        assert_eq!(
            placeholders_in(reply),
            [
                "<EMAIL_ADDRESS_1>",
                "<IBAN_CODE_1>",
                "<PERSON_2>",
                "<PHONE_NUMBER_3>"
            ]
        );
        // Each one restore replaces is listed.
        let m = map();
        let listed = placeholders_in("<PERSON_1> wrote [email address 1]");
        assert_eq!(listed, ["<EMAIL_ADDRESS_1>", "<PERSON_1>"]);
        assert!(listed.iter().all(|p| m.original(p).is_some()));
    }

    #[test]
    fn a_cutter_never_splits_a_placeholder() {
        let reply = "Hi <PERSON_1>, mail [email_address_1] or EMAIL_ADDRESS_1 &lt;PERSON_1&gt;.";
        let whole = placeholders_in(reply);
        for split in 1..reply.len() {
            let mut cutter = StreamCutter::new("<EMAIL_ADDRESS_1>".len());
            let mut pieces = vec![cutter.push(&reply[..split])];
            pieces.push(cutter.push(&reply[split..]));
            pieces.push(cutter.finish());
            assert_eq!(pieces.concat(), reply, "split at {split}");
            let mut found: Vec<String> = pieces.iter().flat_map(|p| placeholders_in(p)).collect();
            found.sort();
            found.dedup();
            assert_eq!(found, whole, "split at {split}: {pieces:?}");
        }
    }

    #[test]
    fn streaming_across_boundaries() {
        let m = map();
        let reply = "Hi <PERSON_1>, mail <email_address_1> or EMAIL_ADDRESS_1 now.";
        let expected = restore(reply, &m);
        for split in 0..reply.len() {
            if !reply.is_char_boundary(split) {
                continue;
            }
            let mut r = StreamRestorer::new(&m);
            let mut got = r.push(&reply[..split]);
            got.push_str(&r.push(&reply[split..]));
            got.push_str(&r.finish());
            assert_eq!(got, expected, "split at {split}");
        }
    }
}
