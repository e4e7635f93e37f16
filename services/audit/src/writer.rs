//! The one writer: moves queued events into the log in batches.
//!
//! Each batch is one transaction under a Postgres advisory lock (so only one replica
//! appends at a time): it reads the queued rows in arrival order, assigns the next
//! dense indexes, computes leaf hashes and the perfect-subtree nodes the appends
//! complete with the shared [`Appender`], writes entries and nodes with one multi-row
//! insert each, advances the tree size, runs the anomaly rules and removes the rows
//! from the queue. The appender's frontier stays in memory between batches and is
//! reloaded (O(log n) reads) whenever the stored size says another writer moved on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::merkle::{Appender, Hash, NewNode, leaf_hash};

use crate::error::AuditError;
use crate::node_cache::NodeCache;
use crate::rules::{RuleSettings, Rules};
use crate::settings::AuditSettings;
use crate::store::tree;

/// Advisory lock key of the writer ("veilaudt" in ASCII).
pub const WRITER_LOCK: i64 = 0x7665_696c_6175_6474;

/// What one [`Writer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Appended this many entries (pre-existing rows adopted into the tree count too).
    Appended(usize),
    /// Nothing was queued.
    Idle,
    /// Another replica holds the writer lock.
    Busy,
}

/// A queued event, as the writer reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct QueuedRow {
    pub seq: i64,
    pub event_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub subject_ref: Option<String>,
    pub actor_id: Option<String>,
    pub event_type: String,
    pub occurred_at: time::OffsetDateTime,
    pub envelope: Vec<u8>,
}

/// The batched appender of the log.
pub struct Writer {
    pool: PgPool,
    batch: usize,
    rules: Rules,
    relay: Option<RelayHandle>,
    cache: Option<Arc<NodeCache>>,
    appender: Option<Appender>,
    /// Highest queue position appended by this writer. Reading after it skips the dead
    /// rows of earlier batches that the queue index still holds until vacuum; a full
    /// read now and then picks up rows that committed late with a lower position.
    cursor: i64,
    last_full_read: std::time::Instant,
}

/// How often the writer reads the queue from its start.
const FULL_READ_EVERY: Duration = Duration::from_secs(5);

impl Writer {
    /// A writer over `pool` with the batch size and rules of `settings`.
    pub fn new(pool: PgPool, events: EventsConfig, settings: &AuditSettings) -> Self {
        Self {
            pool,
            batch: settings.append_batch,
            rules: Rules::new(RuleSettings::from(settings), events),
            relay: None,
            cache: None,
            appender: None,
            cursor: 0,
            last_full_read: std::time::Instant::now(),
        }
    }

