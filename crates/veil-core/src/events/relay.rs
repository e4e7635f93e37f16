//! The outbox relay: publishes committed outbox rows to JetStream and marks them sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::backoff::{Backoff, error_chain};
use super::error::EventsError;
use super::{MSG_ID_HEADER, TRACEPARENT_HEADER};

/// Relay tuning; durations in milliseconds or seconds as the names say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Rows fetched and published per round.
    pub batch_size: i64,
    /// Fallback poll, so rows committed by other replicas are published too.
    pub poll_interval_ms: u64,
    /// How long the relay waits after a commit woke it before it claims rows, so that
    /// one round carries what commits meanwhile instead of a round per commit (0: no
    /// wait). Events reach JetStream up to this much later.
    pub linger_ms: u64,
    /// First retry delay after a failure.
    pub backoff_min_ms: u64,
    /// Cap of the doubling retry delay.
    pub backoff_max_ms: u64,
    /// How long one publish may wait for its JetStream ack.
    pub publish_timeout_ms: u64,
    /// Sent rows are deleted after this long.
    pub sent_retention_secs: u64,
    /// How often sent rows are cleaned up.
    pub cleanup_interval_secs: u64,
    /// Deadline of the last best-effort drain at shutdown.
    pub shutdown_drain_ms: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval_ms: 250,
            linger_ms: 20,
            backoff_min_ms: 50,
            backoff_max_ms: 2_000,
            publish_timeout_ms: 5_000,
            sent_retention_secs: 24 * 3600,
            cleanup_interval_secs: 60,
            shutdown_drain_ms: 2_000,
        }
    }
}

impl RelaySettings {
    /// Checks the values; the error starts with the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.batch_size) {
            return Err("batch_size: must be between 1 and 10000".to_owned());
        }
        let positive = [
            ("poll_interval_ms", self.poll_interval_ms),
            ("backoff_min_ms", self.backoff_min_ms),
            ("publish_timeout_ms", self.publish_timeout_ms),
            ("cleanup_interval_secs", self.cleanup_interval_secs),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("{key}: must be at least 1"));
        }
        if let Some(key) = crate::config::too_long(&[
            (
                "poll_interval_ms",
                Duration::from_millis(self.poll_interval_ms),
            ),
            ("linger_ms", Duration::from_millis(self.linger_ms)),
            ("backoff_max_ms", Duration::from_millis(self.backoff_max_ms)),
            (
                "publish_timeout_ms",
                Duration::from_millis(self.publish_timeout_ms),
            ),
            (
                "sent_retention_secs",
                Duration::from_secs(self.sent_retention_secs),
            ),
            (
                "cleanup_interval_secs",
                Duration::from_secs(self.cleanup_interval_secs),
            ),
            (
                "shutdown_drain_ms",
                Duration::from_millis(self.shutdown_drain_ms),
            ),
        ]) {
            return Err(format!("{key}: {}", crate::config::TOO_LONG));
        }
        if self.backoff_max_ms < self.backoff_min_ms {
            return Err("backoff_max_ms: must not be below backoff_min_ms".to_owned());
        }
        Ok(())
    }
}

/// The relay's claim of unsent rows, oldest first.
pub const CLAIM_SQL: &str = "SELECT id, event_id, subject, payload, traceparent FROM outbox \
     WHERE sent_at IS NULL AND rejected_at IS NULL \
     ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";

/// Run before [`CLAIM_SQL`] in its transaction. Marking a row sent leaves its entry in
/// the unsent index until vacuum, and the statistics (nearly every row sent) make a
/// bitmap scan look cheapest: that scan visits every such entry and its heap page, so
/// each round cost more the longer since the last vacuum (7-17 ms per round at 25,000
/// sent rows under load). An index scan in id order stops after the batch and marks the
/// dead entries it passes, so the next round skips them.
pub const CLAIM_PLAN: &str = "SET LOCAL enable_bitmapscan = off; \
     SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off";

/// What service code keeps: wakes the relay after a commit and reads the backlog.
#[derive(Debug, Clone, Default)]
pub struct RelayHandle {
    notify: Arc<Notify>,
    backlog: Arc<AtomicI64>,
}

impl RelayHandle {
    /// Call after committing a transaction that enqueued events, to publish them now
    /// instead of at the next poll.
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// Unsent outbox rows at the relay's last count (for metrics).
    pub fn backlog(&self) -> i64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// The shared counter behind [`RelayHandle::backlog`], for a metrics gauge.
    pub fn backlog_gauge(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.backlog)
    }
}

