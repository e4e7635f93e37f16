//! Checks a `PrivacyPolicy` before it is stored; every error names the offending field
//! as `policy.<path>` so a caller can fix it without guessing.

use std::collections::HashSet;

use veil_core::error::ServiceError;
use veil_proto::common::v1::Jurisdiction;
use veil_proto::gateway::v1::custom_recognizer::Matcher;
use veil_proto::gateway::v1::{ConsentFallback, PrivacyPolicy};

use super::pii::{entity_type, to_pii_policy};

const MAX_LIST: usize = 1000;
const MAX_CUSTOM_RECOGNIZERS: usize = 100;
const MAX_TEXT: usize = 256;

fn in_unit_range(value: f32, field: impl Into<String>) -> Result<(), ServiceError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ServiceError::invalid(field, "must be within [0, 1]"))
    }
}

fn bounded_list(len: usize, field: &str) -> Result<(), ServiceError> {
    if len > MAX_LIST {
        return Err(ServiceError::invalid(
            field,
            "must have at most 1000 entries",
        ));
    }
    Ok(())
}

fn text(value: &str, field: impl Into<String>) -> Result<(), ServiceError> {
    if value.trim().is_empty() || value.chars().count() > MAX_TEXT {
        return Err(ServiceError::invalid(field, "must be 1 to 256 characters"));
    }
    Ok(())
}

fn key_like(value: &str, field: impl Into<String>) -> Result<(), ServiceError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            "must be 1 to 64 characters of [a-z0-9_.-]",
        ))
    }
}

/// Validates everything `SetPrivacyPolicy` accepts; server-set fields are ignored.
pub fn validate(policy: &PrivacyPolicy) -> Result<(), ServiceError> {
    bounded_list(
        policy.enabled_entity_types.len(),
        "policy.enabled_entity_types",
    )?;
    for (i, name) in policy.enabled_entity_types.iter().enumerate() {
        entity_type(name, &format!("policy.enabled_entity_types[{i}]"))?;
    }
    bounded_list(policy.entity_rules.len(), "policy.entity_rules")?;
    let mut seen = HashSet::new();
    for (i, rule) in policy.entity_rules.iter().enumerate() {
        let field = format!("policy.entity_rules[{i}]");
        entity_type(&rule.entity_type, &format!("{field}.entity_type"))?;
        if !seen.insert(rule.entity_type.as_str()) {
            return Err(ServiceError::invalid(
                format!("{field}.entity_type"),
                "has more than one rule",
            ));
        }
        in_unit_range(rule.min_score, format!("{field}.min_score"))?;
        if rule.replacement.chars().count() > MAX_TEXT {
            return Err(ServiceError::invalid(
                format!("{field}.replacement"),
                "must be at most 256 characters",
            ));
        }
    }
    in_unit_range(policy.score_threshold, "policy.score_threshold")?;
    bounded_list(policy.allow_list.len(), "policy.allow_list")?;
    for (i, value) in policy.allow_list.iter().enumerate() {
        text(value, format!("policy.allow_list[{i}]"))?;
    }
    // Each compiles to up to 1 MiB in every replica's cache: a hundred is plenty for
    // a tenant's own identifiers and bounds what one policy can hold.
    if policy.custom_recognizers.len() > MAX_CUSTOM_RECOGNIZERS {
        return Err(ServiceError::invalid(
            "policy.custom_recognizers",
            "must have at most 100 entries",
        ));
    }
    let mut names = HashSet::new();
    for (i, r) in policy.custom_recognizers.iter().enumerate() {
        let field = format!("policy.custom_recognizers[{i}]");
        key_like(&r.name, format!("{field}.name"))?;
        if !names.insert(r.name.as_str()) {
            return Err(ServiceError::invalid(
                format!("{field}.name"),
                "is not unique",
            ));
        }
        in_unit_range(r.score, format!("{field}.score"))?;
        match &r.matcher {
            Some(Matcher::Regex(re)) if re.pattern.is_empty() => {
                return Err(ServiceError::invalid(
                    format!("{field}.pattern"),
                    "must not be empty",
                ));
            }
            Some(Matcher::WordList(list)) => {
                bounded_list(list.words.len(), &format!("{field}.word_list.words"))?;
                for (j, word) in list.words.iter().enumerate() {
                    text(word, format!("{field}.word_list.words[{j}]"))?;
                }
            }
            _ => {}
        }
    }
    bounded_list(policy.consent_rules.len(), "policy.consent_rules")?;
    let mut purposes = HashSet::new();
    for (i, rule) in policy.consent_rules.iter().enumerate() {
        let field = format!("policy.consent_rules[{i}]");
        key_like(&rule.purpose_key, format!("{field}.purpose_key"))?;
        if !purposes.insert(rule.purpose_key.as_str()) {
            return Err(ServiceError::invalid(
                format!("{field}.purpose_key"),
                "has more than one rule",
            ));
        }
        if ConsentFallback::try_from(rule.fallback).is_err() {
            return Err(ServiceError::invalid(
                format!("{field}.fallback"),
                "is not a known fallback",
            ));
        }
    }
    if let Some(hints) = &policy.retention_hints {
        for (name, ttl) in [
            ("transcript_ttl", &hints.transcript_ttl),
            ("vault_record_ttl", &hints.vault_record_ttl),
        ] {
            if ttl.as_ref().is_some_and(|d| d.seconds < 0 || d.nanos < 0) {
                return Err(ServiceError::invalid(
                    format!("policy.retention_hints.{name}"),
                    "must not be negative",
                ));
            }
        }
    }
    let locale = &policy.default_locale;
    let locale_ok = locale.len() <= 35
        && locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && locale
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic());
    if !locale.is_empty() && !locale_ok {
        return Err(ServiceError::invalid(
            "policy.default_locale",
            "must be a BCP 47 tag such as en-GB",
        ));
    }
    if Jurisdiction::try_from(policy.default_jurisdiction).is_err() {
        return Err(ServiceError::invalid(
            "policy.default_jurisdiction",
            "is not a known jurisdiction",
        ));
    }
    if policy.auto_act_on_privacy_commands && !policy.detect_privacy_commands {
        return Err(ServiceError::invalid(
            "policy.auto_act_on_privacy_commands",
            "requires detect_privacy_commands",
        ));
    }
    // Operators, masks and custom patterns are checked by compiling what the engine runs.
    to_pii_policy(policy).map(|_| ())
}

