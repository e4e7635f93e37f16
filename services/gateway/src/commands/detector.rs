//! The detector: compiled rule tables and the per-message scan.

use std::ops::Range;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::normalize::Folded;
use super::purposes::PurposeFinder;
use super::rules::{Cues, Language, Spec, expand};
use super::{CommandKind, lang_any, lang_de, lang_en, lang_es, lang_fr, lang_nl};

/// The supported languages; the first is the fallback when nothing else decides.
const LANGUAGES: [&Language; 5] = [
    &lang_en::LANGUAGE,
    &lang_de::LANGUAGE,
    &lang_fr::LANGUAGE,
    &lang_es::LANGUAGE,
    &lang_nl::LANGUAGE,
];

/// A how-question ("how can I delete my account?") shows intent but may only be a
/// question about the process, so its confidence is scaled down.
const QUESTION_FACTOR: f32 = 0.6;
/// A statement about what we do ("you don't sell my data") may be praise or a
/// question rather than an instruction, so it is scaled down the same way.
const STATEMENT_FACTOR: f32 = 0.6;
/// Added to the score (not the confidence) of a rule in the hinted language, so that
/// the hint breaks ties between languages that share words ("data" in en and nl).
const HINT_BONUS: f32 = 0.05;
/// Bytes that end a clause for negation scope.
const CLAUSE_END: &[u8] = b".!?;:,\n";
/// Bytes that end a sentence for question and purpose scope.
const SENTENCE_END: &[u8] = b".!?;\n";

/// Why the built-in tables failed to compile; only a broken edit of the tables does this.
#[derive(Debug, thiserror::Error)]
pub enum CommandsError {
    /// A phrase or cue pattern is not a valid regex.
    #[error("invalid {language} command pattern {index}: {source}")]
    Pattern {
        /// Language code of the table ("any" for the neutral rules).
        language: &'static str,
        /// Position of the rule in its table, or the cue's name.
        index: String,
        /// The regex error.
        source: regex::Error,
    },
}

/// A privacy command found in a user message.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedCommand {
    /// What the subject asked for.
    pub kind: CommandKind,
    /// Language of the phrase: "en", "de", "fr", "es" or "nl".
    pub language: &'static str,
    /// How sure the match is, in [0, 1]; how-questions score lower than requests.
    pub confidence: f32,
    /// Purpose keys the command names (e.g. "marketing", "model_training"); empty means
    /// all purposes or none named.
    pub purposes: Vec<String>,
    /// Byte span of the triggering phrase in the original message, for explanations;
    /// never log the text it covers.
    pub matched: Range<usize>,
}

struct CompiledRule {
    /// Index into `LANGUAGES`; `None` for language-neutral rules.
    language: Option<usize>,
    kind: CommandKind,
    confidence: f32,
    negatable: bool,
    regex: Regex,
}

struct CompiledCues {
    negation: Regex,
    question: Regex,
    trailing_negation: Option<Regex>,
    neutral: &'static [&'static str],
    subjects: &'static [&'static str],
    past_auxiliaries: &'static [&'static str],
    blocked_after: &'static [&'static str],
    stopwords: &'static [&'static str],
}

/// Finds privacy commands in user messages; build once and share (it is `Send + Sync`).
pub struct CommandDetector {
    /// One set per language: a single set over all languages needed a lazy-DFA cache of
    /// 16 MiB per thread to stop thrashing (and fell 100x slower at 8 MiB), while each
    /// per-language set fits the default cache; the six scans cost less than the risk.
    groups: Vec<RuleGroup>,
    rules: Vec<CompiledRule>,
    cues: Vec<CompiledCues>,
    purposes: PurposeFinder,
}

/// The rules of one language, scanned together.
struct RuleGroup {
    set: RegexSet,
    /// Index in `CommandDetector::rules` of the set's first pattern.
    first_rule: usize,
}

impl RuleGroup {
    /// `end` is the index after the group's last rule.
    fn new(code: &'static str, patterns: &[String], end: usize) -> Result<Self, CommandsError> {
        let set = RegexSetBuilder::new(patterns)
            .unicode(false)
            .size_limit(16 << 20)
            .build()
            .map_err(|source| pattern_error(code, "set".into(), source))?;
        Ok(Self {
            set,
            first_rule: end - patterns.len(),
        })
    }
}

struct Candidate {
    rule: usize,
    language: usize,
    confidence: f32,
    score: f32,
    span: Range<usize>,
}

impl Default for CommandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandDetector {
    /// Compiles the built-in tables.
    ///
    /// # Panics
    /// Never with the shipped tables: the unit tests compile them; an edit that breaks
    /// a pattern fails those tests before it can reach a build.
    pub fn new() -> Self {
        Self::try_new().expect("built-in command tables compile (checked by unit tests)")
    }

