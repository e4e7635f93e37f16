//! Tenant-defined recognizers: regular expressions and word lists with their own
//! type names. Compiled once with the policy; matching is linear in the text.

use crate::context;
use crate::entity::{EntityType, is_valid_custom_name};
use crate::error::PolicyError;
use crate::finding::Label;
use crate::policy::CustomRecognizerSpec;
use crate::recognizer::{Candidate, Input, Recognizer};
use crate::text::on_word_boundaries;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{Regex, RegexBuilder};
use std::sync::Arc;

// Bounds on a tenant's recognizer, so that a small policy cannot make the engine
// build or keep far more than its own size. Refusals name the offending field.

/// Longest pattern, in characters. Identifier patterns need tens; the bound keeps
/// parsing and the regex's own error messages small.
const MAX_PATTERN_CHARS: usize = 1_000;
/// Upper bound on one compiled pattern (its NFA, checked while it is built, and
/// each lazy DFA cache). A Unicode `\w` alone takes about 50 KB and `\d` 5 KB,
/// an ASCII class (`[A-Za-z0-9_]`) about 100 bytes: this admits `\w{3,12}` or
/// `[A-Za-z0-9_]{1000}`, while `\w{5000}` (ten bytes, ~250 MB) is refused after at
/// most this much work. The gateway bounds how many recognizers a policy has.
const MAX_COMPILED_BYTES: usize = 1 << 20;
/// Context words per regex recognizer, and their length in characters. Every
/// match compares each word with the pieces of its context window.
const MAX_CONTEXT_WORDS: usize = 50;
const MAX_CONTEXT_WORD_CHARS: usize = 64;
/// Words per word list, and their length in characters (after trimming). The
/// automaton is a contiguous NFA, linear in the words' total length.
pub(crate) const MAX_WORDS: usize = 10_000;
pub(crate) const MAX_WORD_CHARS: usize = 256;

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

/// `Err(reason)` when `value` has more than `max` characters.
fn at_most_chars(value: &str, max: usize, field: &str) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        return Err(format!(
            "{field} has {n} characters; at most {max} are allowed"
        ));
    }
    Ok(())
}

