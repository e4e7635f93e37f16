//! The PII engine as the gateway uses it: one analyzer built at start-up and shared by
//! every call, the policy applied per tenant, and the conversion of results to the API.

use std::collections::BTreeMap;
use std::sync::Arc;

use veil_pii::{
    Analyzer, Anonymizer, Finding, Keys, Operator, Policy, PolicySpec, Redacted, RedactedEntity,
    StreamRedactor,
};
use veil_proto::common::v1::{Entity, EntityExplanation, Operator as ProtoOperator, Span};

/// The analyzer (built once; name lists and automata are large) and the default policy.
pub struct Engine {
    analyzer: Arc<Analyzer>,
    anonymizer: Arc<Anonymizer>,
    default_policy: Policy,
}

impl Engine {
    /// Builds the analyzer; the default policy pseudonymizes every detected type.
    pub fn new() -> anyhow::Result<Self> {
        let default_policy = Policy::new(PolicySpec {
            default_operator: Operator::Pseudonymize,
            ..PolicySpec::default()
        })?;
        Ok(Self {
            analyzer: Arc::new(Analyzer::new()),
            anonymizer: Arc::new(Anonymizer::new(Keys::none())),
            default_policy,
        })
    }

    /// The policy used when a tenant has none.
    pub fn default_policy(&self) -> &Policy {
        &self.default_policy
    }

    /// Finds personal data under `policy`.
    pub fn analyze(&self, text: &str, policy: &Policy) -> Vec<Finding> {
        self.analyzer.analyze(text, policy)
    }

    /// Distinct `(entity type, value)` pairs that will be pseudonymized, in text order.
    pub fn pseudonymized_values(
        text: &str,
        findings: &[Finding],
        policy: &Policy,
    ) -> Vec<(String, String)> {
        let mut seen = std::collections::HashSet::new();
        findings
            .iter()
            .filter(|f| matches!(policy.operator_for(&f.entity), Operator::Pseudonymize))
            .filter_map(|f| {
                let pair = (
                    f.entity.name().to_string(),
                    text.get(f.range())?.to_string(),
                );
                seen.insert(pair.clone()).then_some(pair)
            })
            .collect()
    }

    /// A stream redactor continuing the conversation's placeholders in `map`.
    pub fn stream(&self, policy: &Policy, map: veil_pii::PseudonymMap) -> StreamRedactor {
        StreamRedactor::new(
            self.analyzer.clone(),
            Arc::new(policy.clone()),
            self.anonymizer.clone(),
            map,
        )
    }

    /// Applies the policy's operators; `map` holds the conversation's placeholders.
    pub fn anonymize(
        &self,
        text: &str,
        findings: &[Finding],
        policy: &Policy,
        map: &mut veil_pii::PseudonymMap,
    ) -> Result<Redacted, veil_pii::AnonymizeError> {
        self.anonymizer.anonymize(text, findings, policy, map)
    }
}

fn proto_operator(name: &str) -> ProtoOperator {
    match name {
        "redact" => ProtoOperator::Redact,
        "replace" => ProtoOperator::Replace,
        "mask" => ProtoOperator::Mask,
        "hash" => ProtoOperator::Hash,
        "pseudonymize" => ProtoOperator::Pseudonymize,
        "encrypt" => ProtoOperator::Encrypt,
        "keep" => ProtoOperator::Keep,
        _ => ProtoOperator::Unspecified,
    }
}

fn span(start: usize, end: usize, char_start: usize, char_end: usize) -> Option<Span> {
    let to32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    Some(Span {
        byte_start: to32(start),
        byte_end: to32(end),
        char_start: to32(char_start),
        char_end: to32(char_end),
    })
}

/// API entities of a redacted text, with spans in the input and in the output (bytes and
/// code points), and explanations when asked for.
pub fn entities(redacted: &Redacted, findings: &[Finding], explain: bool) -> Vec<Entity> {
    entities_of(&redacted.text, &redacted.entities, findings, explain)
}

/// API entities of `entities`, whose output offsets point into `text`.
pub fn entities_of(
    text: &str,
    entities: &[RedactedEntity],
    findings: &[Finding],
    explain: bool,
) -> Vec<Entity> {
    let mut out_chars = 0usize;
    let mut out_bytes = 0usize;
    entities
        .iter()
        .map(|e| {
            // Output offsets advance monotonically: count code points incrementally.
            out_chars += text
                .get(out_bytes..e.redacted_start)
                .map_or(0, |s| s.chars().count());
            let start_chars = out_chars;
            out_chars += text
                .get(e.redacted_start..e.redacted_end)
                .map_or(0, |s| s.chars().count());
            out_bytes = e.redacted_end;
            let explanation = explain
                .then(|| {
                    findings
                        .iter()
                        .find(|f| f.start == e.start && f.end == e.end)
                })
                .flatten()
                .map(|f| EntityExplanation {
                    recognizer: f.explanation.recognizer.as_str().to_string(),
                    pattern_name: f.explanation.pattern.as_str().to_string(),
                    validated: f.explanation.checksum_validated,
                    context_words: f
                        .explanation
                        .context_words
                        .iter()
                        .map(|w| w.as_str().to_string())
                        .collect(),
                    original_score: f.explanation.base_score,
                    text: format!(
                        "score {:.2} (base {:.2})",
                        f.explanation.final_score, f.explanation.base_score
                    ),
                });
            Entity {
                entity_type: e.entity.name().to_string(),
                span: span(e.start, e.end, e.char_start, e.char_end),
                output_span: (e.redacted_end > e.redacted_start)
                    .then(|| span(e.redacted_start, e.redacted_end, start_chars, out_chars))
                    .flatten(),
                score: e.score,
                placeholder: e.replacement.clone(),
                operator: proto_operator(e.operator) as i32,
                explanation,
            }
        })
        .collect()
}

/// Entity and operator counts for the `message_processed` event.
pub fn counts(found: &[RedactedEntity]) -> (BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let mut entities = BTreeMap::new();
    let mut operators = BTreeMap::new();
    for e in found {
        *entities.entry(e.entity.name().to_string()).or_insert(0) += 1;
        *operators
            .entry(e.operator.to_ascii_uppercase())
            .or_insert(0) += 1;
    }
    (entities, operators)
}