    /// Compiles the built-in tables, reporting a broken pattern instead of panicking.
    pub fn try_new() -> Result<Self, CommandsError> {
        let mut groups = Vec::new();
        let mut rules = Vec::new();
        let mut cues = Vec::new();
        for (position, language) in LANGUAGES.iter().enumerate() {
            let mut patterns = Vec::new();
            for (index, spec) in language.rules.iter().enumerate() {
                let pattern = expand(spec.pattern, language.fragments);
                rules.push(compile_rule(
                    Some(position),
                    spec,
                    &pattern,
                    language.code,
                    index,
                )?);
                patterns.push(pattern);
            }
            groups.push(RuleGroup::new(language.code, &patterns, rules.len())?);
            cues.push(compile_cues(language.code, &language.cues)?);
        }
        let mut patterns = Vec::new();
        for (index, spec) in lang_any::RULES.iter().enumerate() {
            let pattern = expand(spec.pattern, lang_any::FRAGMENTS);
            rules.push(compile_rule(None, spec, &pattern, "any", index)?);
            patterns.push(pattern);
        }
        groups.push(RuleGroup::new("any", &patterns, rules.len())?);
        let purposes = PurposeFinder::new()
            .map_err(|source| pattern_error("any", "purposes".into(), source))?;
        Ok(Self {
            groups,
            rules,
            cues,
            purposes,
        })
    }

    /// Detects a privacy command in a user message; `locale_hint` like "de-AT" or ""
    /// helps but is not required. When several phrases match, the most confident wins.
    pub fn detect(&self, text: &str, locale_hint: &str) -> Option<DetectedCommand> {
        let folded = Folded::new(text);
        let hay = folded.text.as_bytes();
        let hint = hinted_language(locale_hint);
        let mut best: Option<Candidate> = None;
        for group in &self.groups {
            // Most messages are not commands: a scan without allocation rejects them.
            if !group.set.is_match(hay) {
                continue;
            }
            for index in group.set.matches(hay).iter() {
                let Some(candidate) = self.evaluate(group.first_rule + index, hay, hint) else {
                    continue;
                };
                if best
                    .as_ref()
                    .is_none_or(|current| candidate.score > current.score)
                {
                    best = Some(candidate);
                }
            }
        }
        let best = best?;
        let kind = self.rules.get(best.rule)?.kind;
        Some(DetectedCommand {
            kind,
            language: LANGUAGES.get(best.language)?.code,
            confidence: best.confidence,
            purposes: self.purposes_for(kind, hay, &best.span),
            matched: folded.original_span(text, best.span),
        })
    }

    /// The first match of rule `index` that no negation cancels, scored.
    fn evaluate(&self, index: usize, hay: &[u8], hint: Option<usize>) -> Option<Candidate> {
        let rule = self.rules.get(index)?;
        let language = rule
            .language
            .unwrap_or_else(|| hint.unwrap_or_else(|| self.guess_language(hay)));
        let cues = self.cues.get(language)?;
        let found = rule.regex.find_iter(hay).find(|found| {
            let span = found.range();
            !(is_about_something_else(hay, span.clone(), cues)
                || rule.negatable
                    && (is_negated(hay, span.clone(), cues) || is_past(hay, span, cues)))
        })?;
        let span = found.range();
        let sentence = &hay[boundary_before(hay, span.start, SENTENCE_END)..span.start];
        let mut confidence = rule.confidence;
        if cues.question.is_match(sentence) {
            confidence *= QUESTION_FACTOR;
        }
        if !rule.negatable && is_statement(hay, span.clone(), cues) {
            confidence *= STATEMENT_FACTOR;
        }
        let bonus = if Some(language) == hint {
            HINT_BONUS
        } else {
            0.0
        };
        Some(Candidate {
            rule: index,
            language,
            confidence,
            score: confidence + bonus,
            span,
        })
    }

    /// The language whose frequent words the message uses most; English on a tie.
    fn guess_language(&self, hay: &[u8]) -> usize {
        let mut counts = [0usize; LANGUAGES.len()];
        for word in words(hay) {
            for (count, cues) in counts.iter_mut().zip(&self.cues) {
                if cues.stopwords.iter().any(|stop| stop.as_bytes() == word) {
                    *count += 1;
                }
            }
        }
        let mut best = 0;
        for (position, count) in counts.iter().enumerate() {
            if *count > counts[best] {
                best = position;
            }
        }
        best
    }

    /// Purposes apply to commands about uses of data; erasure, access, export and
    /// rectification concern all of the subject's data.
    fn purposes_for(&self, kind: CommandKind, hay: &[u8], span: &Range<usize>) -> Vec<String> {
        match kind {
            CommandKind::OptOutAiTraining => vec!["model_training".to_owned()],
            CommandKind::WithdrawConsent
            | CommandKind::Object
            | CommandKind::Restrict
            | CommandKind::LimitSensitive => {
                let start = boundary_before(hay, span.start, SENTENCE_END);
                let end = boundary_after(hay, span.end, SENTENCE_END);
                self.purposes.find(&hay[start..end])
            }
            _ => Vec::new(),
        }
    }
}

