//! What a retention policy may say: pure rules, no I/O.
//!
//! - The period is at least one hour and at most the platform cap of its category
//!   (`service.caps`); both bounds are INVALID_ARGUMENT naming `policy.period`, since
//!   the value itself is wrong whatever the state of the system.
//! - The action must be one the owning service can carry out: CRYPTO_SHRED only for
//!   vault records, audit entries only ANONYMIZE or RESTRICT (deleting would break the
//!   Merkle log), DSR records never DELETE before `service.dsr_record_days`.
//! - Purpose-specific policies exist only for categories whose owners record purposes.

use veil_core::error::ServiceError;
use veil_proto::common::v1::{DataCategory, RetentionAction, VeilService};
use veil_proto::retention::v1::RetentionPolicy;

use crate::settings::{CapSettings, RetentionSettings};

/// Shortest period a policy may set.
pub const MIN_PERIOD_SECS: i64 = 3600;
const DAY_SECS: i64 = 86_400;

/// A validated policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    pub category: DataCategory,
    pub purpose_key: String,
    pub period_secs: i64,
    pub action: RetentionAction,
}

/// The service that owns (and purges) a category's data.
pub fn owner(category: DataCategory) -> VeilService {
    match category {
        DataCategory::Transcript => VeilService::Gateway,
        DataCategory::VaultRecord => VeilService::Vault,
        DataCategory::ConsentRecord => VeilService::Consent,
        DataCategory::AuditEvent => VeilService::Audit,
        DataCategory::Export | DataCategory::DsrRecord => VeilService::Retention,
        DataCategory::Unspecified => VeilService::Unspecified,
    }
}

/// The actions each owning service implements for the category.
pub fn allowed_actions(category: DataCategory) -> &'static [RetentionAction] {
    use RetentionAction::*;
    match category {
        DataCategory::Transcript => &[Delete, Anonymize, Restrict],
        DataCategory::VaultRecord => &[Delete, CryptoShred],
        DataCategory::ConsentRecord => &[Delete, Anonymize],
        DataCategory::AuditEvent => &[Anonymize, Restrict],
        DataCategory::Export => &[Delete],
        DataCategory::DsrRecord => &[Delete, Anonymize, Restrict],
        DataCategory::Unspecified => &[],
    }
}

/// Whether the category's data records the purpose it was collected for.
pub fn has_purposes(category: DataCategory) -> bool {
    matches!(
        category,
        DataCategory::Transcript | DataCategory::VaultRecord | DataCategory::ConsentRecord
    )
}

/// The platform cap of a category, in days.
pub fn cap_days(caps: &CapSettings, category: DataCategory) -> u32 {
    match category {
        DataCategory::Transcript => caps.transcript_days,
        DataCategory::VaultRecord => caps.vault_record_days,
        DataCategory::ConsentRecord => caps.consent_record_days,
        DataCategory::AuditEvent => caps.audit_event_days,
        DataCategory::Export => caps.export_days,
        DataCategory::DsrRecord => caps.dsr_record_days,
        DataCategory::Unspecified => 0,
    }
}

/// A known data category from its wire value; `field` names it in the error.
pub fn category(field: &str, value: i32) -> Result<DataCategory, ServiceError> {
    DataCategory::try_from(value)
        .ok()
        .filter(|c| *c != DataCategory::Unspecified)
        .ok_or_else(|| ServiceError::invalid(field, "must be a known data category"))
}

/// A purpose key: empty (every purpose) or 1 to 64 of `[a-z0-9_]`, the form every
/// owning service accepts.
pub fn purpose_key(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.is_empty() {
        return Ok(());
    }
    veil_core::validate::validate_key(field, value)
}

