//! The recognizer interface. Built-in recognizers, tenant-defined ones and, later,
//! an ML NER backend all implement [`Recognizer`] and feed candidates to the engine,
//! which scores context, applies the policy and resolves overlaps.

use crate::entity::{BuiltIn, BuiltInSet, EntityType};
use crate::finding::Label;
use crate::lang::LangSet;
use crate::text::Token;

/// A span a recognizer believes to be personal data, before context and policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The entity type.
    pub entity: EntityType,
    /// Byte offset of the start.
    pub start: usize,
    /// Byte offset one past the end.
    pub end: usize,
    /// Score before context, in [0, 1].
    pub score: f32,
    /// Whether a checksum or strict structural validation confirmed the value.
    pub checksum_validated: bool,
    /// The recognizer's name.
    pub recognizer: Label,
    /// The rule inside the recognizer.
    pub pattern: Label,
    /// Whether the engine should still look for the entity's context words.
    /// Recognizers that weigh context themselves (PERSON) set this to false.
    pub apply_context: bool,
    /// Context words the recognizer itself used (reported in the explanation).
    pub context_words: Vec<Label>,
}

impl Candidate {
    /// A candidate for a built-in type from a built-in recognizer.
    pub fn builtin(
        entity: BuiltIn,
        start: usize,
        end: usize,
        score: f32,
        recognizer: &'static str,
        pattern: &'static str,
    ) -> Self {
        Candidate {
            entity: EntityType::BuiltIn(entity),
            start,
            end,
            score,
            checksum_validated: false,
            recognizer: Label::Static(recognizer),
            pattern: Label::Static(pattern),
            apply_context: true,
            context_words: Vec::new(),
        }
    }

    /// Marks the candidate as confirmed by a checksum.
    pub fn validated(mut self) -> Self {
        self.checksum_validated = true;
        self
    }
}

/// A run of space-joined tokens that all contain digits ("+44 (20) 7123 4567").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigitRun {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Number of ASCII digits in the run.
    pub digits: usize,
    /// Index of the run's first token.
    pub first_token: usize,
    /// Index of the run's last token.
    pub last_token: usize,
}

/// What a recognizer sees: the text, its tokens, and what the policy asks for.
pub struct Input<'a> {
    /// The text being analyzed.
    pub text: &'a str,
    /// Whitespace-separated tokens with character-kind flags.
    pub tokens: &'a [Token],
    /// Union of all token flags (lets a recognizer skip a text at once).
    pub flags: u32,
    /// Runs of tokens with digits, computed once for all numeric recognizers.
    pub digit_runs: &'a [DigitRun],
    /// Language hints from the policy (all languages when none were given).
    pub languages: LangSet,
    /// Built-in types the policy enables.
    pub enabled: BuiltInSet,
    /// Phone regions to validate national-format numbers against.
    pub phone_regions: &'a [phonenumber::country::Id],
}

impl Input<'_> {
    /// Whether the policy wants a built-in type.
    #[inline]
    pub fn wants(&self, entity: BuiltIn) -> bool {
        self.enabled.contains(entity)
    }

    /// Whether the policy wants any of the given built-in types.
    #[inline]
    pub fn wants_any(&self, entities: &[BuiltIn]) -> bool {
        self.enabled.contains_any(entities)
    }
}

/// Finds candidate spans of one or more entity types.
///
/// Implementations must be pure (no I/O, clocks or threads) and cheap to call on
/// short texts; they are built once and shared across threads. An ML NER backend
/// plugs in by implementing this trait and being added with
/// [`crate::AnalyzerBuilder::with_recognizer`].
pub trait Recognizer: Send + Sync {
    /// A stable name, reported in explanations.
    fn name(&self) -> &str;

    /// The entity types this recognizer can report.
    fn entities(&self) -> Vec<EntityType>;

    /// Appends candidates found in `input` to `out`.
    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>);
}