/// True when a negation in the match's clause (or right after it, for languages that
/// put it there) turns the request around: "don't delete my data".
fn is_negated(hay: &[u8], span: Range<usize>, cues: &CompiledCues) -> bool {
    let clause_start = boundary_before(hay, span.start, CLAUSE_END);
    let window = &hay[clause_start..span.end];
    let negated = cues.negation.find_iter(window).any(|negation| {
        let before = &window[..negation.start()];
        let next = words(&hay[clause_start + negation.end()..]).next();
        let neutral = |word: &[u8]| contains(cues.neutral, word);
        !(next.is_some_and(neutral) || words(before).any(neutral))
    });
    negated
        || cues
            .trailing_negation
            .as_ref()
            .is_some_and(|trailing| trailing.is_match(&hay[span.end..]))
}

/// True when a blocking word follows the match directly.
fn is_about_something_else(hay: &[u8], span: Range<usize>, cues: &CompiledCues) -> bool {
    let next = hay[span.end..]
        .starts_with(b" ")
        .then(|| words(&hay[span.end..]).next())
        .flatten();
    next.is_some_and(|word| contains(cues.blocked_after, word))
}

/// True when a past auxiliary stands right before the match.
fn is_past(hay: &[u8], span: Range<usize>, cues: &CompiledCues) -> bool {
    let clause = &hay[boundary_before(hay, span.start, CLAUSE_END)..span.start];
    words(clause)
        .last()
        .is_some_and(|word| contains(cues.past_auxiliaries, word))
}

fn contains(list: &[&str], word: &[u8]) -> bool {
    list.iter().any(|entry| entry.as_bytes() == word)
}

/// True when the match opens with a negation that follows a subject pronoun.
fn is_statement(hay: &[u8], span: Range<usize>, cues: &CompiledCues) -> bool {
    let opens_negated = cues
        .negation
        .find(&hay[span.clone()])
        .is_some_and(|negation| negation.start() == 0);
    let clause = &hay[boundary_before(hay, span.start, CLAUSE_END)..span.start];
    opens_negated
        && words(clause)
            .last()
            .is_some_and(|word| contains(cues.subjects, word))
}

fn boundary_before(hay: &[u8], at: usize, ends: &[u8]) -> usize {
    hay[..at]
        .iter()
        .rposition(|byte| ends.contains(byte))
        .map_or(0, |position| position + 1)
}

fn boundary_after(hay: &[u8], at: usize, ends: &[u8]) -> usize {
    hay[at..]
        .iter()
        .position(|byte| ends.contains(byte))
        .map_or(hay.len(), |position| at + position)
}

/// ASCII words of the folded text (apostrophes kept, as in "don't").
fn words(hay: &[u8]) -> impl Iterator<Item = &[u8]> {
    hay.split(|byte| !(byte.is_ascii_alphanumeric() || *byte == b'\''))
        .filter(|word| !word.is_empty())
}

/// The supported language named by a locale like "de-AT", "nl_BE" or "FR".
fn hinted_language(locale_hint: &str) -> Option<usize> {
    let primary = locale_hint.split(['-', '_']).next()?;
    LANGUAGES
        .iter()
        .position(|language| language.code.eq_ignore_ascii_case(primary))
}

fn compile_rule(
    language: Option<usize>,
    spec: &Spec,
    pattern: &str,
    code: &'static str,
    index: usize,
) -> Result<CompiledRule, CommandsError> {
    Ok(CompiledRule {
        language,
        kind: spec.kind,
        confidence: spec.confidence,
        negatable: spec.negatable,
        regex: build(pattern).map_err(|source| pattern_error(code, index.to_string(), source))?,
    })
}

fn compile_cues(code: &'static str, cues: &Cues) -> Result<CompiledCues, CommandsError> {
    let error = |name: &str| {
        let name = name.to_owned();
        move |source| pattern_error(code, name, source)
    };
    let trailing_negation = if cues.trailing_negation.is_empty() {
        None
    } else {
        let pattern = format!(r"^\s+(?:[a-z]+\s+)?(?:{})\b", cues.trailing_negation);
        Some(build(&pattern).map_err(error("trailing_negation"))?)
    };
    Ok(CompiledCues {
        negation: build(&format!(r"\b(?:{})(?:\b|$)", cues.negation)).map_err(error("negation"))?,
        question: build(&format!(r"\b(?:{})\b", cues.question)).map_err(error("question"))?,
        trailing_negation,
        neutral: cues.neutral,
        subjects: cues.subjects,
        past_auxiliaries: cues.past_auxiliaries,
        blocked_after: cues.blocked_after,
        stopwords: cues.stopwords,
    })
}

fn build(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(8 << 20)
        .build()
}

fn pattern_error(language: &'static str, index: String, source: regex::Error) -> CommandsError {
    CommandsError::Pattern {
        language,
        index,
        source,
    }
}
