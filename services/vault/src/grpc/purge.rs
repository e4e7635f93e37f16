//! `Purge`: the retention sweep's deletion of expired records.

use std::collections::HashMap;

use tonic::Request;
use veil_core::convert::from_timestamp;
use veil_core::types::{Role, SubjectRef};
use veil_proto::common::v1::{DataCategory, PurgeOutcome, RetentionAction};
use veil_proto::vault::v1::{PurgeRequest, PurgeResponse};

use super::validate as check;
use crate::error::{VaultResult, invalid};
use crate::state::Vault;
use crate::store::records as sql;

/// Default and largest number of records one call handles.
const DEFAULT_BATCH: i32 = 1_000;
const MAX_BATCH: i32 = 10_000;

/// Deletes (or counts, in a dry run) records past their retention: those whose own
/// `expires_at` has passed, and those without one created before the cutoff. Records
/// of held subjects are skipped and counted. Deleting the ciphertext row purges the
/// value; the subject's data key stays for the subject's other records.
pub async fn purge(vault: &Vault, request: Request<PurgeRequest>) -> VaultResult<PurgeResponse> {
    let (_, tenant) = check::tenant_caller(&request, &[Role::Service])?;
    let criteria = request
        .into_inner()
        .criteria
        .ok_or_else(|| invalid("criteria", "is required"))?;
    if criteria.category != DataCategory::VaultRecord as i32 {
        return Err(invalid(
            "criteria.category",
            "the vault holds DATA_CATEGORY_VAULT_RECORD only",
        ));
    }
    let action = RetentionAction::try_from(criteria.action).unwrap_or(RetentionAction::Unspecified);
    if !matches!(
        action,
        RetentionAction::Delete | RetentionAction::CryptoShred
    ) {
        return Err(invalid(
            "criteria.action",
            "vault records support RETENTION_ACTION_DELETE or RETENTION_ACTION_CRYPTO_SHRED",
        ));
    }
    let cutoff = criteria
        .cutoff
        .as_ref()
        .and_then(from_timestamp)
        .ok_or_else(|| invalid("criteria.cutoff", "is required"))?;
    if !criteria.purpose_key.is_empty() {
        check::key_name("criteria.purpose_key", &criteria.purpose_key)?;
    }
    for (i, held) in criteria.held_subject_refs.iter().enumerate() {
        held.parse::<SubjectRef>().map_err(|_| {
            invalid(
                format!("criteria.held_subject_refs[{i}]"),
                "must be 64 lowercase hex characters",
            )
        })?;
    }
    let limit = match criteria.batch_limit {
        n if n <= 0 => DEFAULT_BATCH,
        n => n.min(MAX_BATCH),
    };
    let scope = sql::PurgeScope {
        cutoff,
        purpose_key: &criteria.purpose_key,
        held: &criteria.held_subject_refs,
        limit: i64::from(limit),
    };
    let held_skipped = sql::count_held(&vault.pool, tenant.as_uuid(), &scope).await?;
    let (purged, more_remaining) = if criteria.dry_run {
        let expired = sql::count_expired(&vault.pool, tenant.as_uuid(), &scope).await?;
        (expired.min(scope.limit), expired > scope.limit)
    } else {
        let mut tx = veil_core::db::begin(&vault.pool).await?;
        let purged = sql::purge_expired(&mut tx, tenant.as_uuid(), &scope).await?;
        tx.commit().await?;
        let more = purged >= scope.limit
            && sql::count_expired(&vault.pool, tenant.as_uuid(), &scope).await? > 0;
        (purged, more)
    };
    Ok(PurgeResponse {
        outcome: Some(PurgeOutcome {
            counts: HashMap::from([("records".to_string(), purged)]),
            held_skipped,
            more_remaining,
            dry_run: criteria.dry_run,
        }),
    })
}
