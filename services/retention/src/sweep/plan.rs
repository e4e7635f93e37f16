//! What a sweep asks of whom: one step per policy, with its cutoff fixed when the sweep
//! starts. Pure, so the rules are tested without services.
//!
//! A policy without a purpose covers "every purpose without its own policy", but
//! `PurgeCriteria` cannot exclude purposes: a purpose-less purge takes every purpose.
//! So the purpose-less step of a category uses the oldest cutoff among that category's
//! policies: it never removes data a purpose-specific policy still keeps, at the price
//! of keeping purposes without their own policy longer when a specific policy is
//! longer than the default. Purpose-specific steps run first.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use veil_proto::common::v1::{DataCategory, RetentionAction, VeilService};

use crate::policies::rules;
use crate::policies::store::PolicyRow;

/// One policy's part of a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub ordinal: i32,
    pub policy_id: Uuid,
    pub service: VeilService,
    pub category: DataCategory,
    pub purpose_key: String,
    pub action: RetentionAction,
    /// Data created strictly before this instant is expired.
    pub cutoff: OffsetDateTime,
}

/// The steps of a sweep at `now` over `policies`, limited to `categories` unless empty.
pub fn plan(policies: &[PolicyRow], categories: &[DataCategory], now: OffsetDateTime) -> Vec<Step> {
    let mut chosen: Vec<(DataCategory, RetentionAction, &PolicyRow)> = policies
        .iter()
        .filter_map(|p| {
            let category = DataCategory::try_from(p.category).ok()?;
            let action = RetentionAction::try_from(p.action).ok()?;
            let wanted = categories.is_empty() || categories.contains(&category);
            (wanted && category != DataCategory::Unspecified).then_some((category, action, p))
        })
        .collect();
    // By category; within one, purpose-specific policies before the purpose-less one.
    chosen.sort_by(|a, b| {
        (a.0 as i32, a.2.purpose_key.is_empty(), &a.2.purpose_key).cmp(&(
            b.0 as i32,
            b.2.purpose_key.is_empty(),
            &b.2.purpose_key,
        ))
    });
    let cutoff_of = |p: &PolicyRow| now - Duration::seconds(p.period_secs);
    let mut steps = Vec::with_capacity(chosen.len());
    for (i, (category, action, policy)) in chosen.iter().enumerate() {
        let mut cutoff = cutoff_of(policy);
        if policy.purpose_key.is_empty() {
            for (other_category, _, other) in &chosen {
                if other_category == category {
                    cutoff = cutoff.min(cutoff_of(other));
                }
            }
        }
        steps.push(Step {
            ordinal: i32::try_from(i).unwrap_or(i32::MAX),
            policy_id: policy.policy_id,
            service: rules::owner(*category),
            category: *category,
            purpose_key: policy.purpose_key.clone(),
            action: *action,
            cutoff,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn policy(
        category: DataCategory,
        purpose: &str,
        days: i64,
        action: RetentionAction,
    ) -> PolicyRow {
        PolicyRow {
            policy_id: Uuid::now_v7(),
            category: category as i32,
            purpose_key: purpose.into(),
            period_secs: days * 86_400,
            action: action as i32,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            actor_kind: 0,
            actor_id: String::new(),
            actor_roles: Vec::new(),
        }
    }

    #[test]
    fn each_policy_is_a_step_of_its_owner_with_now_minus_period() {
        let now = datetime!(2026-03-01 00:00 UTC);
        let policies = [
            policy(
                DataCategory::VaultRecord,
                "",
                10,
                RetentionAction::CryptoShred,
            ),
            policy(DataCategory::Transcript, "", 30, RetentionAction::Delete),
            policy(
                DataCategory::AuditEvent,
                "",
                100,
                RetentionAction::Anonymize,
            ),
            policy(DataCategory::DsrRecord, "", 800, RetentionAction::Anonymize),
        ];
        let steps = plan(&policies, &[], now);
        let owners: Vec<_> = steps.iter().map(|s| (s.category, s.service)).collect();
        assert_eq!(
            owners,
            [
                (DataCategory::Transcript, VeilService::Gateway),
                (DataCategory::VaultRecord, VeilService::Vault),
                (DataCategory::AuditEvent, VeilService::Audit),
                (DataCategory::DsrRecord, VeilService::Retention),
            ]
        );
        // 2026 is no leap year: 30 days before 1 March is 30 January.
        assert_eq!(steps[0].cutoff, datetime!(2026-01-30 00:00 UTC));
        assert_eq!(steps[1].action, RetentionAction::CryptoShred);
        let ordinals: Vec<i32> = steps.iter().map(|s| s.ordinal).collect();
        assert_eq!(ordinals, [0, 1, 2, 3]);
    }

    #[test]
    fn categories_filter_the_steps() {
        let now = datetime!(2026-03-01 00:00 UTC);
        let policies = [
            policy(DataCategory::VaultRecord, "", 10, RetentionAction::Delete),
            policy(DataCategory::ConsentRecord, "", 10, RetentionAction::Delete),
        ];
        let steps = plan(&policies, &[DataCategory::ConsentRecord], now);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].service, VeilService::Consent);
        assert!(plan(&policies, &[DataCategory::Export], now).is_empty());
    }

    #[test]
    fn the_default_never_cuts_later_than_a_longer_purpose_policy() {
        let now = datetime!(2026-03-01 00:00 UTC);
        let policies = [
            policy(DataCategory::Transcript, "", 30, RetentionAction::Delete),
            policy(
                DataCategory::Transcript,
                "marketing",
                90,
                RetentionAction::Delete,
            ),
            policy(
                DataCategory::Transcript,
                "support",
                7,
                RetentionAction::Delete,
            ),
            policy(DataCategory::VaultRecord, "", 5, RetentionAction::Delete),
        ];
        let steps = plan(&policies, &[], now);
        let order: Vec<&str> = steps.iter().map(|s| s.purpose_key.as_str()).collect();
        assert_eq!(order, ["marketing", "support", "", ""]);
        assert_eq!(steps[0].cutoff, now - Duration::days(90));
        assert_eq!(steps[1].cutoff, now - Duration::days(7));
        // The transcript default waits for marketing's 90 days; the vault is unaffected.
        assert_eq!(steps[2].cutoff, now - Duration::days(90));
        assert_eq!(steps[3].cutoff, now - Duration::days(5));
    }
}
