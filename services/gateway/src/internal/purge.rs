//! `Purge`: a retention sweep of DATA_CATEGORY_TRANSCRIPT in the gateway schema.
//!
//! What expires: transcript turns created before the cutoff (oldest first, at most
//! `batch_limit` per call), and pseudonym map rows created before the cutoff in
//! conversations that have no turn left once those turns are handled (maps of turns
//! never stored, too). Turns and maps of held subjects are skipped and counted.
//!
//! Actions: DELETE removes both; ANONYMIZE gives each turn an unlinkable random
//! subject_ref and removes the maps (a map links placeholders to the subject's vault
//! tokens); RESTRICT marks both restricted. A row already handled by the same action is
//! not pending any more, so a resumed sweep never acts or counts twice.
//!
//! Purposes: a turn records the purposes it was processed for (`purposes`); a
//! purpose-specific sweep handles the turns that recorded that purpose and leaves the
//! maps to the sweep without a purpose (a conversation's map serves all its turns).
//!
//! The dry run runs the very query the real run acts on, without the writes, so its
//! counts are exactly what the real run would handle.

use std::collections::HashMap;

use sqlx::PgPool;
use veil_core::convert::from_timestamp;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::{DataCategory, PurgeOutcome, RetentionAction};
use veil_proto::gateway::v1::PurgeRequest;

/// Items of each kind one call handles unless the sweep asks for fewer, and the most.
const DEFAULT_BATCH: i64 = 1_000;
const MAX_BATCH: i64 = 10_000;

/// Held subject refs accepted in one call.
const MAX_HELD: usize = 100_000;

/// What happens to expired rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Delete,
    Anonymize,
    Restrict,
}

impl Action {
    /// A turn this action still has to handle (alias `t`).
    fn turn_pending(self) -> &'static str {
        match self {
            Action::Delete => "TRUE",
            Action::Anonymize => "t.anonymized_at IS NULL",
            Action::Restrict => "t.restricted_at IS NULL",
        }
    }

    /// A map row this action still has to handle (alias `p`).
    fn map_pending(self) -> &'static str {
        match self {
            Action::Delete | Action::Anonymize => "TRUE",
            Action::Restrict => "p.restricted_at IS NULL",
        }
    }

    /// The writes on the chosen turns (`doomed`) and maps (`maps`), each returning a row
    /// per item handled.
    fn writes(self) -> &'static str {
        match self {
            Action::Delete => {
                "gone AS (DELETE FROM transcript_messages t USING doomed d
                          WHERE t.tenant_id = $1 AND t.message_id = d.message_id
                          RETURNING 1),
                 maps_gone AS (DELETE FROM conversation_pseudonyms p USING maps m
                               WHERE p.tenant_id = $1 AND p.conversation_id = m.conversation_id
                                 AND p.token = m.token
                               RETURNING 1)"
            }
            // 64 hex characters from two random UUIDs (pg_strong_random), drawn per row:
            // nothing links an anonymized turn to the subject or to its other turns.
            Action::Anonymize => {
                "gone AS (UPDATE transcript_messages t
                          SET subject_ref = replace(gen_random_uuid()::text
                                                    || gen_random_uuid()::text, '-', ''),
                              anonymized_at = now()
                          FROM doomed d
                          WHERE t.tenant_id = $1 AND t.message_id = d.message_id
                          RETURNING 1),
                 maps_gone AS (DELETE FROM conversation_pseudonyms p USING maps m
                               WHERE p.tenant_id = $1 AND p.conversation_id = m.conversation_id
                                 AND p.token = m.token
                               RETURNING 1)"
            }
            Action::Restrict => {
                "gone AS (UPDATE transcript_messages t SET restricted_at = now()
                          FROM doomed d
                          WHERE t.tenant_id = $1 AND t.message_id = d.message_id
                          RETURNING 1),
                 maps_gone AS (UPDATE conversation_pseudonyms p SET restricted_at = now()
                               FROM maps m
                               WHERE p.tenant_id = $1 AND p.conversation_id = m.conversation_id
                                 AND p.token = m.token
                               RETURNING 1)"
            }
        }
    }
}

