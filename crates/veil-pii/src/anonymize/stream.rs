//! Redaction of a token stream. Each chunk is analyzed together with the text
//! still held back and a little already-released context; text is released as
//! soon as no entity can reach into it from what may still come. Only a tail is
//! held back: the last `holdback` bytes (cut at a space), and never part of a
//! finding that touches that tail.

use super::{Anonymizer, PseudonymMap, RedactedEntity};
use crate::analyzer::{Analyzer, KnownValue};
use crate::error::AnonymizeError;
use crate::policy::Policy;
use std::sync::Arc;

/// Bytes held back by default: longer than phone numbers, IBANs with spaces and
/// most names and addresses, so that none of them is released half-seen.
pub const DEFAULT_HOLDBACK: usize = 80;
/// Already-released text kept as context for scoring ("my name is" | "Anna").
const CONTEXT_TAIL: usize = 96;
/// A chunk stream without any space is released after this many bytes.
const MAX_PENDING: usize = 4096;

/// Redacts a stream of chunks with the same analyzer, policy and operators as
/// one-shot redaction, keeping the conversation's pseudonyms. A clone taken before a
/// push can redo that push under another map (see [`StreamRedactor::with_pseudonyms`]).
#[derive(Clone)]
pub struct StreamRedactor {
    analyzer: Arc<Analyzer>,
    policy: Arc<Policy>,
    anonymizer: Arc<Anonymizer>,
    pseudonyms: PseudonymMap,
    holdback: usize,
    /// Released original text kept for context (not released again).
    tail: String,
    /// Received text not yet released.
    pending: String,
    released_bytes: usize,
    released_chars: usize,
    entities: Vec<RedactedEntity>,
    /// Values released so far, found again wherever they recur in the stream.
    known: Vec<KnownValue>,
}

impl std::fmt::Debug for StreamRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRedactor")
            .field("pending_bytes", &self.pending.len())
            .field("released_bytes", &self.released_bytes)
            .finish()
    }
}

impl StreamRedactor {
    /// A redactor for one stream; `pseudonyms` is the conversation's state.
    pub fn new(
        analyzer: Arc<Analyzer>,
        policy: Arc<Policy>,
        anonymizer: Arc<Anonymizer>,
        pseudonyms: PseudonymMap,
    ) -> Self {
        StreamRedactor {
            analyzer,
            policy,
            anonymizer,
            pseudonyms,
            holdback: DEFAULT_HOLDBACK,
            tail: String::new(),
            pending: String::new(),
            released_bytes: 0,
            released_chars: 0,
            entities: Vec::new(),
            known: Vec::new(),
        }
    }

    /// Changes how many bytes are held back (more is safer, less is faster).
    pub fn with_holdback(mut self, bytes: usize) -> Self {
        self.holdback = bytes;
        self
    }

    /// Feeds a chunk; returns the redacted text that is safe to release now.
    pub fn push(&mut self, chunk: &str) -> Result<String, AnonymizeError> {
        self.pending.push_str(chunk);
        self.release(false)
    }

    /// Whether pushing `chunk_bytes` more could release text (and so hand out new
    /// placeholders): false while the held-back tail stays within the holdback.
    pub fn may_release(&self, chunk_bytes: usize) -> bool {
        self.pending.len() + chunk_bytes > self.holdback
    }

    /// Ends the stream; returns the rest, redacted.
    pub fn finish(&mut self) -> Result<String, AnonymizeError> {
        self.release(true)
    }

    /// Entities released so far, with offsets into the whole stream.
    pub fn entities(&self) -> &[RedactedEntity] {
        &self.entities
    }

    /// The conversation's pseudonyms, with any added by this stream.
    pub fn pseudonyms(&self) -> &PseudonymMap {
        &self.pseudonyms
    }

    /// The same redactor with the conversation's pseudonyms replaced, e.g. by a map read
    /// again after another writer took a placeholder this one handed out; text already
    /// released keeps the placeholders it was released with.
    pub fn with_pseudonyms(mut self, pseudonyms: PseudonymMap) -> Self {
        self.pseudonyms = pseudonyms;
        self
    }

    /// Ends the redactor and hands back the pseudonyms.
    pub fn into_pseudonyms(self) -> PseudonymMap {
        self.pseudonyms
    }

    fn release(&mut self, all: bool) -> Result<String, AnonymizeError> {
        if self.pending.is_empty() {
            return Ok(String::new());
        }
        let mut buffer = String::with_capacity(self.tail.len() + self.pending.len());
        buffer.push_str(&self.tail);
        buffer.push_str(&self.pending);
        let offset = self.tail.len();
        let findings = self
            .analyzer
            .analyze_with_known(&buffer, &self.policy, &self.known);
        let mut cut = if all {
            buffer.len()
        } else {
            self.cut(&buffer, offset)
        };
        if !all {
            // Never cut through a finding, and never release part of one.
            for f in findings.iter().rev() {
                if f.start < cut && f.end > cut {
                    cut = f.start;
                }
            }
        }
        if cut <= offset {
            return Ok(String::new());
        }
        let released = &buffer[offset..cut];
        let local: Vec<_> = findings
            .into_iter()
            .filter(|f| f.start >= offset && f.end <= cut)
            .map(|mut f| {
                f.start -= offset;
                f.end -= offset;
                f
            })
            .collect();
        let mut redacted =
            self.anonymizer
                .anonymize(released, &local, &self.policy, &mut self.pseudonyms)?;
        let released_chars = released.chars().count();
        for mut e in redacted.entities.drain(..) {
            let char_start = released[..e.start].chars().count();
            let char_len = released[e.start..e.end].chars().count();
            e.start += self.released_bytes;
            e.end += self.released_bytes;
            e.char_start = self.released_chars + char_start;
            e.char_end = e.char_start + char_len;
            self.entities.push(e);
        }
        self.released_bytes += released.len();
        self.released_chars += released_chars;
        let consumed = cut - offset;
        self.pending.drain(..consumed);
        // Keep the end of the released text as context for the next analysis.
        let keep_from = floor_boundary(&buffer[..cut], cut.saturating_sub(CONTEXT_TAIL));
        // Start the kept context at a token boundary (unless it is the stream's start).
        let keep_from = if keep_from == 0 {
            0
        } else {
            buffer[keep_from..cut]
                .find(char::is_whitespace)
                .map_or(keep_from, |p| keep_from + p)
        };
        self.tail = buffer[keep_from..cut].to_owned();
        Ok(redacted.text)
    }

    /// Where to cut: at a whitespace before the last `holdback` bytes.
    fn cut(&self, buffer: &str, offset: usize) -> usize {
        let limit = buffer.len().saturating_sub(self.holdback);
        if limit <= offset {
            if buffer.len() - offset > MAX_PENDING {
                return floor_boundary(
                    buffer,
                    buffer.len() - self.holdback.min(buffer.len() - offset),
                );
            }
            return offset;
        }
        let limit = floor_boundary(buffer, limit);
        match buffer[offset..limit].rfind(char::is_whitespace) {
            Some(p) => offset + p,
            None if buffer.len() - offset > MAX_PENDING => limit,
            None => offset,
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