/// Publishes outbox rows in id order, with `Nats-Msg-Id` = event id, and marks them sent.
///
/// Several replicas may run against one table: rows are claimed with
/// `FOR UPDATE SKIP LOCKED`. A row is only marked sent after JetStream acknowledged it;
/// when NATS is down the relay records the failure and retries forever.
#[derive(Debug)]
pub struct OutboxRelay {
    pool: PgPool,
    js: jetstream::Context,
    settings: RelaySettings,
    handle: RelayHandle,
}

/// The result of one publish round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayRound {
    /// Rows claimed.
    pub fetched: usize,
    /// Rows acknowledged by JetStream and marked sent.
    pub published: usize,
    /// Rows that failed and stay unsent.
    pub failed: usize,
    /// Rows the broker refuses for good (too large), set aside with `rejected_at`.
    pub rejected: usize,
}

/// What [`OutboxRelay::publish_rows`] made of a batch: acknowledged ids, failed ids with
/// their error text (never payload), and ids the broker refuses for good.
struct Published {
    sent: Vec<i64>,
    failed: Vec<(i64, String)>,
    rejected: Vec<i64>,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    event_id: Uuid,
    subject: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
}

impl OutboxRelay {
    /// A relay over the outbox reachable through `pool` (its current schema).
    pub fn new(pool: PgPool, js: jetstream::Context, settings: RelaySettings) -> Self {
        Self {
            pool,
            js,
            settings,
            handle: RelayHandle::default(),
        }
    }

    /// A handle for waking the relay and reading its backlog.
    pub fn handle(&self) -> RelayHandle {
        self.handle.clone()
    }

    /// Publishes until shutdown, then drains once more within `shutdown_drain_ms`.
    pub async fn run(self, shutdown: CancellationToken) {
        let settings = &self.settings;
        let mut backoff = Backoff::new(
            Duration::from_millis(settings.backoff_min_ms),
            Duration::from_millis(settings.backoff_max_ms),
        );
        let poll = Duration::from_millis(settings.poll_interval_ms);
        let linger = Duration::from_millis(settings.linger_ms);
        let cleanup_every = Duration::from_secs(settings.cleanup_interval_secs);
        let mut next_cleanup = Instant::now();
        let mut next_backlog_refresh = Instant::now();
        let mut failing = false;
        while !shutdown.is_cancelled() {
            match self.publish_round().await {
                Ok(round) if round.failed == 0 => {
                    if failing {
                        tracing::info!("outbox relay publishing again");
                        failing = false;
                    }
                    backoff.reset();
                    // A count per round was a statement per round under load (one
                    // round every few turns); the gauge is current to within a poll.
                    if Instant::now() >= next_backlog_refresh {
                        self.refresh_backlog().await;
                        next_backlog_refresh = Instant::now() + poll;
                    }
                    if round.fetched as i64 >= settings.batch_size {
                        continue;
                    }
                    if Instant::now() >= next_cleanup {
                        self.cleanup().await;
                        next_cleanup = Instant::now() + cleanup_every;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = self.handle.notify.notified() => {
                            // Under load a commit wakes the relay every few messages;
                            // each round costs five statements besides its rows.
                            tokio::select! {
                                _ = shutdown.cancelled() => {}
                                _ = tokio::time::sleep(linger) => {}
                            }
                        }
                        _ = tokio::time::sleep(poll) => {}
                    }
                }
                outcome => {
                    match &outcome {
                        Ok(round) => tracing::warn!(
                            failed = round.failed,
                            published = round.published,
                            "outbox relay could not publish, will retry"
                        ),
                        Err(error) => tracing::warn!(
                            error = %error_chain(error, 500),
                            "outbox relay round failed, will retry"
                        ),
                    }
                    failing = true;
                    self.refresh_backlog().await;
                    backoff.wait(&shutdown).await;
                }
            }
        }
        self.final_drain().await;
    }

