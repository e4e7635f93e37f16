//! Anonymization: applies the policy's operator to each finding and returns the
//! redacted text with the list of what replaced what. Also the way back
//! ([`restore`]) and the streaming forms ([`StreamRedactor`], [`StreamRestorer`]).

mod crypto;
mod operator;
mod pseudonym;
mod restore;
mod stream;

pub use crypto::{Keys, TOKEN_PREFIX};
pub use operator::Operator;
pub use pseudonym::{Pseudonym, PseudonymMap};
pub use restore::{StreamCutter, StreamRestorer, placeholders_in, restore, restore_within};
pub use stream::StreamRedactor;

use crate::entity::EntityType;
use crate::error::AnonymizeError;
use crate::finding::Finding;
use crate::policy::Policy;
use serde::Serialize;

/// One finding as it appears in the redacted text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RedactedEntity {
    /// The entity type.
    #[serde(rename = "type")]
    pub entity: EntityType,
    /// Byte offset of the start in the original text.
    pub start: usize,
    /// Byte offset one past the end in the original text.
    pub end: usize,
    /// Code-point offset of the start in the original text.
    pub char_start: usize,
    /// Code-point offset one past the end in the original text.
    pub char_end: usize,
    /// Byte offset of the replacement in the redacted text.
    pub redacted_start: usize,
    /// Byte offset one past the replacement in the redacted text.
    pub redacted_end: usize,
    /// The finding's score.
    pub score: f32,
    /// The operator applied.
    pub operator: &'static str,
    /// What replaced the value (the placeholder for `pseudonymize`; empty for `redact`).
    pub replacement: String,
}

/// The result of anonymizing one text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Redacted {
    /// The text with every finding replaced.
    pub text: String,
    /// What was replaced, in text order.
    pub entities: Vec<RedactedEntity>,
}

/// Applies operators. Holds the tenant's keys; build one per tenant and share it.
#[derive(Clone, Debug, Default)]
pub struct Anonymizer {
    keys: Keys,
}

impl Anonymizer {
    /// An anonymizer with the tenant's keys (use [`Keys::none`] when `hash` and
    /// `encrypt` are not used).
    pub fn new(keys: Keys) -> Anonymizer {
        Anonymizer { keys }
    }

    /// The keys (to decrypt `encrypt` tokens).
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Replaces each finding (sorted, non-overlapping, as [`crate::Analyzer::analyze`]
    /// returns them) by its operator's output. `pseudonyms` is the conversation's state.
    pub fn anonymize(
        &self,
        text: &str,
        findings: &[Finding],
        policy: &Policy,
        pseudonyms: &mut PseudonymMap,
    ) -> Result<Redacted, AnonymizeError> {
        let mut out = String::with_capacity(text.len());
        let mut entities = Vec::with_capacity(findings.len());
        let mut pos = 0;
        for f in findings {
            if f.start < pos
                || f.end > text.len()
                || !text.is_char_boundary(f.start)
                || !text.is_char_boundary(f.end)
            {
                continue;
            }
            out.push_str(&text[pos..f.start]);
            let operator = policy.operator_for(&f.entity);
            let replacement = self.apply(operator, &f.entity, &text[f.start..f.end], pseudonyms)?;
            let redacted_start = out.len();
            out.push_str(&replacement);
            entities.push(RedactedEntity {
                entity: f.entity.clone(),
                start: f.start,
                end: f.end,
                char_start: f.char_start,
                char_end: f.char_end,
                redacted_start,
                redacted_end: out.len(),
                score: f.score,
                operator: operator.name(),
                replacement,
            });
            pos = f.end;
        }
        out.push_str(&text[pos..]);
        Ok(Redacted {
            text: out,
            entities,
        })
    }

    /// The replacement for one value.
    pub fn apply(
        &self,
        operator: &Operator,
        entity: &EntityType,
        value: &str,
        pseudonyms: &mut PseudonymMap,
    ) -> Result<String, AnonymizeError> {
        Ok(match operator {
            Operator::Redact => String::new(),
            Operator::Replace { with: Some(w) } => w.clone(),
            Operator::Replace { with: None } => format!("<{}>", entity.name()),
            Operator::Mask {
                keep_last,
                mask_char,
            } => mask(value, *keep_last, *mask_char),
            Operator::Hash => self.keys.hash(value)?,
            Operator::Pseudonymize => pseudonyms.placeholder_for(entity, value),
            Operator::Encrypt => self.keys.encrypt(value)?,
            Operator::Keep => value.to_owned(),
        })
    }
}

/// Masks letters and digits except the last `keep_last` of them; separators stay
/// so the shape remains readable (`**** **** **** 1111`).
fn mask(value: &str, keep_last: usize, mask_char: char) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let hide = total.saturating_sub(keep_last);
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen <= hide { mask_char } else { c }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_shape() {
        assert_eq!(mask("4111 1111 1111 1111", 4, '*'), "**** **** **** 1111");
        assert_eq!(mask("ab", 4, '#'), "ab");
    }
}
