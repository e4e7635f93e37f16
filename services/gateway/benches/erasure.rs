//! Erasure of a subject with 10,000 transcript turns (and 10,000 pseudonym map rows) in
//! the gateway, against a real Postgres and NATS with consent, vault and the gateway
//! running (a fresh `TestEnv`):
//!
//! 1. `EraseSubject` over gRPC as the retention service: latency per call;
//! 2. the erasure saga: `retention.erasure_requested` written to the outbox until
//!    `gateway.erasure_completed` is in the outbox (relay, NATS, consumer, erase, event);
//! 3. baseline in the same run: the same rows deleted by two plain `DELETE`s in one
//!    transaction straight from the bench process (what Postgres alone needs).
//!
//! Every sample seeds a fresh subject first. Run: `cargo bench -p veil-gateway --bench
//! erasure` (without `--bench`, e.g. under `cargo test --benches`, it runs a short smoke
//! version).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/retention_support/mod.rs"]
mod retention_support;

use std::time::{Duration, Instant};

use retention_support::{Stack, by_id};
use veil_core::emit::{EventContext, emit};
use veil_proto::common::v1::VeilService;
use veil_proto::events::v1::RetentionErasureRequested;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::EraseSubjectRequest;

const TURNS: i64 = 10_000;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<28} n={:<3} median {:>8.1} ms  p90 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        samples.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
}

async fn erase_rpc(stack: &Stack, subject: &str) -> Duration {
    let started = Instant::now();
    let outcome = stack
        .retention()
        .erase_subject(EraseSubjectRequest {
            subject: by_id(subject),
            request_id: "bench".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(outcome.counts["turns"], TURNS);
    elapsed
}

async fn erase_saga(stack: &Stack, subject: &str, request_id: &str) -> Duration {
    let started = Instant::now();
    emit(
        &stack.pool,
        &stack.env.events(),
        &EventContext {
            tenant: Some(stack.tenant),
            subject_ref: Some(stack.subject_ref(subject)),
            actor: None,
            request_id: request_id.into(),
        },
        Payload::RetentionErasureRequested(RetentionErasureRequested {
            request_id: request_id.into(),
            expected_services: vec![VeilService::Gateway as i32],
        }),
    )
    .await
    .unwrap();
    let deadline = started + Duration::from_secs(30);
    loop {
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE subject LIKE '%.gateway.erasure_completed'
                            AND position($1::bytea IN payload) > 0)",
        )
        .bind(request_id.as_bytes())
        .fetch_one(&stack.pool)
        .await
        .unwrap();
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "saga did not complete");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(stack.rows("transcript_messages", subject).await.unwrap(), 0);
    elapsed
}

async fn erase_sql(stack: &Stack, subject: &str) -> Duration {
    let subject_ref = stack.subject_ref(subject);
    let started = Instant::now();
    let mut tx = stack.pool.begin().await.unwrap();
    for table in ["transcript_messages", "conversation_pseudonyms"] {
        let sql = format!("DELETE FROM {table} WHERE tenant_id = $1 AND subject_ref = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stack.tenant.as_uuid())
            .bind(subject_ref.as_str())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|arg| arg == "--bench");
    let samples = if full { 15 } else { 1 };
    let stack = Stack::start().await?;
    // Other subjects' rows, so the deletes run on a table that is not only the subject.
    stack
        .seed("conv-bystander", "bystander", 20_000, 1, &[])
        .await?;
    let (mut rpc, mut saga, mut sql) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..samples {
        // Interleaved so load on the shared machine hits all three alike.
        let subject = format!("rpc-{i}");
        stack
            .seed(&format!("conv-{subject}"), &subject, TURNS, 1, &[])
            .await?;
        rpc.push(erase_rpc(&stack, &subject).await);
        let subject = format!("saga-{i}");
        stack
            .seed(&format!("conv-{subject}"), &subject, TURNS, 1, &[])
            .await?;
        saga.push(erase_saga(&stack, &subject, &format!("bench-saga-{i}")).await);
        let subject = format!("sql-{i}");
        stack
            .seed(&format!("conv-{subject}"), &subject, TURNS, 1, &[])
            .await?;
        sql.push(erase_sql(&stack, &subject).await);
    }
    println!("erasure of a subject with {TURNS} turns and {TURNS} pseudonym map rows");
    summary("EraseSubject (gRPC)", rpc);
    summary("erasure saga (events)", saga);
    summary("baseline: 2 DELETEs (SQL)", sql);
    stack.stop().await
}
