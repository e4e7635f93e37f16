//! # veil-pii: PII detection and anonymization
//!
//! A pure engine (no I/O, threads, clocks or network; name lists embedded) that
//! finds personal data in text and minimizes it. It compiles to WebAssembly.
//!
//! ## Use
//!
//! ```
//! use std::sync::Arc;
//! use veil_pii::{Analyzer, Anonymizer, Keys, Operator, Policy, PolicySpec, PseudonymMap, restore};
//!
//! // Built once, shared across threads.
//! let analyzer = Arc::new(Analyzer::new());
//! // A tenant's policy, usually deserialized from its stored JSON.
//! let policy = Policy::new(PolicySpec { default_operator: Operator::Pseudonymize, ..PolicySpec::default() })?;
//! let anonymizer = Anonymizer::new(Keys::none());
//!
//! // One conversation's placeholders (persist it between messages).
//! let mut pseudonyms = PseudonymMap::new();
//! let text = "Hi, I'm Anna Schmidt, mail me at anna.schmidt@example.com";
//! let findings = analyzer.analyze(text, &policy);
//! let redacted = anonymizer.anonymize(text, &findings, &policy, &mut pseudonyms).expect("no keys needed");
//! assert_eq!(redacted.text, "Hi, I'm <PERSON_1>, mail me at <EMAIL_ADDRESS_1>");
//!
//! // An LLM reply goes back to the user with the originals.
//! assert_eq!(restore("Thanks <person_1>!", &pseudonyms), "Thanks Anna Schmidt!");
//! # Ok::<(), veil_pii::PolicyError>(())
//! ```
//!
//! ## Parts
//! - [`Analyzer`]: runs the [`Recognizer`]s (built-in pattern and checksum
//!   recognizers, PERSON from name lists and cues, tenant-defined ones from the
//!   [`Policy`], and any added with [`AnalyzerBuilder::with_recognizer`], such as a
//!   future ML NER backend), scores context, applies the policy (types, threshold,
//!   allow-list) and resolves overlaps deterministically.
//! - [`Finding`]: type, byte and code-point spans, score and an [`Explanation`]
//!   (recognizer, rule, checksum, context words, base and final score).
//! - [`Anonymizer`]: applies an [`Operator`] per type: redact, replace, mask,
//!   keyed hash, pseudonymize (with a [`PseudonymMap`] per conversation), encrypt.
//! - [`restore`] / [`StreamRestorer`]: put originals back into (streamed) replies.
//! - [`StreamRedactor`]: redacts a token stream without releasing an entity that
//!   straddles chunk boundaries.

mod analyzer;
mod anonymize;
mod checksum;
mod context;
mod custom;
mod entity;
mod error;
mod finding;
mod keccak;
mod lang;
mod person;
mod policy;
mod recognizer;
mod recognizers;
mod repeat;
mod resolve;
mod text;

pub use analyzer::{Analyzer, AnalyzerBuilder, KnownValue};
pub use anonymize::{
    Anonymizer, Keys, Operator, Pseudonym, PseudonymMap, Redacted, RedactedEntity, StreamCutter,
    StreamRedactor, StreamRestorer, TOKEN_PREFIX, placeholders_in, restore, restore_within,
};
pub use entity::{BuiltIn, BuiltInSet, EntityType};
pub use error::{AnonymizeError, DecryptError, PolicyError};
pub use finding::{Explanation, Finding, Label};
pub use lang::{LangSet, Language};
pub use person::{Gazetteer, NameInfo};
pub use policy::{CustomRecognizerSpec, DEFAULT_THRESHOLD, Policy, PolicySpec};
pub use recognizer::{Candidate, DigitRun, Input, Recognizer};
pub use text::Token;

/// Character-kind flags of [`Token`]s, for [`Recognizer`] implementations.
pub mod token_flags {
    pub use crate::text::{
        AFTER_NEWLINE, ALPHA, AT, CAPITALIZED, COLON, DASH, DIGIT, DOT, LOWER, NON_ASCII, PAREN,
        PLUS, PUNCT, SLASH, UPPER,
    };
}
