//! Tenant-defined recognizers: regular expressions and word lists with their own
//! type names. Compiled once with the policy; matching is linear in the text.

use crate::context;
use crate::entity::{EntityType, is_valid_custom_name};
use crate::error::PolicyError;
use crate::finding::Label;
use crate::policy::CustomRecognizerSpec;
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::on_word_boundaries;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder};
use std::sync::Arc;

/// Upper bound on a compiled tenant pattern, so one policy cannot exhaust memory.
const MAX_PATTERN_BYTES: usize = 1 << 20;

#[derive(Clone, Debug)]
enum Matcher {
    Regex(Regex),
    Words(AhoCorasick),
}

/// A compiled custom recognizer.
#[derive(Clone, Debug)]
pub struct CustomRecognizer {
    entity: EntityType,
    matcher: Matcher,
    score: f32,
    context: Vec<Arc<str>>,
    name: Arc<str>,
}

fn entity(name: &str) -> Result<EntityType, PolicyError> {
    if !is_valid_custom_name(name) {
        return Err(PolicyError::BadEntityName(name.to_owned()));
    }
    EntityType::parse(name).ok_or_else(|| PolicyError::BadEntityName(name.to_owned()))
}

impl CustomRecognizer {
    /// Compiles a specification.
    pub fn compile(spec: &CustomRecognizerSpec) -> Result<CustomRecognizer, PolicyError> {
        match spec {
            CustomRecognizerSpec::Regex {
                entity: name,
                pattern,
                score,
                context,
            } => {
                let entity = entity(name)?;
                if !(0.0..=1.0).contains(score) {
                    return Err(PolicyError::OutOfRange { field: "score" });
                }
                let regex = RegexBuilder::new(pattern)
                    .size_limit(MAX_PATTERN_BYTES)
                    .dfa_size_limit(MAX_PATTERN_BYTES)
                    .build()
                    .map_err(|e| PolicyError::BadPattern {
                        entity: name.clone(),
                        reason: e.to_string(),
                    })?;
                let context = context
                    .iter()
                    .map(|w| Arc::from(w.to_lowercase().as_str()))
                    .collect();
                Ok(CustomRecognizer {
                    name: Arc::from(format!("custom_regex:{name}").as_str()),
                    entity,
                    matcher: Matcher::Regex(regex),
                    score: *score,
                    context,
                })
            }
            CustomRecognizerSpec::Words {
                entity: name,
                words,
                score,
                case_sensitive,
            } => {
                let entity = entity(name)?;
                if !(0.0..=1.0).contains(score) {
                    return Err(PolicyError::OutOfRange { field: "score" });
                }
                let words: Vec<&str> = words
                    .iter()
                    .map(|w| w.trim())
                    .filter(|w| !w.is_empty())
                    .collect();
                if words.is_empty() {
                    return Err(PolicyError::BadWordList(name.clone()));
                }
                let automaton = AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .ascii_case_insensitive(!case_sensitive)
                    .build(&words)
                    .map_err(|_| PolicyError::BadWordList(name.clone()))?;
                Ok(CustomRecognizer {
                    name: Arc::from(format!("custom_words:{name}").as_str()),
                    entity,
                    matcher: Matcher::Words(automaton),
                    score: *score,
                    context: Vec::new(),
                })
            }
        }
    }

    fn push(&self, input: &Input<'_>, start: usize, end: usize, out: &mut Vec<Candidate>) {
        let found = context::find_dynamic(input.text, input.tokens, start, end, &self.context);
        let score = if found.is_empty() {
            self.score
        } else {
            context::boosted(self.score)
        };
        out.push(Candidate {
            entity: self.entity.clone(),
            start,
            end,
            score,
            checksum_validated: false,
            recognizer: Label::Shared(self.name.clone()),
            pattern: Label::Static(match self.matcher {
                Matcher::Regex(_) => "regex",
                Matcher::Words(_) => "word_list",
            }),
            apply_context: false,
            context_words: found,
        });
    }
}

impl Recognizer for CustomRecognizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn entities(&self) -> Vec<EntityType> {
        vec![self.entity.clone()]
    }

    fn recognize(&self, input: &Input<'_>, out: &mut Vec<Candidate>) {
        match &self.matcher {
            Matcher::Regex(re) => {
                for m in re.find_iter(input.text) {
                    if !m.is_empty() {
                        self.push(input, m.start(), m.end(), out);
                    }
                }
            }
            Matcher::Words(ac) => {
                for m in ac.find_iter(input.text) {
                    if on_word_boundaries(input.text, m.start(), m.end()) {
                        self.push(input, m.start(), m.end(), out);
                    }
                }
            }
        }
    }
}