/// Top-level fields whose values differ (for `gateway.policy_changed`).
pub fn changed_fields(old: &PrivacyPolicy, new: &PrivacyPolicy) -> Vec<String> {
    let mut changed = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            changed.push(name.to_string());
        }
    };
    check(
        "enabled_entity_types",
        old.enabled_entity_types != new.enabled_entity_types,
    );
    check("entity_rules", old.entity_rules != new.entity_rules);
    check(
        "default_operator",
        old.default_operator != new.default_operator,
    );
    check(
        "score_threshold",
        old.score_threshold != new.score_threshold,
    );
    check("allow_list", old.allow_list != new.allow_list);
    check(
        "custom_recognizers",
        old.custom_recognizers != new.custom_recognizers,
    );
    check("consent_rules", old.consent_rules != new.consent_rules);
    check(
        "store_raw_in_vault",
        old.store_raw_in_vault != new.store_raw_in_vault,
    );
    check(
        "retention_hints",
        old.retention_hints != new.retention_hints,
    );
    check("default_locale", old.default_locale != new.default_locale);
    check(
        "default_jurisdiction",
        old.default_jurisdiction != new.default_jurisdiction,
    );
    check(
        "detect_privacy_commands",
        old.detect_privacy_commands != new.detect_privacy_commands,
    );
    check(
        "auto_act_on_privacy_commands",
        old.auto_act_on_privacy_commands != new.auto_act_on_privacy_commands,
    );
    check(
        "chat_identity_verified",
        old.chat_identity_verified != new.chat_identity_verified,
    );
    changed
}
