//! Audit log benchmarks on the local Postgres (a fresh database, dropped afterwards):
//!
//! 0. baseline: single-row inserts into the queue, one transaction each (what one
//!    commit per event costs on this machine);
//! 1. sustained appends/s of the writer (the batched path every event takes after the
//!    ingest consumer queued it): `AUDIT_BENCH_APPENDS` queued events drained by
//!    `Writer::step` until the queue is empty, synchronous commits;
//! 2. the log grown to `AUDIT_BENCH_LOG_SIZE` entries through the same writer, one
//!    signed head, then inclusion-proof latency (`veil_audit::inclusion_proof`, the
//!    path of `GetInclusionProof`) for `AUDIT_BENCH_PROOFS` random leaves, first with
//!    an empty proof cache (one query per proof, the old path), then with the cache
//!    loaded from Postgres;
//! 3. `verify_database` (what `veil audit verify` runs) over the whole log;
//! 4. phase 1 again on top of the grown log, so a rate that falls with the log's size
//!    shows.
//!
//! Run: `cargo bench -p veil-audit --bench audit`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use common::{audit_db, env_number, event, settings, summary};
use rand::Rng;
use uuid::Uuid;
use veil_audit::heads::Heads;
use veil_audit::node_cache::NodeCache;
use veil_audit::tree_head::HeadSigner;
use veil_audit::verify::{Verifier, db::verify_database};
use veil_audit::writer::{Step, Writer};
use veil_core::merkle::verify_inclusion;

/// Queues `count` events the way the ingest consumer does (multi-row inserts).
async fn queue(pool: &sqlx::PgPool, count: u64, tenant: Uuid) {
    let mut done = 0;
    while done < count {
        let chunk = (count - done).min(10_000);
        let (ids, envelopes): (Vec<Uuid>, Vec<Vec<u8>>) =
            (done..done + chunk).map(|i| event(i, tenant)).unzip();
        let subjects: Vec<String> = (done..done + chunk)
            .map(|i| format!("{:064x}", i % 5_000))
            .collect();
        sqlx::query(
            "INSERT INTO pending (event_id, tenant_id, subject_ref, actor_id, event_type,
                                  occurred_at, envelope)
             SELECT id, $2, s, 'key_0123456789', 'gateway.message_processed', now(), e
             FROM UNNEST($1::uuid[], $3::text[], $4::bytea[]) AS u(id, s, e)",
        )
        .bind(&ids)
        .bind(tenant)
        .bind(&subjects)
        .bind(&envelopes)
        .execute(pool)
        .await
        .unwrap();
        done += chunk;
    }
}

/// Single-row inserts, each its own transaction; returns rows/s. The rows are removed.
async fn single_row_inserts(pool: &sqlx::PgPool, count: u64, tenant: Uuid) -> f64 {
    let started = Instant::now();
    for i in 0..count {
        let (id, envelope) = event(i, tenant);
        sqlx::query(
            "INSERT INTO pending (event_id, tenant_id, subject_ref, actor_id, event_type,
                                  occurred_at, envelope)
             VALUES ($1, $2, $3, 'key_0123456789', 'gateway.message_processed', now(), $4)",
        )
        .bind(id)
        .bind(tenant)
        .bind(format!("{:064x}", i % 5_000))
        .bind(envelope)
        .execute(pool)
        .await
        .unwrap();
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DELETE FROM pending")
        .execute(pool)
        .await
        .unwrap();
    rate
}

