//! From the API's `PrivacyPolicy` to the engine's compiled [`veil_pii::Policy`].
//!
//! Only the detection and minimization parts map (types, operators, thresholds,
//! allow-list, custom recognizers); consent rules, vault storage and retention hints are
//! the pipeline's business. Errors name the proto field, so `SetPrivacyPolicy` can reject
//! a policy the engine would refuse before storing it.

use std::collections::BTreeMap;

use veil_core::error::ServiceError;
use veil_pii::{
    CustomRecognizerSpec, DEFAULT_THRESHOLD, EntityType, Policy, PolicyError, PolicySpec,
};
use veil_proto::common::v1::Operator as ProtoOperator;
use veil_proto::gateway::v1::custom_recognizer::Matcher;
use veil_proto::gateway::v1::{CustomRecognizer, EntityRule, PrivacyPolicy};

/// The engine's default scores for custom matches when the policy leaves them at 0.
const DEFAULT_REGEX_SCORE: f32 = 0.6;
const DEFAULT_WORDS_SCORE: f32 = 0.85;

/// Parses an entity type name (built-in or a well-formed custom name).
pub(super) fn entity_type(name: &str, field: &str) -> Result<EntityType, ServiceError> {
    EntityType::parse(name).ok_or_else(|| {
        ServiceError::invalid(
            field,
            "must be a built-in type or upper case letters, digits and underscores",
        )
    })
}

/// The engine operator for a proto operator; OPERATOR_UNSPECIFIED gives `None`.
fn operator(
    value: i32,
    rule: Option<&EntityRule>,
    field: &str,
) -> Result<Option<veil_pii::Operator>, ServiceError> {
    let proto = ProtoOperator::try_from(value)
        .map_err(|_| ServiceError::invalid(field, "is not a known operator"))?;
    Ok(Some(match proto {
        ProtoOperator::Unspecified => return Ok(None),
        ProtoOperator::Keep => veil_pii::Operator::Keep,
        ProtoOperator::Redact => veil_pii::Operator::Redact,
        ProtoOperator::Replace => veil_pii::Operator::Replace {
            with: rule
                .map(|r| r.replacement.clone())
                .filter(|text| !text.is_empty()),
        },
        ProtoOperator::Mask => {
            let mask = rule.and_then(|r| r.mask.clone()).unwrap_or_default();
            if mask.keep_first > 0 {
                return Err(ServiceError::invalid(
                    format!("{}.mask.keep_first", field.trim_end_matches(".operator")),
                    "is not supported yet; use keep_last",
                ));
            }
            let mut chars = mask.masking_char.chars();
            let mask_char = match (chars.next(), chars.next()) {
                (None, _) => '*',
                (Some(c), None) => c,
                _ => {
                    return Err(ServiceError::invalid(
                        format!("{}.mask.masking_char", field.trim_end_matches(".operator")),
                        "must be a single character",
                    ));
                }
            };
            veil_pii::Operator::Mask {
                keep_last: usize::try_from(mask.keep_last).unwrap_or(usize::MAX),
                mask_char,
            }
        }
        ProtoOperator::Hash => veil_pii::Operator::Hash,
        ProtoOperator::Pseudonymize => veil_pii::Operator::Pseudonymize,
        ProtoOperator::Encrypt => veil_pii::Operator::Encrypt,
    }))
}

fn recognizer_spec(
    r: &CustomRecognizer,
    field: &str,
) -> Result<CustomRecognizerSpec, ServiceError> {
    let context: Vec<String> = r.context_words.clone();
    match &r.matcher {
        Some(Matcher::Regex(re)) => Ok(CustomRecognizerSpec::Regex {
            entity: r.entity_type.clone(),
            // The engine has no flag for this; an inline group is equivalent.
            pattern: if re.case_insensitive {
                format!("(?i:{})", re.pattern)
            } else {
                re.pattern.clone()
            },
            score: if r.score == 0.0 {
                DEFAULT_REGEX_SCORE
            } else {
                r.score
            },
            context,
        }),
        Some(Matcher::WordList(list)) => Ok(CustomRecognizerSpec::Words {
            entity: r.entity_type.clone(),
            words: list.words.clone(),
            score: if r.score == 0.0 {
                DEFAULT_WORDS_SCORE
            } else {
                r.score
            },
            case_sensitive: list.case_sensitive,
        }),
        None => Err(ServiceError::invalid(
            format!("{field}.matcher"),
            "a regex or a word_list is required",
        )),
    }
}