/// Checks a regex recognizer's pattern length and context words, then compiles
/// the pattern under the size limit. The reason names the field first.
fn compile_regex(pattern: &str, context: &[String]) -> Result<Regex, String> {
    at_most_chars(pattern, MAX_PATTERN_CHARS, "pattern")?;
    if context.len() > MAX_CONTEXT_WORDS {
        return Err(format!(
            "context has {} words; at most {MAX_CONTEXT_WORDS} are allowed",
            context.len()
        ));
    }
    for (i, word) in context.iter().enumerate() {
        at_most_chars(word, MAX_CONTEXT_WORD_CHARS, &format!("context word {i}"))?;
    }
    RegexBuilder::new(pattern)
        .size_limit(MAX_COMPILED_BYTES)
        .dfa_size_limit(MAX_COMPILED_BYTES)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "pattern compiles to more than {limit} bytes; Unicode classes such as \\w \
                 are large, use ASCII ones such as [A-Za-z0-9_] or fewer repetitions"
            ),
            other => format!("pattern does not compile: {other}"),
        })
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
                let regex =
                    compile_regex(pattern, context).map_err(|reason| PolicyError::BadPattern {
                        entity: name.clone(),
                        reason,
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
                if words.len() > MAX_WORDS {
                    return Err(PolicyError::BadWordList(name.clone()));
                }
                let words: Vec<&str> = words
                    .iter()
                    .map(|w| w.trim())
                    .filter(|w| !w.is_empty())
                    .collect();
                if words.is_empty() || words.iter().any(|w| w.chars().count() > MAX_WORD_CHARS) {
                    return Err(PolicyError::BadWordList(name.clone()));
                }
                // Never the DFA aho-corasick picks for up to 100 words: its table is
                // states times byte classes, megabytes for a short list of long words.
                let automaton = AhoCorasickBuilder::new()
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn regex(pattern: &str, context: &[&str]) -> CustomRecognizerSpec {
        CustomRecognizerSpec::Regex {
            entity: "EMPLOYEE_ID".into(),
            pattern: pattern.into(),
            score: 0.6,
            context: context.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    fn words(words: Vec<String>) -> CustomRecognizerSpec {
        CustomRecognizerSpec::Words {
            entity: "PROJECT".into(),
            words,
            score: 0.85,
            case_sensitive: false,
        }
    }

    /// The reason of a refused regex recognizer.
    fn refusal(spec: &CustomRecognizerSpec) -> String {
        match CustomRecognizer::compile(spec) {
            Err(PolicyError::BadPattern { entity, reason }) => {
                assert_eq!(entity, "EMPLOYEE_ID");
                reason
            }
            other => panic!("expected BadPattern, got {other:?}"),
        }
    }

    #[test]
    fn ordinary_patterns_compile() {
        for p in [
            r"\bEMP-\d{6}\b",
            r"[\w.+-]+@[\w-]+\.[\w.]+",
            r"(?i:\b[a-z]{2}\d{6,10}\b)",
            r"\b[A-Z]{3}-\d{4}-[A-Z0-9]{8}\b",
            r"[A-Za-z0-9_]{1000}",
            r"\w{3,12}",
            r"(?:\w+\s){10}\w+",
            &"a".repeat(MAX_PATTERN_CHARS),
        ] {
            assert!(
                CustomRecognizer::compile(&regex(p, &["employee"])).is_ok(),
                "{p}"
            );
        }
    }

    #[test]
    fn patterns_that_compile_large_are_refused() {
        // A Unicode \w alone compiles to ~50 KB: ten bytes of `\w{5000}` would be
        // ~250 MB, and `\w{30}` already exceeds the limit.
        for p in [r"\w{5000}", r"\w{30}"] {
            let reason = refusal(&regex(p, &[]));
            assert!(reason.starts_with("pattern "), "{p}: {reason}");
            assert!(reason.contains("1048576 bytes"), "{p}: {reason}");
        }
        let error = CustomRecognizer::compile(&regex(r"\w{5000}", &[])).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("EMPLOYEE_ID: pattern compiles to more than"),
            "{error}"
        );
    }

    #[test]
    fn long_patterns_are_refused_before_compiling() {
        let reason = refusal(&regex(&"a".repeat(MAX_PATTERN_CHARS + 1), &[]));
        assert_eq!(
            reason,
            "pattern has 1001 characters; at most 1000 are allowed"
        );
        // Characters, not bytes.
        assert!(CustomRecognizer::compile(&regex(&"ä".repeat(MAX_PATTERN_CHARS), &[])).is_ok());
    }

    #[test]
    fn context_words_are_bounded() {
        let many: Vec<String> = (0..=MAX_CONTEXT_WORDS).map(|i| format!("w{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            refusal(&regex("EMP-[0-9]{6}", &many)),
            "context has 51 words; at most 50 are allowed"
        );
        assert!(CustomRecognizer::compile(&regex("EMP-[0-9]{6}", &many[1..])).is_ok());
        let long = "x".repeat(MAX_CONTEXT_WORD_CHARS + 1);
        assert_eq!(
            refusal(&regex("EMP-[0-9]{6}", &["employee", &long])),
            "context word 1 has 65 characters; at most 64 are allowed"
        );
        let longest = "x".repeat(MAX_CONTEXT_WORD_CHARS);
        assert!(CustomRecognizer::compile(&regex("EMP-[0-9]{6}", &[&longest])).is_ok());
    }

    #[test]
    fn word_lists_are_bounded() {
        let refused = |spec| {
            assert_eq!(
                CustomRecognizer::compile(&spec).err(),
                Some(PolicyError::BadWordList("PROJECT".into()))
            );
        };
        refused(words((0..=MAX_WORDS).map(|i| format!("w{i}")).collect()));
        refused(words(vec!["ok".into(), "x".repeat(MAX_WORD_CHARS + 1)]));
        let ok =
            CustomRecognizer::compile(&words((0..MAX_WORDS).map(|i| format!("w{i}")).collect()));
        assert!(ok.is_ok());
    }

    #[test]
    fn word_lists_never_build_a_dense_dfa() {
        // Left to choose, aho-corasick builds a DFA for up to 100 words, whose
        // table grows with states times byte classes; a contiguous NFA stays
        // linear in the words' length.
        let list: Vec<String> = (0..100u32)
            .map(|i| {
                (0..MAX_WORD_CHARS as u32)
                    .map(|j| char::from(b'!' + ((i * 7 + j * 13) % 94) as u8))
                    .collect()
            })
            .collect();
        let total: usize = list.iter().map(String::len).sum();
        let compiled = CustomRecognizer::compile(&words(list)).unwrap();
        let Matcher::Words(ac) = &compiled.matcher else {
            panic!("a word list compiles to an automaton");
        };
        assert_eq!(ac.kind(), AhoCorasickKind::ContiguousNFA);
        assert!(
            ac.memory_usage() < 64 * total,
            "{} bytes",
            ac.memory_usage()
        );
    }
}