/// Validates a policy from SetPolicy.
pub fn validate(
    policy: &RetentionPolicy,
    settings: &RetentionSettings,
) -> Result<PolicySpec, ServiceError> {
    let category = category("policy.category", policy.category)?;
    purpose_key("policy.purpose_key", &policy.purpose_key)?;
    if !policy.purpose_key.is_empty() && !has_purposes(category) {
        return Err(ServiceError::invalid(
            "policy.purpose_key",
            "must be empty: this category's data has no purpose",
        ));
    }
    let period = policy
        .period
        .as_ref()
        .ok_or_else(|| ServiceError::invalid("policy.period", "is required"))?;
    if period.nanos != 0 {
        return Err(ServiceError::invalid(
            "policy.period",
            "must be whole seconds",
        ));
    }
    if period.seconds < MIN_PERIOD_SECS {
        return Err(ServiceError::invalid(
            "policy.period",
            "must be at least one hour",
        ));
    }
    let cap = cap_days(&settings.caps, category);
    if period.seconds > i64::from(cap) * DAY_SECS {
        return Err(ServiceError::invalid(
            "policy.period",
            format!("must be at most {cap} days, the platform cap of this category"),
        ));
    }
    let action = RetentionAction::try_from(policy.action)
        .ok()
        .filter(|a| *a != RetentionAction::Unspecified)
        .ok_or_else(|| ServiceError::invalid("policy.action", "is required"))?;
    let allowed = allowed_actions(category);
    if !allowed.contains(&action) {
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str_name()).collect();
        return Err(ServiceError::invalid(
            "policy.action",
            format!("must be one of {} for this category", names.join(", ")),
        ));
    }
    let floor_days = settings.dsr_record_days;
    if category == DataCategory::DsrRecord
        && action == RetentionAction::Delete
        && period.seconds < i64::from(floor_days) * DAY_SECS
    {
        return Err(ServiceError::invalid(
            "policy.action",
            format!(
                "DSR records may be deleted only after {floor_days} days (CCPA 7101): \
                 use a longer period, or ANONYMIZE or RESTRICT"
            ),
        ));
    }
    Ok(PolicySpec {
        category,
        purpose_key: policy.purpose_key.clone(),
        period_secs: period.seconds,
        action,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(category: DataCategory, days: i64, action: RetentionAction) -> RetentionPolicy {
        RetentionPolicy {
            category: category as i32,
            period: Some(prost_types::Duration {
                seconds: days * DAY_SECS,
                nanos: 0,
            }),
            action: action as i32,
            ..Default::default()
        }
    }

    fn field_of(error: ServiceError) -> String {
        match error {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn period_bounds_are_one_hour_and_the_category_cap() {
        let settings = RetentionSettings::default();
        let mut p = policy(DataCategory::Transcript, 0, RetentionAction::Delete);
        p.period = Some(prost_types::Duration {
            seconds: 3599,
            nanos: 0,
        });
        assert_eq!(
            field_of(validate(&p, &settings).unwrap_err()),
            "policy.period"
        );
        p.period = Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        });
        assert_eq!(validate(&p, &settings).unwrap().period_secs, 3600);
        let at_cap = policy(DataCategory::Transcript, 365, RetentionAction::Delete);
        assert!(validate(&at_cap, &settings).is_ok());
        let over = policy(DataCategory::Transcript, 366, RetentionAction::Delete);
        assert_eq!(
            field_of(validate(&over, &settings).unwrap_err()),
            "policy.period"
        );
        let mut tight = RetentionSettings::default();
        tight.caps.transcript_days = 30;
        let p = policy(DataCategory::Transcript, 31, RetentionAction::Delete);
        assert_eq!(field_of(validate(&p, &tight).unwrap_err()), "policy.period");
        let mut missing = policy(DataCategory::Transcript, 1, RetentionAction::Delete);
        missing.period = None;
        assert_eq!(
            field_of(validate(&missing, &settings).unwrap_err()),
            "policy.period"
        );
    }

    #[test]
    fn actions_suit_their_category() {
        let settings = RetentionSettings::default();
        let ok = [
            (DataCategory::VaultRecord, RetentionAction::CryptoShred),
            (DataCategory::Transcript, RetentionAction::Anonymize),
            (DataCategory::AuditEvent, RetentionAction::Restrict),
            (DataCategory::ConsentRecord, RetentionAction::Delete),
            (DataCategory::DsrRecord, RetentionAction::Anonymize),
            (DataCategory::Export, RetentionAction::Delete),
        ];
        for (category, action) in ok {
            assert!(
                validate(&policy(category, 7, action), &settings).is_ok(),
                "{category:?} {action:?}"
            );
        }
        let refused = [
            (DataCategory::Transcript, RetentionAction::CryptoShred),
            (DataCategory::ConsentRecord, RetentionAction::CryptoShred),
            (DataCategory::AuditEvent, RetentionAction::Delete),
            (DataCategory::AuditEvent, RetentionAction::CryptoShred),
            (DataCategory::VaultRecord, RetentionAction::Unspecified),
        ];
        for (category, action) in refused {
            let error = validate(&policy(category, 7, action), &settings).unwrap_err();
            assert_eq!(field_of(error), "policy.action", "{category:?} {action:?}");
        }
    }

    #[test]
    fn dsr_records_are_deleted_only_after_the_statutory_floor() {
        let settings = RetentionSettings::default();
        let early = policy(DataCategory::DsrRecord, 729, RetentionAction::Delete);
        assert_eq!(
            field_of(validate(&early, &settings).unwrap_err()),
            "policy.action"
        );
        let late = policy(DataCategory::DsrRecord, 730, RetentionAction::Delete);
        assert!(validate(&late, &settings).is_ok());
    }

    #[test]
    fn categories_and_purposes_are_checked() {
        let settings = RetentionSettings::default();
        let unspecified = policy(DataCategory::Unspecified, 7, RetentionAction::Delete);
        assert_eq!(
            field_of(validate(&unspecified, &settings).unwrap_err()),
            "policy.category"
        );
        let mut p = policy(DataCategory::Transcript, 7, RetentionAction::Delete);
        p.purpose_key = "Marketing!".into();
        assert_eq!(
            field_of(validate(&p, &settings).unwrap_err()),
            "policy.purpose_key"
        );
        p.purpose_key = "marketing".into();
        assert_eq!(validate(&p, &settings).unwrap().purpose_key, "marketing");
        let mut export = policy(DataCategory::Export, 7, RetentionAction::Delete);
        export.purpose_key = "marketing".into();
        assert_eq!(
            field_of(validate(&export, &settings).unwrap_err()),
            "policy.purpose_key"
        );
    }
}