/// Compiles one recognizer alone so an engine error can name its index.
fn check_recognizer(spec: &CustomRecognizerSpec, field: &str) -> Result<(), ServiceError> {
    let single = PolicySpec {
        custom_recognizers: vec![spec.clone()],
        ..PolicySpec::default()
    };
    Policy::new(single).map(|_| ()).map_err(|error| {
        let (suffix, reason) = match &error {
            PolicyError::BadPattern { reason, .. } => {
                // The regex error's last line says what is wrong without echoing the input.
                let why = reason.lines().rev().find(|l| !l.trim().is_empty());
                let why = why.unwrap_or("does not compile").trim();
                return ServiceError::invalid(
                    format!("{field}.pattern"),
                    format!("does not compile: {}", why.trim_start_matches("error: ")),
                );
            }
            PolicyError::BadEntityName(_) => (
                "entity_type",
                "must be upper case letters, digits and underscores",
            ),
            PolicyError::BadWordList(_) => ("word_list.words", "is empty or invalid"),
            PolicyError::OutOfRange { .. } => ("score", "must be within [0, 1]"),
            PolicyError::UnknownRegion(_) => ("", "is invalid"),
        };
        ServiceError::invalid(format!("{field}.{suffix}"), reason)
    })
}

/// The compiled engine policy of a stored privacy policy.
pub fn to_pii_policy(policy: &PrivacyPolicy) -> Result<Policy, ServiceError> {
    let entities = if policy.enabled_entity_types.is_empty() {
        None
    } else {
        let mut list = Vec::with_capacity(policy.enabled_entity_types.len());
        for (i, name) in policy.enabled_entity_types.iter().enumerate() {
            list.push(entity_type(
                name,
                &format!("policy.enabled_entity_types[{i}]"),
            )?);
        }
        Some(list)
    };
    let threshold = if policy.score_threshold == 0.0 {
        DEFAULT_THRESHOLD
    } else {
        policy.score_threshold
    };
    let mut operators = BTreeMap::new();
    let mut thresholds = BTreeMap::new();
    for (i, rule) in policy.entity_rules.iter().enumerate() {
        let field = format!("policy.entity_rules[{i}]");
        let entity = entity_type(&rule.entity_type, &format!("{field}.entity_type"))?;
        let op = operator(rule.operator, Some(rule), &format!("{field}.operator"))?
            .ok_or_else(|| ServiceError::invalid(format!("{field}.operator"), "must be set"))?;
        if rule.min_score != 0.0 {
            thresholds.insert(entity.clone(), rule.min_score);
        }
        operators.insert(entity, op);
    }
    let default_operator = operator(policy.default_operator, None, "policy.default_operator")?
        .unwrap_or(veil_pii::Operator::Pseudonymize);
    let mut custom_recognizers = Vec::with_capacity(policy.custom_recognizers.len());
    for (i, r) in policy.custom_recognizers.iter().enumerate() {
        let field = format!("policy.custom_recognizers[{i}]");
        let spec = recognizer_spec(r, &field)?;
        check_recognizer(&spec, &field)?;
        custom_recognizers.push(spec);
    }
    let spec = PolicySpec {
        entities,
        threshold,
        thresholds,
        allow_list: policy.allow_list.clone(),
        custom_recognizers,
        operators,
        default_operator,
        ..PolicySpec::default()
    };
    Policy::new(spec).map_err(|error| match error {
        PolicyError::OutOfRange { field: "threshold" } => {
            ServiceError::invalid("policy.score_threshold", "must be within [0, 1]")
        }
        PolicyError::OutOfRange { .. } => {
            ServiceError::invalid("policy.entity_rules", "min_score must be within [0, 1]")
        }
        other => ServiceError::invalid("policy", other.to_string()),
    })
}
