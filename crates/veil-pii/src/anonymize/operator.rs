//! Operators: what happens to a finding in the output text.

use serde::{Deserialize, Serialize};

/// How a finding is minimized. Serialized with a `type` tag, e.g.
/// `{"type":"mask","keep_last":4}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operator {
    /// Remove the value.
    Redact,
    /// Replace the value with a fixed text, by default `<ENTITY_TYPE>`.
    Replace {
        /// The replacement; `None` means the type name in angle brackets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
    },
    /// Replace all but the last `keep_last` letters and digits with `mask_char`.
    Mask {
        /// Characters left visible at the end.
        #[serde(default = "default_keep_last")]
        keep_last: usize,
        /// The masking character.
        #[serde(default = "default_mask_char")]
        mask_char: char,
    },
    /// Replace with the hex HMAC-SHA256 of the value under the tenant's hash key.
    Hash,
    /// Replace with a conversation-stable placeholder such as `<EMAIL_ADDRESS_1>`.
    Pseudonymize,
    /// Replace with an AES-256-GCM token `ENC:...` that the tenant key decrypts.
    Encrypt,
    /// Leave the value as it is (the finding is still reported).
    Keep,
}

fn default_keep_last() -> usize {
    4
}

fn default_mask_char() -> char {
    '*'
}

impl Operator {
    /// The operator's name as used in configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Redact => "redact",
            Operator::Replace { .. } => "replace",
            Operator::Mask { .. } => "mask",
            Operator::Hash => "hash",
            Operator::Pseudonymize => "pseudonymize",
            Operator::Encrypt => "encrypt",
            Operator::Keep => "keep",
        }
    }
}

impl Default for Operator {
    fn default() -> Self {
        Operator::Replace { with: None }
    }
}
