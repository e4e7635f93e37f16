//! The analyzer: built once, shared across threads, runs every recognizer over a
//! text, applies context and the tenant policy, and resolves overlaps.

use crate::context;
use crate::entity::EntityType;
use crate::finding::{Explanation, Finding};
use crate::person::{Gazetteer, PersonRecognizer};
use crate::policy::Policy;
use crate::recognizer::{Candidate, DigitRun, Input, Recognizer};
use crate::recognizers;
use crate::resolve::resolve;
use crate::text::{Token, byte_to_char_offsets, tokenize};
use std::cell::RefCell;
use std::sync::Arc;

/// Buffers reused across calls on one thread, so that analyzing a message
/// allocates nothing but its output.
#[derive(Default)]
pub(crate) struct Scratch {
    tokens: Vec<Token>,
    digit_runs: Vec<DigitRun>,
    candidates: Vec<Candidate>,
    order: Vec<usize>,
    offsets: Vec<usize>,
    shadow: Vec<(usize, usize)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A value found earlier in a conversation, to be found again wherever it occurs.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownValue {
    /// Its entity type.
    pub entity: EntityType,
    /// The exact value.
    pub value: String,
    /// The score to report it with.
    pub score: f32,
}

/// The PII analyzer. Build it once (`Analyzer::new()` embeds the name lists) and
/// share it with `Arc`; `analyze` takes `&self` and is safe to call from many threads.
pub struct Analyzer {
    recognizers: Vec<Box<dyn Recognizer>>,
}

/// Assembles an [`Analyzer`] from the built-in recognizers and extra ones (for
/// example an ML NER backend implementing [`Recognizer`]).
pub struct AnalyzerBuilder {
    builtin: bool,
    gazetteer: Option<Arc<Gazetteer>>,
    extra: Vec<Box<dyn Recognizer>>,
}

impl AnalyzerBuilder {
    /// Leaves out the built-in recognizers (only added ones run).
    pub fn without_builtin(mut self) -> Self {
        self.builtin = false;
        self
    }

    /// Uses another set of name lists for PERSON.
    pub fn with_gazetteer(mut self, gazetteer: Arc<Gazetteer>) -> Self {
        self.gazetteer = Some(gazetteer);
        self
    }

    /// Adds a recognizer; its candidates go through the same context, policy and
    /// overlap rules as the built-in ones.
    pub fn with_recognizer(mut self, recognizer: Box<dyn Recognizer>) -> Self {
        self.extra.push(recognizer);
        self
    }

    /// Builds the analyzer.
    pub fn build(self) -> Analyzer {
        let mut recognizers = Vec::new();
        if self.builtin {
            recognizers.extend(recognizers::builtin());
            let gazetteer = self.gazetteer.unwrap_or_else(Gazetteer::embedded);
            recognizers.push(Box::new(PersonRecognizer::new(gazetteer)) as Box<dyn Recognizer>);
        }
        recognizers.extend(self.extra);
        Analyzer { recognizers }
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

impl Analyzer {
    /// An analyzer with every built-in recognizer and the embedded name lists.
    pub fn new() -> Analyzer {
        Analyzer::builder().build()
    }

    /// A builder for a customized analyzer.
    pub fn builder() -> AnalyzerBuilder {
        AnalyzerBuilder {
            builtin: true,
            gazetteer: None,
            extra: Vec::new(),
        }
    }

    /// The entity types the analyzer's recognizers can report.
    pub fn supported_entities(&self) -> Vec<EntityType> {
        let mut all: Vec<EntityType> = self.recognizers.iter().flat_map(|r| r.entities()).collect();
        all.sort();
        all.dedup();
        all
    }

    /// Finds personal data in `text` under `policy`. Findings are sorted by start,
    /// never overlap, and carry byte and code-point offsets.
    pub fn analyze(&self, text: &str, policy: &Policy) -> Vec<Finding> {
        self.analyze_with_known(text, policy, &[])
    }

    /// Like [`Analyzer::analyze`], and also reports every occurrence of values
    /// already found earlier in the conversation (see [`KnownValue`],
    /// [`crate::PseudonymMap::known_values`]): a name recognized in one message
    /// from "my name is ..." is then found in the next one without the phrase.
    pub fn analyze_with_known(
        &self,
        text: &str,
        policy: &Policy,
        known: &[KnownValue],
    ) -> Vec<Finding> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.analyze_with(text, policy, known, &mut scratch),
            // A recognizer that calls back into the analyzer gets fresh buffers.
            Err(_) => self.analyze_with(text, policy, known, &mut Scratch::default()),
        })
    }