    /// Wakes `relay` after a batch that wrote events (incidents) to the outbox.
    pub fn with_relay(mut self, relay: RelayHandle) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Feeds the nodes of every committed batch to the proofs' `cache`.
    pub fn with_cache(mut self, cache: Arc<NodeCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Appends at most one batch.
    pub async fn step(&mut self) -> Result<Step, AuditError> {
        let mut tx = veil_core::db::begin(&self.pool).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(WRITER_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(Step::Busy);
        }
        let size = tree::size(&mut *tx).await?;
        // Taken out so that a failed batch leaves no half-advanced frontier behind.
        let mut appender = match self.appender.take() {
            Some(appender) if appender.size() == size => appender,
            _ => {
                let mut appender = tree::appender(&mut *tx, size).await?;
                let (adopted, nodes) = adopt(&mut tx, &mut appender, self.batch).await?;
                if adopted > 0 {
                    tx.commit().await?;
                    if let Some(cache) = &self.cache {
                        cache.extend(size, appender.size(), &nodes);
                    }
                    self.appender = Some(appender);
                    return Ok(Step::Appended(adopted));
                }
                appender
            }
        };
        let queued = self.read_queue(&mut tx).await?;
        if queued.is_empty() {
            self.appender = Some(appender);
            return Ok(Step::Idle);
        }
        let seqs: Vec<i64> = queued.iter().map(|row| row.seq).collect();
        let ids: Vec<Uuid> = queued.iter().map(|row| row.event_id).collect();
        // A redelivery after `processed_events` was pruned must still add nothing.
        let appended_before: HashSet<Uuid> =
            sqlx::query_scalar("SELECT event_id FROM entries WHERE event_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let fresh: Vec<QueuedRow> = queued
            .into_iter()
            .filter(|row| !appended_before.contains(&row.event_id))
            .collect();
        let first = appender.size();
        let mut leaves = Vec::with_capacity(fresh.len());
        let mut nodes = Vec::with_capacity(fresh.len() * 2);
        for row in &fresh {
            let leaf = leaf_hash(&row.envelope);
            nodes.extend(appender.append(leaf)?);
            leaves.push(leaf);
        }
        insert_entries(&mut tx, first, &fresh, &leaves).await?;
        tree::insert_nodes(&mut tx, &nodes).await?;
        tree::set_size(&mut tx, appender.size()).await?;
        let opened = self.rules.evaluate(&mut tx, &fresh).await?;
        tx.commit().await?;
        if let Some(cache) = &self.cache {
            cache.extend(first, appender.size(), &nodes);
        }
        self.appender = Some(appender);
        self.cursor = seqs
            .iter()
            .copied()
            .max()
            .unwrap_or(self.cursor)
            .max(self.cursor);
        if opened > 0
            && let Some(relay) = &self.relay
        {
            relay.notify();
        }
        Ok(Step::Appended(fresh.len().max(1)))
    }

    /// Takes the next batch out of the queue (deleted in this transaction, so a batch
    /// that does not commit stays queued), in queue order.
    async fn read_queue(&mut self, conn: &mut PgConnection) -> sqlx::Result<Vec<QueuedRow>> {
        let full = self.cursor == 0 || self.last_full_read.elapsed() >= FULL_READ_EVERY;
        let mut rows = self
            .read_after(conn, if full { 0 } else { self.cursor })
            .await?;
        if rows.is_empty() && !full {
            rows = self.read_after(conn, 0).await?;
        }
        if full || rows.is_empty() {
            self.last_full_read = std::time::Instant::now();
        }
        Ok(rows)
    }

    async fn read_after(
        &self,
        conn: &mut PgConnection,
        after: i64,
    ) -> sqlx::Result<Vec<QueuedRow>> {
        // One statement reads and removes the batch; RETURNING has no order of its own.
        // `= ANY (ARRAY(...))` keeps the delete on the primary key: as `IN (subquery)`,
        // a batch of a few hundred was planned as a hash join over a sequential scan of
        // the whole queue table, dead rows included (6.5 ms instead of well under 1).
        let mut rows: Vec<QueuedRow> = sqlx::query_as(
            "DELETE FROM pending
             WHERE seq = ANY (ARRAY(SELECT seq FROM pending WHERE seq > $1
                                    ORDER BY seq LIMIT $2))
             RETURNING seq, event_id, tenant_id, subject_ref, actor_id, event_type,
                       occurred_at, envelope",
        )
        .bind(after)
        .bind(i64::try_from(self.batch).unwrap_or(i64::MAX))
        .fetch_all(conn)
        .await?;
        rows.sort_unstable_by_key(|row| row.seq);
        Ok(rows)
    }

    /// Removes rule bookkeeping older than every window.
    pub async fn prune(&self) -> Result<u64, AuditError> {
        self.rules.prune(&self.pool).await
    }

    /// Appends until `shutdown`: at once while batches come full, after `idle` when a
    /// batch was partial or the queue empty, and after a growing delay on errors or
    /// while another replica holds the lock.
    pub async fn run(mut self, idle: Duration, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut next_prune = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            let wait = match self.step().await {
                // A full batch leaves more queued. After a partial one, waiting lets the
                // next batch gather: appending whatever arrived during the last step
                // cost a dozen statements for a few dozen events under steady load.
                Ok(Step::Appended(appended)) => {
                    failures = 0;
                    if appended >= self.batch {
                        Duration::ZERO
                    } else {
                        idle
                    }
                }
                Ok(Step::Idle) => {
                    failures = 0;
                    idle
                }
                Ok(Step::Busy) => Duration::from_secs(1),
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        error = %veil_core::error::ErrorChain(&error),
                        failures,
                        "audit append failed, will retry"
                    );
                    Duration::from_millis(100u64 << failures.min(6))
                }
            };
            if tokio::time::Instant::now() >= next_prune {
                if let Err(error) = self.prune().await {
                    tracing::warn!(error = %veil_core::error::ErrorChain(&error), "rule pruning failed");
                }
                next_prune = tokio::time::Instant::now() + Duration::from_secs(300);
            }
            if !wait.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Brings entries written before the tree existed (the walking skeleton appended
/// without nodes) into the tree, a batch at a time.
async fn adopt(
    conn: &mut PgConnection,
    appender: &mut Appender,
    batch: usize,
) -> Result<(usize, Vec<NewNode>), AuditError> {
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT idx, leaf_hash FROM entries WHERE idx >= $1 ORDER BY idx LIMIT $2")
            .bind(tree::to_i64(appender.size()))
            .bind(i64::try_from(batch).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await?;
    let mut nodes: Vec<NewNode> = Vec::new();
    for (idx, leaf) in &rows {
        if u64::try_from(*idx).ok() != Some(appender.size()) {
            return Err(AuditError::Inconsistent(format!(
                "entry {idx} found where index {} was expected",
                appender.size()
            )));
        }
        let leaf: Hash = leaf.as_slice().try_into().map_err(|_| {
            AuditError::Inconsistent(format!("leaf hash of entry {idx} is not 32 bytes"))
        })?;
        nodes.extend(appender.append(leaf)?);
    }
    if !rows.is_empty() {
        tree::insert_nodes(conn, &nodes).await?;
        tree::set_size(conn, appender.size()).await?;
        tracing::info!(
            adopted = rows.len(),
            size = appender.size(),
            "entries adopted into the tree"
        );
    }
    Ok((rows.len(), nodes))
}

async fn insert_entries(
    conn: &mut PgConnection,
    first: u64,
    rows: &[QueuedRow],
    leaves: &[Hash],
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let start = tree::to_i64(first);
    let indexes: Vec<i64> = (0..rows.len()).map(|i| start + i as i64).collect();
    let mut event_ids = Vec::with_capacity(rows.len());
    let mut tenants = Vec::with_capacity(rows.len());
    let mut subjects = Vec::with_capacity(rows.len());
    let mut actors = Vec::with_capacity(rows.len());
    let mut types = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    let mut envelopes = Vec::with_capacity(rows.len());
    for row in rows {
        event_ids.push(row.event_id);
        tenants.push(row.tenant_id);
        subjects.push(row.subject_ref.as_deref());
        actors.push(row.actor_id.as_deref());
        types.push(row.event_type.as_str());
        times.push(row.occurred_at);
        envelopes.push(row.envelope.as_slice());
    }
    let hashes: Vec<&[u8]> = leaves.iter().map(|leaf| leaf.as_slice()).collect();
    sqlx::query(
        "INSERT INTO entries (idx, event_id, tenant_id, subject_ref, actor_id, event_type,
                              occurred_at, envelope, leaf_hash)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                              $6::text[], $7::timestamptz[], $8::bytea[], $9::bytea[])",
    )
    .bind(&indexes)
    .bind(&event_ids)
    .bind(&tenants)
    .bind(&subjects)
    .bind(&actors)
    .bind(&types)
    .bind(&times)
    .bind(&envelopes)
    .bind(&hashes)
    .execute(conn)
    .await?;
    Ok(())
}
