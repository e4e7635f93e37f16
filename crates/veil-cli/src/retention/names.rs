//! Short names on the command line and in output: categories, actions, services,
//! periods ("30d", "12h").

use veil_proto::common::v1::{DataCategory, RetentionAction, VeilService};

/// `transcript`, `vault_record`, ... from the proto name.
pub(super) fn category_name(value: i32) -> String {
    short(
        DataCategory::try_from(value)
            .map(|c| c.as_str_name())
            .unwrap_or("DATA_CATEGORY_UNSPECIFIED"),
        "DATA_CATEGORY_",
    )
}

/// `delete`, `crypto_shred`, ...
pub(super) fn action_name(value: i32) -> String {
    short(
        RetentionAction::try_from(value)
            .map(|a| a.as_str_name())
            .unwrap_or("RETENTION_ACTION_UNSPECIFIED"),
        "RETENTION_ACTION_",
    )
}

/// `gateway`, `vault`, ...
pub(super) fn service_name(value: i32) -> String {
    short(
        VeilService::try_from(value)
            .map(|s| s.as_str_name())
            .unwrap_or("VEIL_SERVICE_UNSPECIFIED"),
        "VEIL_SERVICE_",
    )
}

fn short(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

/// A category from its short name.
pub(super) fn category(name: &str) -> Option<DataCategory> {
    DataCategory::from_str_name(&format!("DATA_CATEGORY_{}", name.to_ascii_uppercase()))
        .filter(|c| *c != DataCategory::Unspecified)
}

/// An action from its short name.
pub(super) fn action(name: &str) -> Option<RetentionAction> {
    RetentionAction::from_str_name(&format!("RETENTION_ACTION_{}", name.to_ascii_uppercase()))
        .filter(|a| *a != RetentionAction::Unspecified)
}

/// Seconds of a period such as `90d`, `12h`, `2w`, `45m` or `3600s`.
pub(super) fn period_secs(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    let number: i64 = text[..text.len() - 1].parse().ok()?;
    (number > 0).then(|| number.checked_mul(factor)).flatten()
}

/// A period for people: whole days, hours or seconds.
pub(super) fn period_text(secs: i64) -> String {
    if secs % 86_400 == 0 {
        format!("{}d", secs / 86_400)
    } else if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_print() {
        assert_eq!(period_secs("30d"), Some(30 * 86_400));
        assert_eq!(period_secs("12h"), Some(43_200));
        assert_eq!(period_secs("2w"), Some(14 * 86_400));
        assert_eq!(period_secs("3600s"), Some(3600));
        assert_eq!(period_secs("0d"), None);
        assert_eq!(period_secs("-1d"), None);
        assert_eq!(period_secs("d"), None);
        assert_eq!(period_secs("30y"), None);
        assert_eq!(period_secs(""), None);
        assert_eq!(period_text(30 * 86_400), "30d");
        assert_eq!(period_text(7200), "2h");
        assert_eq!(period_text(61), "61s");
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(category("vault_record"), Some(DataCategory::VaultRecord));
        assert_eq!(category("Transcript"), Some(DataCategory::Transcript));
        assert_eq!(category("unspecified"), None);
        assert_eq!(category("nope"), None);
        assert_eq!(action("crypto_shred"), Some(RetentionAction::CryptoShred));
        assert_eq!(action("unspecified"), None);
        assert_eq!(category_name(DataCategory::DsrRecord as i32), "dsr_record");
        assert_eq!(action_name(RetentionAction::Anonymize as i32), "anonymize");
        assert_eq!(service_name(VeilService::Consent as i32), "consent");
    }
}
