//! `Purge`: what a retention sweep removes or anonymizes in the consent schema.

use veil_core::error::{ServiceError, ServiceResult};
use veil_core::types::SubjectRef;
use veil_proto::common::v1::{DataCategory, PurgeOutcome, RetentionAction};
use veil_proto::consent::v1::*;

use super::convert::instant;
use super::{Caller, ConsentApi};
use crate::domain::validate_key;
use crate::store::purge::{self, Sweep};

/// Items handled per kind and call unless the sweep asks for fewer.
const DEFAULT_BATCH: i64 = 1_000;
/// Upper bound of a batch.
const MAX_BATCH: i64 = 10_000;

impl ConsentApi {
    pub(super) async fn purge_impl(
        &self,
        caller: &Caller,
        request: PurgeRequest,
    ) -> ServiceResult<PurgeResponse> {
        let criteria = request
            .criteria
            .ok_or_else(|| ServiceError::invalid("criteria", "is required"))?;
        if criteria.category != DataCategory::ConsentRecord as i32 {
            return Err(ServiceError::invalid(
                "criteria.category",
                "consent holds only consent records",
            ));
        }
        let anonymize = match RetentionAction::try_from(criteria.action) {
            Ok(RetentionAction::Delete) => false,
            Ok(RetentionAction::Anonymize) => true,
            _ => {
                return Err(ServiceError::invalid(
                    "criteria.action",
                    "must be delete or anonymize",
                ));
            }
        };
        let cutoff = instant(criteria.cutoff.as_ref(), "criteria.cutoff")?
            .ok_or_else(|| ServiceError::invalid("criteria.cutoff", "is required"))?;
        if !criteria.purpose_key.is_empty() {
            validate_key("criteria.purpose_key", &criteria.purpose_key)?;
        }
        for (i, held) in criteria.held_subject_refs.iter().enumerate() {
            held.parse::<SubjectRef>().map_err(|_| {
                ServiceError::invalid(
                    format!("criteria.held_subject_refs[{i}]"),
                    "must be 64 hex chars",
                )
            })?;
        }
        let limit = match i64::from(criteria.batch_limit) {
            0 => DEFAULT_BATCH,
            n if n < 0 => {
                return Err(ServiceError::invalid(
                    "criteria.batch_limit",
                    "must not be negative",
                ));
            }
            n => n.min(MAX_BATCH),
        };
        let sweep = Sweep {
            tenant: caller.tenant.as_uuid(),
            cutoff,
            purpose_key: Some(criteria.purpose_key.as_str()).filter(|k| !k.is_empty()),
            held: &criteria.held_subject_refs,
            limit,
            anonymize,
            dry_run: criteria.dry_run,
        };
        let mut tx = veil_core::db::begin(&self.pool).await?;
        let mut outcome = PurgeOutcome {
            dry_run: criteria.dry_run,
            ..Default::default()
        };
        for (name, table) in purge::kinds() {
            let swept = purge::sweep(&mut tx, table, &sweep).await?;
            outcome.counts.insert(name.to_string(), swept.affected);
            outcome.held_skipped += swept.held;
            outcome.more_remaining |= swept.more;
        }
        let receipts = purge::orphan_receipts(&mut tx, &sweep).await?;
        outcome.counts.insert("receipts".to_string(), receipts);
        tx.commit().await?;
        tracing::info!(
            sweep_id = %criteria.sweep_id,
            dry_run = criteria.dry_run,
            more = outcome.more_remaining,
            "consent purge done"
        );
        Ok(PurgeResponse {
            outcome: Some(outcome),
        })
    }
}
