//! Audit log benchmarks on the local Postgres (a fresh database, dropped afterwards):
//!
//! 1. sustained appends/s of the writer (the batched path every event takes after the
//!    ingest consumer queued it): `APPEND_EVENTS` queued events drained by
//!    `Writer::step` until the queue is empty;
//! 2. the log grown to `LOG_SIZE` entries through the same writer, one signed head,
//!    then inclusion-proof latency through the store (`veil_audit::inclusion_proof`,
//!    one query per proof) for `PROOFS` random leaves: median, p99, max;
//! 3. `verify_database` (what `veil audit verify` runs) over the whole log.
//!
//! Run: `cargo bench -p veil-audit --bench audit` (env `AUDIT_BENCH_LOG_SIZE` and
//! `AUDIT_BENCH_APPENDS` override the sizes).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use prost::Message;
use rand::Rng;
use uuid::Uuid;
use veil_audit::AuditSettings;
use veil_audit::heads::Heads;
use veil_audit::tree_head::HeadSigner;
use veil_audit::verify::{Verifier, db::verify_database};
use veil_audit::writer::{Step, Writer};
use veil_core::merkle::verify_inclusion;
use veil_proto::common::v1::{Actor, ActorKind};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{Event, GatewayMessageProcessed};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic envelope: a processed message with entity counts (about 300 bytes).
fn event(i: u64, tenant: Uuid) -> (Uuid, Vec<u8>) {
    let id = Uuid::now_v7();
    let mut counts = std::collections::HashMap::new();
    counts.insert("EMAIL_ADDRESS".to_string(), 1);
    counts.insert("PHONE_NUMBER".to_string(), (i % 3) as i64);
    let event = Event {
        event_id: id.to_string(),
        occurred_at: Some(veil_core::convert::now()),
        tenant_id: tenant.to_string(),
        subject_ref: format!("{:064x}", i % 5_000),
        actor: Some(Actor {
            kind: ActorKind::ApiKey as i32,
            principal_id: "key_0123456789".into(),
            roles: vec![1],
            tenant_id: tenant.to_string(),
        }),
        source: 1,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        request_id: Uuid::now_v7().to_string(),
        payload: Some(Payload::GatewayMessageProcessed(GatewayMessageProcessed {
            conversation_id: format!("conv-{}", i / 10),
            message_id: Uuid::now_v7().to_string(),
            message_role: "user".into(),
            entity_counts: counts,
            purposes: vec!["support".into()],
            stored: true,
            policy_version: 3,
            text_bytes: 180,
            ..GatewayMessageProcessed::default()
        })),
    };
    (id, event.encode_to_vec())
}

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

async fn drain(writer: &mut Writer) -> u64 {
    let mut appended = 0u64;
    loop {
        match writer.step().await.unwrap() {
            Step::Appended(n) => appended += n as u64,
            Step::Idle => return appended,
            Step::Busy => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let appends = env_number("AUDIT_BENCH_APPENDS", 200_000);
    let log_size = env_number("AUDIT_BENCH_LOG_SIZE", 1_000_000).max(appends);
    let proofs = env_number("AUDIT_BENCH_PROOFS", 10_000);
    let db = veil_testkit::TestDb::create().await?;
    let database = veil_core::config::DatabaseSettings {
        url: veil_core::types::Personal::new(db.url()),
        schema: "audit".into(),
        max_connections: 4,
        ..veil_core::config::DatabaseSettings::default()
    };
    let pool = veil_core::db::connect_and_migrate(&database, &veil_audit::MIGRATOR).await?;
    veil_core::events::ensure_tables(&pool).await?;
    let settings = AuditSettings {
        // Rules stay out of the measured path: no event here reaches a threshold, but
        // the entity counts are recorded for the volume rule like in production.
        pii_volume_threshold: u64::MAX / 2,
        append_batch: env_number("AUDIT_BENCH_BATCH", 5_000) as usize,
        ..AuditSettings::default()
    };
    let events = veil_core::events::EventsConfig::default();
    let mut writer = Writer::new(pool.clone(), events.clone(), &settings);
    let tenant = Uuid::now_v7();

    println!("== audit appends (writer batch {})", settings.append_batch);
    queue(&pool, appends, tenant).await;
    let started = Instant::now();
    let appended = drain(&mut writer).await;
    let elapsed = started.elapsed();
    println!(
        "appended {appended} queued events in {:.2} s: {:.0} appends/s",
        elapsed.as_secs_f64(),
        appended as f64 / elapsed.as_secs_f64()
    );

    let mut size = appended;
    let grow = Instant::now();
    while size < log_size {
        let chunk = (log_size - size).min(100_000);
        queue(&pool, chunk, tenant).await;
        size += drain(&mut writer).await;
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

    println!("== inclusion proofs on a {tree_size}-entry log ({proofs} random leaves)");
    let mut rng = rand::thread_rng();
    let mut latencies = Vec::with_capacity(proofs as usize);
    for _ in 0..proofs {
        let index = rng.gen_range(0..tree_size);
        let started = Instant::now();
        let proof = veil_audit::inclusion_proof(&pool, index, tree_size).await?;
        latencies.push(started.elapsed());
        verify_inclusion(
            &proof.leaf_hash,
            index,
            tree_size,
            &proof.audit_path,
            &head.root_hash,
        )?;
    }
    latencies.sort();
    println!(
        "inclusion proof: median {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

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
    if std::env::var_os("VEIL_TEST_KEEP_DB").is_some() {
        println!("kept database {} (schema audit)", db.name());
    }
    Ok(())
}
