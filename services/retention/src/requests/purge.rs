//! Retention of the request records themselves (DATA_CATEGORY_DSR_RECORD), called by
//! the sweeper.
//!
//! CCPA §7101 asks for request records to be kept 24 months, so `service.dsr_record_days`
//! is a floor: nothing younger is touched whatever the policy says. Past the floor a
//! closed request is minimized (the subject_ref becomes a random value that links to
//! nobody; the closing reason, extension reasons, tokens and idempotency key are
//! dropped) or, under a DELETE policy, deleted. Open requests are never purged.

use std::collections::HashMap;

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use veil_core::convert::from_timestamp;
use veil_core::crypto::KeyBytes;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::{PurgeCriteria, PurgeOutcome, RetentionAction};

use crate::state::Retention;

/// Rows handled per call when the criteria set no batch limit.
const DEFAULT_BATCH: i64 = 5000;

/// The instant before which requests may be purged: the policy's cutoff, but never
/// later than the statutory floor.
pub fn effective_cutoff(
    policy_cutoff: Option<OffsetDateTime>,
    now: OffsetDateTime,
    floor_days: u32,
) -> OffsetDateTime {
    let floor = now - Duration::days(i64::from(floor_days));
    match policy_cutoff {
        Some(cutoff) if cutoff < floor => cutoff,
        _ => floor,
    }
}

/// Minimizes (or deletes, under a DELETE policy) closed request records received before
/// the effective cutoff; skips subjects in `criteria.held_subject_refs`.
pub async fn purge(
    conn: &mut PgConnection,
    state: &Retention,
    tenant: TenantId,
    criteria: &PurgeCriteria,
) -> Result<PurgeOutcome, ServiceError> {
    let cutoff = effective_cutoff(
        criteria.cutoff.as_ref().and_then(from_timestamp),
        OffsetDateTime::now_utc(),
        state.settings.dsr_record_days,
    );
    let limit = match criteria.batch_limit {
        n if n > 0 => i64::from(n),
        _ => DEFAULT_BATCH,
    };
    let held: Vec<String> = criteria.held_subject_refs.clone();
    let delete = criteria.action == RetentionAction::Delete as i32;
    // Minimized rows are done unless the policy deletes them.
    let candidates: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT request_id, subject_ref FROM requests \
         WHERE tenant_id = $1 AND received_at < $2 AND state IN (4, 5, 6, 9) \
           AND ($3 OR minimized_at IS NULL) \
         ORDER BY received_at, request_id LIMIT $4 FOR UPDATE SKIP LOCKED",
    )
    .bind(tenant.as_uuid())
    .bind(cutoff)
    .bind(delete)
    .bind(limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    let more_remaining = i64::try_from(candidates.len()).unwrap_or(i64::MAX) > limit;
    let mut held_skipped = 0_i64;
    let mut ids = Vec::new();
    for (id, subject) in candidates
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        if held.contains(&subject) {
            held_skipped += 1;
        } else {
            ids.push(id);
        }
    }
    let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let kind = if delete {
        "requests_deleted"
    } else {
        "requests_minimized"
    };
    if !criteria.dry_run && !ids.is_empty() {
        if delete {
            delete_rows(conn, tenant, &ids).await?;
        } else {
            minimize_rows(conn, tenant, &ids).await?;
        }
    }
    Ok(PurgeOutcome {
        counts: HashMap::from([(kind.to_string(), count)]),
        held_skipped,
        more_remaining,
        dry_run: criteria.dry_run,
    })
}

async fn delete_rows(
    conn: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM request_extensions WHERE tenant_id = $1 AND request_id = ANY($2)")
        .bind(tenant.as_uuid())
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM requests WHERE tenant_id = $1 AND request_id = ANY($2)")
        .bind(tenant.as_uuid())
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn minimize_rows(
    conn: &mut PgConnection,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<(), ServiceError> {
    // One fresh random ref per row: minimized rows must not link to each other either.
    let refs: Vec<String> = ids
        .iter()
        .map(|_| SubjectRef::from_digest(KeyBytes::generate().expose()).to_string())
        .collect();
    sqlx::query(
        "UPDATE requests r SET subject_ref = m.new_ref, closing_reason = '', \
            idempotency_key = NULL, code_hash = NULL, subject_token = NULL, \
            correction_fields = '{}', correction_tokens = '{}', \
            minimized_at = now(), updated_at = now() \
         FROM UNNEST($2::uuid[], $3::text[]) AS m(id, new_ref) \
         WHERE r.tenant_id = $1 AND r.request_id = m.id",
    )
    .bind(tenant.as_uuid())
    .bind(ids)
    .bind(&refs)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE request_extensions SET reason = '' WHERE tenant_id = $1 AND request_id = ANY($2)",
    )
    .bind(tenant.as_uuid())
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_floor_wins_over_a_shorter_policy() {
        let now = datetime!(2028-06-01 00:00 UTC);
        let floor = now - Duration::days(730);
        // A 30-day policy would cut at 2028-05-02; the floor keeps two years.
        assert_eq!(
            effective_cutoff(Some(now - Duration::days(30)), now, 730),
            floor
        );
        assert_eq!(effective_cutoff(None, now, 730), floor);
    }

    #[test]
    fn a_longer_policy_keeps_its_own_cutoff() {
        let now = datetime!(2028-06-01 00:00 UTC);
        let cutoff = now - Duration::days(1000);
        assert_eq!(effective_cutoff(Some(cutoff), now, 730), cutoff);
    }
}