    fn analyze_with(
        &self,
        text: &str,
        policy: &Policy,
        known: &[KnownValue],
        scratch: &mut Scratch,
    ) -> Vec<Finding> {
        let Scratch {
            tokens,
            digit_runs,
            candidates,
            order,
            offsets,
            shadow,
        } = scratch;
        candidates.clear();
        let flags = tokenize(text, tokens);
        if tokens.is_empty() {
            return Vec::new();
        }
        recognizers::digit_runs(text, tokens, digit_runs);
        let input = Input {
            text,
            tokens,
            flags,
            digit_runs,
            languages: policy.languages,
            enabled: policy.enabled_builtins(),
            phone_regions: &policy.regions,
        };
        for recognizer in &self.recognizers {
            recognizer.recognize(&input, candidates);
        }
        for recognizer in &policy.custom {
            recognizer.recognize(&input, candidates);
        }
        if !known.is_empty() {
            crate::repeat::add_known(text, known, candidates);
        }
        drop_shadowed(text, candidates, policy, shadow);
        // Context, policy filters.
        let mut hint = 0;
        candidates.retain_mut(|c| {
            if c.start >= c.end || c.end > text.len() || !policy.is_enabled(&c.entity) {
                return false;
            }
            // A score of 1 cannot rise: context would change nothing.
            if c.apply_context
                && c.score < 1.0
                && let Some(b) = c.entity.builtin()
            {
                let found = context::find_near(
                    text,
                    tokens,
                    c.start,
                    c.end,
                    context::words_for(b),
                    &mut hint,
                );
                if !found.is_empty() {
                    c.context_words = found;
                }
            }
            final_score(c) >= policy.threshold_for(&c.entity)
                && !policy.is_allowed(&text[c.start..c.end])
        });
        resolve(candidates, order);
        if !order.is_empty() {
            crate::repeat::propagate(text, candidates, order);
        }
        let mut findings: Vec<Finding> = Vec::with_capacity(order.len());
        offsets.clear();
        for &i in order.iter() {
            offsets.push(candidates[i].start);
            offsets.push(candidates[i].end);
        }
        byte_to_char_offsets(text, offsets);
        for (k, &i) in order.iter().enumerate() {
            let c = &mut candidates[i];
            let score = final_score(c);
            findings.push(Finding {
                entity: c.entity.clone(),
                start: c.start,
                end: c.end,
                char_start: offsets[2 * k],
                char_end: offsets[2 * k + 1],
                score,
                explanation: Explanation {
                    recognizer: c.recognizer.clone(),
                    pattern: c.pattern.clone(),
                    checksum_validated: c.checksum_validated,
                    context_words: std::mem::take(&mut c.context_words),
                    base_score: c.score,
                    final_score: score,
                },
            });
        }
        findings
    }
}

/// Drops candidates that overlap a checksum-validated one which will certainly be
/// reported (it ranks first in overlap resolution), before spending time on
/// their context. `spans` is a reusable buffer.
fn drop_shadowed(
    text: &str,
    candidates: &mut Vec<Candidate>,
    policy: &Policy,
    spans: &mut Vec<(usize, usize)>,
) {
    spans.clear();
    spans.extend(
        candidates
            .iter()
            .filter(|c| {
                c.checksum_validated
                    && policy.is_enabled(&c.entity)
                    && c.score >= policy.threshold_for(&c.entity)
                    && c.end <= text.len()
                    && !policy.is_allowed(&text[c.start..c.end])
            })
            .map(|c| (c.start, c.end)),
    );
    if spans.is_empty() {
        return;
    }
    spans.sort_unstable();
    // Running maximum of the ends, so one look-up answers "does anything before
    // reach past this start".
    for i in 1..spans.len() {
        spans[i].1 = spans[i].1.max(spans[i - 1].1);
    }
    candidates.retain(|c| {
        if c.checksum_validated {
            return true;
        }
        let k = spans.partition_point(|p| p.0 < c.end);
        !(k > 0 && spans[k - 1].1 > c.start)
    });
}

/// The score after context: recognizers that weigh context themselves have
/// already folded it into `score`.
fn final_score(c: &Candidate) -> f32 {
    let score = if c.apply_context && !c.context_words.is_empty() {
        context::boosted(c.score)
    } else {
        c.score
    };
    score.clamp(0.0, 1.0)
}

/// Exposed for the overlap resolver.
pub(crate) fn score_of(c: &Candidate) -> f32 {
    final_score(c)
}
