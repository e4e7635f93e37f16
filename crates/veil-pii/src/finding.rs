//! What the analyzer reports: typed spans with scores that explain themselves.

use crate::entity::EntityType;
use serde::{Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// A short name that is either static (built-in recognizers and their context
/// words) or shared (tenant-defined), so that findings never copy strings.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Label {
    /// A name compiled into the crate.
    Static(&'static str),
    /// A name from a tenant policy.
    Shared(Arc<str>),
}

impl Label {
    /// The name.
    pub fn as_str(&self) -> &str {
        match self {
            Label::Static(s) => s,
            Label::Shared(s) => s,
        }
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why a finding was reported with its score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The recognizer that produced the finding.
    pub recognizer: Label,
    /// The pattern or rule inside the recognizer (e.g. `ssn_delimited`).
    pub pattern: Label,
    /// Whether a checksum or a strict structural validation confirmed the value.
    pub checksum_validated: bool,
    /// Context words found near the value that raised its score.
    pub context_words: Vec<Label>,
    /// The score before context.
    pub base_score: f32,
    /// The score reported (after context, clamped to [0, 1]).
    pub final_score: f32,
}

/// A detected piece of personal data.
#[derive(Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind of data it is.
    pub entity: EntityType,
    /// Byte offset of the start in the analyzed UTF-8 text.
    pub start: usize,
    /// Byte offset one past the end.
    pub end: usize,
    /// Code-point offset of the start (for clients that index by code points).
    pub char_start: usize,
    /// Code-point offset one past the end.
    pub char_end: usize,
    /// Confidence in [0, 1].
    pub score: f32,
    /// How the score came about.
    pub explanation: Explanation,
}

impl Finding {
    /// The byte range of the finding.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// Deliberately prints no part of the analyzed text: findings end up in logs.
impl fmt::Debug for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finding")
            .field("entity", &self.entity)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("score", &self.score)
            .field("explanation", &self.explanation)
            .finish()
    }
}
