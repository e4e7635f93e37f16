//! End-to-end ingest: events published into JetStream, consumed by the audit ingest
//! consumer, appended by the writer and in the tree (`tree_state.size`). Real NATS and
//! Postgres, a stream and databases of the bench's own.
//!
//! Baseline in the same run: the one-message-per-transaction consumer path (what the
//! ingest used before the batched consumer) on the first `AUDIT_BENCH_BASELINE` events.
//!
//! Run: `cargo bench -p veil-audit --bench ingest` (`AUDIT_BENCH_INGEST` events,
//! default 100,000).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{audit_db, env_number, event, settings};
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_audit::ingest::Ingest;
use veil_audit::node_cache::NodeCache;
use veil_audit::writer::Writer;
use veil_core::events::{
    BatchEventHandler, BatchSettings, Consumer, ConsumerSettings, EventHandler, HandlerError,
    MSG_ID_HEADER, ReceivedEvent,
};
use veil_testkit::TestNats;

/// The ingest applied the old way: one event per transaction.
struct OneAtATime(Ingest);

#[async_trait::async_trait]
impl EventHandler for OneAtATime {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        self.0.handle_batch(tx, std::slice::from_ref(event)).await
    }
}

async fn count(pool: &PgPool, sql: &'static str) -> u64 {
    let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.unwrap();
    u64::try_from(n).unwrap()
}

/// Polls `sql` until it reaches `target` (or `limit` passes); returns the time taken
/// and the last count.
async fn wait_for(
    pool: &PgPool,
    sql: &'static str,
    target: u64,
    limit: Duration,
) -> (Duration, u64) {
    let started = Instant::now();
    loop {
        let n = count(pool, sql).await;
        if n >= target || started.elapsed() >= limit {
            return (started.elapsed(), n);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let total = env_number("AUDIT_BENCH_INGEST", 100_000);
    let baseline = env_number("AUDIT_BENCH_BASELINE", 2_000).min(total);
    let nats = TestNats::new().await?;
    nats.ensure_stream().await?;
    let (js, config) = (nats.jetstream().clone(), nats.config().clone());
    let subject = config.subject("gateway", "message_processed")?;
    let tenant = Uuid::now_v7();

    println!("== publishing {total} events into JetStream");
    let started = Instant::now();
    let mut done = 0;
    while done < total {
        let chunk = (total - done).min(1_000);
        let mut acks = Vec::with_capacity(chunk as usize);
        for i in done..done + chunk {
            let (id, envelope) = event(i, tenant);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(MSG_ID_HEADER, id.to_string().as_str());
            acks.push(
                js.publish_with_headers(subject.clone(), headers, envelope.into())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
        done += chunk;
    }
    println!(
        "published in {:.2} s ({:.0} events/s)",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
    let consumer_settings = ConsumerSettings {
        fetch_expires_ms: 500,
        ..ConsumerSettings::default()
    };

    println!("== baseline: one event per transaction, first {baseline} events");
    let (_db1, pool1) = audit_db().await;
    let single = Consumer::with_settings(
        js.clone(),
        &config.stream,
        "bench_single",
        &config.all(),
        consumer_settings.clone(),
    )
    .await?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(single.run(
        pool1.clone(),
        OneAtATime(Ingest::new(config.subject_prefix.clone())),
        stop.clone(),
    ));
    let (took, queued) = wait_for(
        &pool1,
        "SELECT count(*) FROM pending",
        baseline,
        Duration::from_secs(120),
    )
    .await;
    stop.cancel();
    task.await?;
    println!(
        "one per transaction: {queued} events queued in {:.2} s: {:.0} events/s",
        took.as_secs_f64(),
        queued as f64 / took.as_secs_f64()
    );

    let batch = BatchSettings::default();
    println!(
        "== batched consumer ({} per transaction, {} ms wait) and the writer, {total} events",
        batch.max_messages, batch.max_wait_ms
    );
    let (_db2, pool2) = audit_db().await;
    let settings = settings();
    let cache = Arc::new(NodeCache::new(settings.proof_cache_mb << 20));
    let writer = Writer::new(pool2.clone(), config.clone(), &settings).with_cache(cache.clone());
    let batched = Consumer::with_settings(
        js.clone(),
        &config.stream,
        "bench_batched",
        &config.all(),
        consumer_settings,
    )
    .await?;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let writer_task = tokio::spawn(writer.run(Duration::from_millis(10), stop.clone()));
    let consumer_task = tokio::spawn(batched.run_batch(
        pool2.clone(),
        Ingest::new(config.subject_prefix.clone()),
        batch,
        stop.clone(),
    ));
    let (ingested, received) = wait_for(
        &pool2,
        // Queued or already appended: the writer moves rows from one to the other in
        // one transaction, so the sum counts each ingested event once.
        "SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM entries)",
        total,
        Duration::from_secs(600),
    )
    .await;
    let (_, size) = wait_for(
        &pool2,
        "SELECT size FROM tree_state",
        total,
        Duration::from_secs(600),
    )
    .await;
    let appended = started.elapsed();
    stop.cancel();
    consumer_task.await?;
    writer_task.await?;
    println!(
        "consumed {received} events in {:.2} s: {:.0} events/s",
        ingested.as_secs_f64(),
        received as f64 / ingested.as_secs_f64()
    );
    println!(
        "published -> in the tree: {size} entries in {:.2} s: {:.0} events/s end to end \
         (proof cache at {} entries)",
        appended.as_secs_f64(),
        size as f64 / appended.as_secs_f64(),
        cache.size()
    );
    Ok(())
}