/// Validated criteria.
struct Sweep {
    tenant: uuid::Uuid,
    cutoff: time::OffsetDateTime,
    purpose_key: String,
    held: Vec<String>,
    limit: i64,
    action: Action,
    dry_run: bool,
}

fn validate(tenant: TenantId, request: PurgeRequest) -> Result<(Sweep, String), ServiceError> {
    let criteria = request
        .criteria
        .ok_or_else(|| ServiceError::invalid("criteria", "is required"))?;
    if criteria.category != DataCategory::Transcript as i32 {
        return Err(ServiceError::invalid(
            "criteria.category",
            "the gateway holds DATA_CATEGORY_TRANSCRIPT only",
        ));
    }
    let action = match RetentionAction::try_from(criteria.action) {
        Ok(RetentionAction::Delete) => Action::Delete,
        Ok(RetentionAction::Anonymize) => Action::Anonymize,
        Ok(RetentionAction::Restrict) => Action::Restrict,
        _ => {
            return Err(ServiceError::invalid(
                "criteria.action",
                "transcripts support RETENTION_ACTION_DELETE, _ANONYMIZE or _RESTRICT",
            ));
        }
    };
    let cutoff = criteria
        .cutoff
        .as_ref()
        .and_then(from_timestamp)
        .ok_or_else(|| ServiceError::invalid("criteria.cutoff", "is required"))?;
    let purpose_ok = criteria.purpose_key.len() <= 64
        && criteria
            .purpose_key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !purpose_ok {
        return Err(ServiceError::invalid(
            "criteria.purpose_key",
            "must be empty or up to 64 characters of [a-z0-9_]",
        ));
    }
    if criteria.held_subject_refs.len() > MAX_HELD {
        return Err(ServiceError::invalid(
            "criteria.held_subject_refs",
            format!("at most {MAX_HELD} items"),
        ));
    }
    for (i, held) in criteria.held_subject_refs.iter().enumerate() {
        held.parse::<SubjectRef>().map_err(|_| {
            ServiceError::invalid(
                format!("criteria.held_subject_refs[{i}]"),
                "must be 64 lowercase hex characters",
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
    super::validate_id("criteria.sweep_id", &criteria.sweep_id, false)?;
    Ok((
        Sweep {
            tenant: tenant.as_uuid(),
            cutoff,
            purpose_key: criteria.purpose_key,
            held: criteria.held_subject_refs,
            limit,
            action,
            dry_run: criteria.dry_run,
        },
        criteria.sweep_id,
    ))
}

/// The turns (`doomed`, first `$5` by age) and maps (`maps`, at most `$5 + extra`) a run
/// with limit `$5` handles. Parameters: tenant, cutoff, purpose ('' for any), held refs,
/// limit.
fn candidates(action: Action, extra_maps: i64) -> String {
    let turn_pending = action.turn_pending();
    let map_pending = action.map_pending();
    format!(
        "WITH doomed AS (
             SELECT t.message_id FROM transcript_messages t
             WHERE t.tenant_id = $1 AND t.created_at < $2
               AND ($3 = '' OR $3 = ANY (t.purposes))
               AND NOT (t.subject_ref = ANY ($4))
               AND {turn_pending}
             ORDER BY t.created_at, t.message_id
             LIMIT $5),
         maps AS (
             SELECT p.conversation_id, p.token FROM conversation_pseudonyms p
             WHERE $3 = '' AND p.tenant_id = $1 AND p.created_at < $2
               AND NOT (p.subject_ref = ANY ($4))
               AND {map_pending}
               AND NOT EXISTS (
                   SELECT 1 FROM transcript_messages t
                   WHERE t.tenant_id = $1 AND t.conversation_id = p.conversation_id
                     AND {turn_pending}
                     AND t.message_id NOT IN (SELECT message_id FROM doomed))
             ORDER BY p.created_at, p.conversation_id, p.token
             LIMIT $5 + {extra_maps})"
    )
}

// The SQL below is assembled only from the fixed fragments of `Action` and
// `candidates`; every value is a bind parameter, hence `AssertSqlSafe`.

/// Counts of a dry run with `limit`: turns, maps (up to `limit + 1`) and whether more
/// turns than `limit` are pending.
async fn scan(pool: &PgPool, sweep: &Sweep, limit: i64) -> sqlx::Result<(i64, i64, bool)> {
    let turn_pending = sweep.action.turn_pending();
    let sql = format!(
        "{candidates}
         SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM maps),
                EXISTS (SELECT 1 FROM transcript_messages t
                        WHERE t.tenant_id = $1 AND t.created_at < $2
                          AND ($3 = '' OR $3 = ANY (t.purposes))
                          AND NOT (t.subject_ref = ANY ($4))
                          AND {turn_pending}
                        ORDER BY t.created_at, t.message_id
                        OFFSET $5 LIMIT 1)",
        candidates = candidates(sweep.action, 1),
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(sweep.tenant)
        .bind(sweep.cutoff)
        .bind(&sweep.purpose_key)
        .bind(&sweep.held)
        .bind(limit)
        .fetch_one(pool)
        .await
}

/// Acts on what a dry run with the same limit would count; returns (turns, maps).
async fn act(pool: &PgPool, sweep: &Sweep) -> sqlx::Result<(i64, i64)> {
    let sql = format!(
        "{candidates},
         {writes}
         SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM maps_gone)",
        candidates = candidates(sweep.action, 0),
        writes = sweep.action.writes(),
    );
    let mut tx = veil_core::db::begin(pool).await?;
    let counts = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(sweep.tenant)
        .bind(sweep.cutoff)
        .bind(&sweep.purpose_key)
        .bind(&sweep.held)
        .bind(sweep.limit)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(counts)
}

/// Expired items of held subjects (turns and maps), which every call skips.
async fn held(pool: &PgPool, sweep: &Sweep) -> sqlx::Result<i64> {
    if sweep.held.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "SELECT (SELECT count(*) FROM transcript_messages t
                 WHERE t.tenant_id = $1 AND t.created_at < $2
                   AND ($3 = '' OR $3 = ANY (t.purposes))
                   AND t.subject_ref = ANY ($4) AND {turn_pending})
              + (SELECT count(*) FROM conversation_pseudonyms p
                 WHERE $3 = '' AND p.tenant_id = $1 AND p.created_at < $2
                   AND p.subject_ref = ANY ($4) AND {map_pending})",
        turn_pending = sweep.action.turn_pending(),
        map_pending = sweep.action.map_pending(),
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(sweep.tenant)
        .bind(sweep.cutoff)
        .bind(&sweep.purpose_key)
        .bind(&sweep.held)
        .fetch_one(pool)
        .await
}

/// Runs (or counts) one batch of a sweep.
pub async fn purge(
    pool: &PgPool,
    tenant: TenantId,
    request: PurgeRequest,
) -> Result<PurgeOutcome, ServiceError> {
    let (sweep, sweep_id) = validate(tenant, request)?;
    let held_skipped = held(pool, &sweep).await?;
    let (turns, maps, more_remaining) = if sweep.dry_run {
        let (turns, maps, more_turns) = scan(pool, &sweep, sweep.limit).await?;
        (
            turns,
            maps.min(sweep.limit),
            more_turns || maps > sweep.limit,
        )
    } else {
        let (turns, maps) = act(pool, &sweep).await?;
        // With limit 0 nothing is set aside: anything still pending is work for the next
        // call.
        let (_, maps_left, turns_left) = scan(pool, &sweep, 0).await?;
        (turns, maps, turns_left || maps_left > 0)
    };
    tracing::info!(
        sweep_id = %sweep_id,
        dry_run = sweep.dry_run,
        action = ?sweep.action,
        turns,
        maps,
        held_skipped,
        more_remaining,
        "gateway purge done"
    );
    Ok(PurgeOutcome {
        counts: HashMap::from([
            ("turns".to_string(), turns),
            ("pseudonym_maps".to_string(), maps),
        ]),
        held_skipped,
        more_remaining,
        dry_run: sweep.dry_run,
    })
}