/// Drains the queue; returns the entries appended and the time of every batch.
async fn drain(writer: &mut Writer) -> (u64, Vec<Duration>) {
    let mut appended = 0u64;
    let mut batches = Vec::new();
    loop {
        let started = Instant::now();
        match writer.step().await.unwrap() {
            Step::Appended(n) => {
                batches.push(started.elapsed());
                appended += n as u64;
            }
            Step::Idle => return (appended, batches),
            Step::Busy => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn report_appends(appended: u64, elapsed: Duration, batches: &mut [Duration]) {
    println!(
        "appended {appended} queued events in {:.2} s: {:.0} appends/s; per batch {}",
        elapsed.as_secs_f64(),
        appended as f64 / elapsed.as_secs_f64(),
        summary(batches)
    );
}

async fn proofs(
    pool: &sqlx::PgPool,
    cache: &NodeCache,
    count: u64,
    tree_size: u64,
    root: &[u8],
) -> Vec<Duration> {
    let mut rng = rand::thread_rng();
    let mut latencies = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let index = rng.gen_range(0..tree_size);
        let started = Instant::now();
        let proof = veil_audit::inclusion_proof(pool, cache, index, tree_size)
            .await
            .unwrap();
        latencies.push(started.elapsed());
        verify_inclusion(&proof.leaf_hash, index, tree_size, &proof.audit_path, root).unwrap();
    }
    latencies
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let appends = env_number("AUDIT_BENCH_APPENDS", 200_000);
    let log_size = env_number("AUDIT_BENCH_LOG_SIZE", 1_000_000).max(appends);
    let proof_count = env_number("AUDIT_BENCH_PROOFS", 10_000);
    let (db, pool) = audit_db().await;
    let settings = settings();
    let events = veil_core::events::EventsConfig::default();
    let mut writer = Writer::new(pool.clone(), events.clone(), &settings);
    let tenant = Uuid::now_v7();

    println!("== baseline: single-row inserts, one transaction each");
    let rate = single_row_inserts(&pool, 2_000, tenant).await;
    println!("single-row inserts: {rate:.0} rows/s (2000 rows)");

    println!(
        "== audit appends (writer batch {}, synchronous commit)",
        settings.append_batch
    );
    queue(&pool, appends, tenant).await;
    let started = Instant::now();
    let (appended, mut batches) = drain(&mut writer).await;
    let elapsed = started.elapsed();
    report_appends(appended, elapsed, &mut batches);

    let mut size = appended;
    let grow = Instant::now();
    while size < log_size {
        let chunk = (log_size - size).min(100_000);
        queue(&pool, chunk, tenant).await;
        size += drain(&mut writer).await.0;
    }
    println!(
        "log grown to {size} entries (queueing included) in {:.1} s",
        grow.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE entries").execute(&pool).await?;
    sqlx::query("VACUUM ANALYZE nodes").execute(&pool).await?;

    let signer = HeadSigner::new(veil_core::crypto::signing::generate_signing_key(), "bench");
    let heads = Heads::new(pool.clone(), signer, events);
    let head = heads.sign_current(true).await?.unwrap();
    let tree_size = u64::try_from(head.tree_size)?;

    println!("== inclusion proofs on a {tree_size}-entry log ({proof_count} random leaves)");
    let uncached = NodeCache::new(0);
    let mut latencies = proofs(&pool, &uncached, proof_count, tree_size, &head.root_hash).await;
    println!(
        "inclusion proof, no cache (one query each): {}",
        summary(&mut latencies)
    );
    let cache = NodeCache::new(settings.proof_cache_mb << 20);
    let started = Instant::now();
    cache.catch_up(&pool).await?;
    println!(
        "proof cache loaded from Postgres in {:.2} s: {} entries, {} MB, lowest level {}",
        started.elapsed().as_secs_f64(),
        cache.size(),
        cache.bytes() >> 20,
        cache.min_level()
    );
    let mut latencies = proofs(&pool, &cache, proof_count, tree_size, &head.root_hash).await;
    println!("inclusion proof, cached: {}", summary(&mut latencies));

    println!("== verify over {tree_size} entries");
    let started = Instant::now();
    let report = verify_database(&pool, Verifier::new(Vec::new()), &mut |_| {}).await?;
    println!(
        "verify: {} entries, {} nodes, intact = {} in {:.1} s",
        report.entries,
        report.nodes_checked,
        report.intact(),
        started.elapsed().as_secs_f64()
    );
    println!("== audit appends on top of the {size}-entry log (same batch)");
    queue(&pool, appends, tenant).await;
    let started = Instant::now();
    let (appended, mut batches) = drain(&mut writer).await;
    report_appends(appended, started.elapsed(), &mut batches);

    if std::env::var_os("VEIL_TEST_KEEP_DB").is_some() {
        println!("kept database {} (schema audit)", db.name());
    }
    Ok(())
}
