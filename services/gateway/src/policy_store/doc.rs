//! The JSON form of a `PrivacyPolicy`: how a version is stored in Postgres and what
//! `veil admin policy get|set` prints and reads. Enums are written as short lower-case
//! names ("mask", "reject", "eu_gdpr") and read back from those or the proto names.

use serde::{Deserialize, Serialize};
use veil_proto::common::v1::{Jurisdiction, Operator};
use veil_proto::gateway::v1::custom_recognizer::Matcher;
use veil_proto::gateway::v1::{
    ConsentFallback, CustomRecognizer, EntityRule, MaskOptions, PrivacyPolicy, PurposeConsentRule,
    RegexPattern, RetentionHints, WordList,
};

/// Why a JSON policy could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Not JSON of the expected shape.
    #[error("policy json is malformed: {0}")]
    Malformed(String),
    /// An enum value that names nothing.
    #[error("invalid {field}: unknown value {value:?}")]
    UnknownName {
        /// Field path.
        field: String,
        /// The unknown name (an enum label, never personal data).
        value: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PolicyDoc {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    enabled_entity_types: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entity_rules: Vec<RuleDoc>,
    default_operator: String,
    score_threshold: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allow_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    custom_recognizers: Vec<RecognizerDoc>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    consent_rules: Vec<ConsentRuleDoc>,
    store_raw_in_vault: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_hints: Option<RetentionDoc>,
    #[serde(skip_serializing_if = "String::is_empty")]
    default_locale: String,
    default_jurisdiction: String,
    detect_privacy_commands: bool,
    auto_act_on_privacy_commands: bool,
    chat_identity_verified: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RuleDoc {
    entity_type: String,
    operator: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mask: Option<MaskDoc>,
    #[serde(skip_serializing_if = "String::is_empty")]
    replacement: String,
    #[serde(skip_serializing_if = "is_zero")]
    min_score: f32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MaskDoc {
    masking_char: String,
    keep_last: u32,
    keep_first: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RecognizerDoc {
    name: String,
    entity_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<RegexDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    word_list: Option<WordsDoc>,
    score: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    context_words: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RegexDoc {
    pattern: String,
    case_insensitive: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WordsDoc {
    words: Vec<String>,
    case_sensitive: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConsentRuleDoc {
    purpose_key: String,
    fallback: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RetentionDoc {
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript_ttl_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault_record_ttl_seconds: Option<i64>,
}

fn is_zero(value: &f32) -> bool {
    *value == 0.0
}

/// `OPERATOR_MASK` with prefix `OPERATOR_` → `mask`.
fn short(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

/// Reads `mask`, `MASK` or `OPERATOR_MASK`; empty means the zero value.
fn parse_enum<T: Into<i32>>(
    value: &str,
    prefix: &str,
    field: &str,
    from_name: impl Fn(&str) -> Option<T>,
) -> Result<i32, DocError> {
    if value.is_empty() {
        return Ok(0);
    }
    let upper = value.to_ascii_uppercase();
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    from_name(&full)
        .map(Into::into)
        .ok_or_else(|| DocError::UnknownName {
            field: field.to_string(),
            value: value.to_string(),
        })
}

fn operator_name(value: i32) -> String {
    short(
        Operator::try_from(value).unwrap_or_default().as_str_name(),
        "OPERATOR_",
    )
}

fn operator(value: &str, field: &str) -> Result<i32, DocError> {
    parse_enum(value, "OPERATOR_", field, Operator::from_str_name)
}

/// The JSON document of a policy (without version and update metadata).
pub fn to_json(policy: &PrivacyPolicy) -> serde_json::Value {
    let doc = PolicyDoc {
        enabled_entity_types: policy.enabled_entity_types.clone(),
        entity_rules: policy
            .entity_rules
            .iter()
            .map(|rule| RuleDoc {
                entity_type: rule.entity_type.clone(),
                operator: operator_name(rule.operator),
                mask: rule.mask.as_ref().map(|m| MaskDoc {
                    masking_char: m.masking_char.clone(),
                    keep_last: m.keep_last,
                    keep_first: m.keep_first,
                }),
                replacement: rule.replacement.clone(),
                min_score: rule.min_score,
            })
            .collect(),
        default_operator: operator_name(policy.default_operator),
        score_threshold: policy.score_threshold,
        allow_list: policy.allow_list.clone(),
        custom_recognizers: policy
            .custom_recognizers
            .iter()
            .map(|r| RecognizerDoc {
                name: r.name.clone(),
                entity_type: r.entity_type.clone(),
                regex: match &r.matcher {
                    Some(Matcher::Regex(re)) => Some(RegexDoc {
                        pattern: re.pattern.clone(),
                        case_insensitive: re.case_insensitive,
                    }),
                    _ => None,
                },
                word_list: match &r.matcher {
                    Some(Matcher::WordList(list)) => Some(WordsDoc {
                        words: list.words.clone(),
                        case_sensitive: list.case_sensitive,
                    }),
                    _ => None,
                },
                score: r.score,
                context_words: r.context_words.clone(),
            })
            .collect(),
        consent_rules: policy
            .consent_rules
            .iter()
            .map(|c| ConsentRuleDoc {
                purpose_key: c.purpose_key.clone(),
                fallback: short(
                    ConsentFallback::try_from(c.fallback)
                        .unwrap_or_default()
                        .as_str_name(),
                    "CONSENT_FALLBACK_",
                ),
            })
            .collect(),
        store_raw_in_vault: policy.store_raw_in_vault,
        retention_hints: policy.retention_hints.as_ref().map(|h| RetentionDoc {
            transcript_ttl_seconds: h.transcript_ttl.as_ref().map(|d| d.seconds),
            vault_record_ttl_seconds: h.vault_record_ttl.as_ref().map(|d| d.seconds),
        }),
        default_locale: policy.default_locale.clone(),
        default_jurisdiction: short(
            Jurisdiction::try_from(policy.default_jurisdiction)
                .unwrap_or_default()
                .as_str_name(),
            "JURISDICTION_",
        ),
        detect_privacy_commands: policy.detect_privacy_commands,
        auto_act_on_privacy_commands: policy.auto_act_on_privacy_commands,
        chat_identity_verified: policy.chat_identity_verified,
    };
    serde_json::to_value(doc).unwrap_or_default()
}

/// Reads a policy from its JSON document (server-set fields stay unset).
pub fn from_json(value: serde_json::Value) -> Result<PrivacyPolicy, DocError> {
    let doc: PolicyDoc =
        serde_json::from_value(value).map_err(|e| DocError::Malformed(e.to_string()))?;
    let mut entity_rules = Vec::with_capacity(doc.entity_rules.len());
    for (i, rule) in doc.entity_rules.into_iter().enumerate() {
        entity_rules.push(EntityRule {
            operator: operator(&rule.operator, &format!("entity_rules[{i}].operator"))?,
            entity_type: rule.entity_type,
            mask: rule.mask.map(|m| MaskOptions {
                masking_char: m.masking_char,
                keep_last: m.keep_last,
                keep_first: m.keep_first,
            }),
            replacement: rule.replacement,
            min_score: rule.min_score,
        });
    }
    let mut consent_rules = Vec::with_capacity(doc.consent_rules.len());
    for (i, rule) in doc.consent_rules.into_iter().enumerate() {
        consent_rules.push(PurposeConsentRule {
            fallback: parse_enum(
                &rule.fallback,
                "CONSENT_FALLBACK_",
                &format!("consent_rules[{i}].fallback"),
                ConsentFallback::from_str_name,
            )?,
            purpose_key: rule.purpose_key,
        });
    }
    let custom_recognizers = doc
        .custom_recognizers
        .into_iter()
        .map(|r| CustomRecognizer {
            name: r.name,
            entity_type: r.entity_type,
            matcher: match (r.regex, r.word_list) {
                (Some(re), _) => Some(Matcher::Regex(RegexPattern {
                    pattern: re.pattern,
                    case_insensitive: re.case_insensitive,
                })),
                (None, Some(list)) => Some(Matcher::WordList(WordList {
                    words: list.words,
                    case_sensitive: list.case_sensitive,
                })),
                (None, None) => None,
            },
            score: r.score,
            context_words: r.context_words,
        })
        .collect();
    let seconds = |s: Option<i64>| s.map(|seconds| prost_types::Duration { seconds, nanos: 0 });
    Ok(PrivacyPolicy {
        enabled_entity_types: doc.enabled_entity_types,
        entity_rules,
        default_operator: operator(&doc.default_operator, "default_operator")?,
        score_threshold: doc.score_threshold,
        allow_list: doc.allow_list,
        custom_recognizers,
        consent_rules,
        store_raw_in_vault: doc.store_raw_in_vault,
        retention_hints: doc.retention_hints.map(|h| RetentionHints {
            transcript_ttl: seconds(h.transcript_ttl_seconds),
            vault_record_ttl: seconds(h.vault_record_ttl_seconds),
        }),
        default_locale: doc.default_locale,
        default_jurisdiction: parse_enum(
            &doc.default_jurisdiction,
            "JURISDICTION_",
            "default_jurisdiction",
            Jurisdiction::from_str_name,
        )?,
        detect_privacy_commands: doc.detect_privacy_commands,
        auto_act_on_privacy_commands: doc.auto_act_on_privacy_commands,
        chat_identity_verified: doc.chat_identity_verified,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_round_trips_and_reads_short_names() {
        let json = serde_json::json!({
            "entity_rules": [{"entity_type": "EMAIL_ADDRESS", "operator": "mask",
                              "mask": {"masking_char": "#", "keep_last": 4}}],
            "default_operator": "OPERATOR_REDACT",
            "score_threshold": 0.6,
            "custom_recognizers": [{"name": "order", "entity_type": "ORDER_ID",
                                    "regex": {"pattern": "ORD-\\d+"}, "score": 0.9}],
            "consent_rules": [{"purpose_key": "marketing", "fallback": "reject"}],
            "retention_hints": {"transcript_ttl_seconds": 86400},
            "default_jurisdiction": "eu_gdpr",
        });
        let policy = from_json(json).unwrap();
        assert_eq!(policy.entity_rules[0].operator, Operator::Mask as i32);
        assert_eq!(policy.default_operator, Operator::Redact as i32);
        assert_eq!(
            policy.consent_rules[0].fallback,
            ConsentFallback::Reject as i32
        );
        assert_eq!(policy.default_jurisdiction, Jurisdiction::EuGdpr as i32);
        let again = from_json(to_json(&policy)).unwrap();
        assert_eq!(again, policy);
        assert_eq!(to_json(&policy)["default_operator"], "redact");
    }

    #[test]
    fn unknown_names_and_fields_are_refused() {
        let bad = from_json(serde_json::json!({"default_operator": "shred"})).unwrap_err();
        assert!(bad.to_string().contains("default_operator"), "{bad}");
        let bad = from_json(serde_json::json!({"surprise": true})).unwrap_err();
        assert!(matches!(bad, DocError::Malformed(_)));
    }
}
