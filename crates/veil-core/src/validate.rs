//! Checks of request fields shared by services: stable keys (purposes, recipients) and
//! locales. Errors name the field, never its value.

use crate::error::ServiceError;
use crate::types::{PLAIN_ID_RULE, is_plain_id};

/// Most purposes one message or consent check may name.
pub const MAX_PURPOSES: usize = 64;

/// Checks an id a client names its own things with (see [`is_plain_id`]).
pub fn validate_plain_id(field: &str, id: &str) -> Result<(), ServiceError> {
    if is_plain_id(id) {
        Ok(())
    } else {
        Err(ServiceError::invalid(field, PLAIN_ID_RULE))
    }
}

/// Checks a stable key (purposes, recipients, categories): 1 to 64 of `[a-z0-9_]`.
pub fn validate_key(field: &str, key: &str) -> Result<(), ServiceError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            "must be 1 to 64 characters of [a-z0-9_]",
        ))
    }
}

/// Checks a list of keys: at most `max`, each valid, no duplicates.
pub fn validate_keys(field: &str, keys: &[String], max: usize) -> Result<(), ServiceError> {
    if keys.len() > max {
        return Err(ServiceError::invalid(field, format!("at most {max} items")));
    }
    for (i, key) in keys.iter().enumerate() {
        // The field name is only built when it is needed: this runs on every check.
        if validate_key(field, key).is_err() {
            return validate_key(&format!("{field}[{i}]"), key);
        }
        if keys[..i].contains(key) {
            return Err(ServiceError::invalid(
                format!("{field}[{i}]"),
                "is a duplicate",
            ));
        }
    }
    Ok(())
}

/// A BCP 47 tag normalized (`de-at` -> `de-AT`); `Err` names what is wrong.
pub fn validate_locale(locale: &str) -> Result<String, &'static str> {
    if locale.is_empty() || locale.len() > 35 {
        return Err("must be a BCP 47 language tag such as \"de\" or \"en-GB\"");
    }
    let mut out = Vec::new();
    for (i, part) in locale.split(['-', '_']).enumerate() {
        let alnum = part.bytes().all(|b| b.is_ascii_alphanumeric());
        let ok = if i == 0 {
            (2..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphabetic())
        } else {
            (1..=8).contains(&part.len()) && alnum
        };
        if !ok {
            return Err("must be a BCP 47 language tag such as \"de\" or \"en-GB\"");
        }
        let normalized = match (i, part.len()) {
            (0, _) => part.to_ascii_lowercase(),
            (_, 2) if part.bytes().all(|b| b.is_ascii_alphabetic()) => part.to_ascii_uppercase(),
            (_, 4) => {
                let lower = part.to_ascii_lowercase();
                let mut chars = lower.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
            _ => part.to_ascii_lowercase(),
        };
        out.push(normalized);
    }
    Ok(out.join("-"))
}