    /// Claims one batch of unsent rows, publishes them and records the outcome.
    pub async fn publish_round(&self) -> Result<RelayRound, EventsError> {
        let mut tx = crate::db::begin(&self.pool).await?;
        sqlx::raw_sql(CLAIM_PLAN).execute(&mut *tx).await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(CLAIM_SQL)
            .bind(self.settings.batch_size)
            .fetch_all(&mut *tx)
            .await?;
        let mut round = RelayRound {
            fetched: rows.len(),
            ..RelayRound::default()
        };
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(round);
        }
        let Published {
            sent,
            failed,
            rejected,
        } = self.publish_rows(rows).await;
        if !sent.is_empty() {
            sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
                .bind(&sent)
                .execute(&mut *tx)
                .await?;
        }
        if !failed.is_empty() {
            let (ids, errors): (Vec<i64>, Vec<String>) = failed.into_iter().unzip();
            round.failed = ids.len();
            sqlx::query(
                "UPDATE outbox AS o SET attempts = o.attempts + 1, last_error = f.error \
                 FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE o.id = f.id",
            )
            .bind(&ids)
            .bind(&errors)
            .execute(&mut *tx)
            .await?;
        }
        if !rejected.is_empty() {
            // Kept, not deleted: an operator can raise the broker's limit and clear
            // `rejected_at` to have them published (operations.md, "Events").
            sqlx::query(
                "UPDATE outbox SET rejected_at = now(), attempts = attempts + 1, \
                 last_error = 'larger than the broker accepts (max_payload)' \
                 WHERE id = ANY($1)",
            )
            .bind(&rejected)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        round.published = sent.len();
        round.rejected = rejected.len();
        if !rejected.is_empty() {
            tracing::error!(
                rejected = rejected.len(),
                "outbox events larger than the broker accepts were set aside (rejected_at)"
            );
        }
        Ok(round)
    }

    /// Sends every row, then awaits the acks, so one round costs about one round trip.
    async fn publish_rows(&self, rows: Vec<OutboxRow>) -> Published {
        let timeout = Duration::from_millis(self.settings.publish_timeout_ms);
        let mut pending = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        let mut rejected = Vec::new();
        for row in rows {
            let mut headers = HeaderMap::new();
            headers.insert(MSG_ID_HEADER, row.event_id.to_string().as_str());
            if let Some(traceparent) = &row.traceparent {
                headers.insert(TRACEPARENT_HEADER, traceparent.as_str());
            }
            let send = self
                .js
                .publish_with_headers(row.subject, headers, row.payload.into());
            match tokio::time::timeout(timeout, send).await {
                Ok(Ok(ack)) => pending.push((row.id, ack)),
                // Refused before sending, and every retry would be: the rows behind it
                // must not wait for it.
                Ok(Err(error)) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    rejected.push(row.id);
                }
                Ok(Err(error)) => {
                    failed.push((row.id, error_chain(&error, 500)));
                    // The connection is most likely down: leave the rest for the retry.
                    break;
                }
                Err(_) => {
                    failed.push((row.id, "publish timed out".to_owned()));
                    break;
                }
            }
        }
        let mut sent = Vec::with_capacity(pending.len());
        for (id, ack) in pending {
            match tokio::time::timeout(timeout, ack.into_future()).await {
                // A duplicate ack means the stream has it already (an earlier attempt).
                Ok(Ok(_ack)) => sent.push(id),
                Ok(Err(error)) => failed.push((id, error_chain(&error, 500))),
                Err(_) => failed.push((id, "publish ack timed out".to_owned())),
            }
        }
        Published {
            sent,
            failed,
            rejected,
        }
    }

    /// Counts unsent rows into the backlog gauge; a failed count keeps the last value.
    async fn refresh_backlog(&self) {
        let count: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND rejected_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await;
        if let Ok(count) = count {
            self.handle.backlog.store(count, Ordering::Relaxed);
        }
    }

    async fn cleanup(&self) {
        // Seconds as float8, the type make_interval takes; precision is irrelevant here.
        let retention = self.settings.sent_retention_secs as f64;
        let deleted = sqlx::query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE sent_at < now() - make_interval(secs => $1) LIMIT 10000)",
        )
        .bind(retention)
        .execute(&self.pool)
        .await;
        match deleted {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::debug!(rows = done.rows_affected(), "outbox cleanup");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %error_chain(&error, 500), "outbox cleanup failed")
            }
        }
    }

    async fn final_drain(&self) {
        let deadline = Instant::now() + Duration::from_millis(self.settings.shutdown_drain_ms);
        loop {
            match tokio::time::timeout_at(deadline, self.publish_round()).await {
                Ok(Ok(round)) if round.failed == 0 && round.fetched > 0 => continue,
                Ok(Ok(_)) => break,
                Ok(Err(error)) => {
                    tracing::warn!(error = %error_chain(&error, 500), "outbox drain at shutdown failed");
                    break;
                }
                Err(_) => {
                    tracing::warn!("outbox drain at shutdown ran out of time");
                    break;
                }
            }
        }
        self.refresh_backlog().await;
    }
}
