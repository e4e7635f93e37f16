//! Sweeps and their steps in the retention schema: what makes a sweep resumable.
//!
//! A step's batches are recorded as they finish; its `done` flag is set in the same
//! transaction as its `retention_purge_completed` event, so a resumed sweep neither
//! redoes a finished step nor announces it twice.

use std::collections::HashMap;

use sqlx::types::Json;
use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::PurgeOutcome;
use veil_proto::retention::v1::SweepResult;

use super::plan::Step;

/// A step as stored, with the progress of its batches.
#[derive(Debug, Clone, FromRow)]
pub struct StepRow {
    pub ordinal: i32,
    pub policy_id: Uuid,
    pub service: i32,
    pub category: i32,
    pub purpose_key: String,
    pub action: i32,
    pub cutoff: OffsetDateTime,
    pub counts: Json<HashMap<String, i64>>,
    pub held_skipped: i64,
    pub batches: i32,
    pub done: bool,
    pub error: String,
}

impl StepRow {
    /// Adds one batch's outcome: counts add up; held items are recounted by every call,
    /// so the largest count is the number skipped.
    pub fn absorb(&mut self, outcome: &PurgeOutcome) {
        for (kind, count) in &outcome.counts {
            *self.counts.0.entry(kind.clone()).or_insert(0) += count;
        }
        self.held_skipped = self.held_skipped.max(outcome.held_skipped);
        self.batches += 1;
    }

    /// The outcome so far.
    pub fn outcome(&self, more_remaining: bool) -> PurgeOutcome {
        PurgeOutcome {
            counts: self.counts.0.clone(),
            held_skipped: self.held_skipped,
            more_remaining,
            dry_run: false,
        }
    }

    /// The step as a RunSweep result.
    pub fn result(&self) -> SweepResult {
        SweepResult {
            service: self.service,
            category: self.category,
            purpose_key: self.purpose_key.clone(),
            action: self.action,
            cutoff: Some(timestamp(self.cutoff)),
            outcome: Some(self.outcome(!self.done)),
            error: self.error.clone(),
        }
    }
}

/// Records a new sweep with its planned steps.
pub async fn create(
    conn: &mut PgConnection,
    sweep_id: Uuid,
    tenant: TenantId,
    trigger: &str,
    steps: &[Step],
) -> Result<OffsetDateTime, ServiceError> {
    let started_at = sqlx::query_scalar(
        "INSERT INTO sweeps (sweep_id, tenant_id, trigger) VALUES ($1, $2, $3)
         RETURNING started_at",
    )
    .bind(sweep_id)
    .bind(tenant.as_uuid())
    .bind(trigger)
    .fetch_one(&mut *conn)
    .await?;
    let ordinals: Vec<i32> = steps.iter().map(|s| s.ordinal).collect();
    let policies: Vec<Uuid> = steps.iter().map(|s| s.policy_id).collect();
    let services: Vec<i32> = steps.iter().map(|s| s.service as i32).collect();
    let categories: Vec<i32> = steps.iter().map(|s| s.category as i32).collect();
    let purposes: Vec<String> = steps.iter().map(|s| s.purpose_key.clone()).collect();
    let actions: Vec<i32> = steps.iter().map(|s| s.action as i32).collect();
    let cutoffs: Vec<OffsetDateTime> = steps.iter().map(|s| s.cutoff).collect();
    sqlx::query(
        "INSERT INTO sweep_steps (sweep_id, ordinal, policy_id, service, category, purpose_key,
                                  action, cutoff)
         SELECT $1, * FROM UNNEST($2::int[], $3::uuid[], $4::int[], $5::int[], $6::text[],
                                  $7::int[], $8::timestamptz[])",
    )
    .bind(sweep_id)
    .bind(&ordinals)
    .bind(&policies)
    .bind(&services)
    .bind(&categories)
    .bind(&purposes)
    .bind(&actions)
    .bind(&cutoffs)
    .execute(&mut *conn)
    .await?;
    Ok(started_at)
}

/// The steps of a sweep, in order.
pub async fn steps(conn: &mut PgConnection, sweep_id: Uuid) -> Result<Vec<StepRow>, ServiceError> {
    let rows = sqlx::query_as(
        "SELECT ordinal, policy_id, service, category, purpose_key, action, cutoff, counts,
                held_skipped, batches, done, error
         FROM sweep_steps WHERE sweep_id = $1 ORDER BY ordinal",
    )
    .bind(sweep_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Writes a step's progress (after a batch, or when it ends).
pub async fn save_step(
    conn: &mut PgConnection,
    sweep_id: Uuid,
    step: &StepRow,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE sweep_steps SET counts = $3, held_skipped = $4, batches = $5, done = $6,
                                error = $7
         WHERE sweep_id = $1 AND ordinal = $2",
    )
    .bind(sweep_id)
    .bind(step.ordinal)
    .bind(&step.counts)
    .bind(step.held_skipped)
    .bind(step.batches)
    .bind(step.done)
    .bind(&step.error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Closes a sweep; returns when it finished.
pub async fn finish(
    conn: &mut PgConnection,
    sweep_id: Uuid,
    blocked_by_hold: bool,
) -> Result<OffsetDateTime, ServiceError> {
    let finished_at = sqlx::query_scalar(
        "UPDATE sweeps SET finished_at = now(), blocked_by_hold = $2
         WHERE sweep_id = $1 RETURNING finished_at",
    )
    .bind(sweep_id)
    .bind(blocked_by_hold)
    .fetch_one(&mut *conn)
    .await?;
    Ok(finished_at)
}

/// A sweep's start, if it is still unfinished.
pub async fn unfinished_start(
    conn: &mut PgConnection,
    sweep_id: Uuid,
) -> Result<Option<OffsetDateTime>, ServiceError> {
    let started_at = sqlx::query_scalar(
        "SELECT started_at FROM sweeps WHERE sweep_id = $1 AND finished_at IS NULL",
    )
    .bind(sweep_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(started_at)
}

/// Sweeps left unfinished (a crash, a shutdown, a database outage), oldest first.
pub async fn unfinished(conn: &mut PgConnection) -> Result<Vec<(Uuid, Uuid)>, ServiceError> {
    let rows = sqlx::query_as(
        "SELECT sweep_id, tenant_id FROM sweeps WHERE finished_at IS NULL ORDER BY started_at",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}
