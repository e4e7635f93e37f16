//! The outbox writer's group commit against the real Postgres: concurrent events all
//! land, each with its own id, and a bad event fails only its own call.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use uuid::Uuid;
use veil_core::events::{OutboxEvent, OutboxWriter, RelayHandle, enqueue, ensure_tables};
use veil_testkit::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_events_all_land_and_a_bad_one_fails_alone() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool("svc").await.unwrap();
    ensure_tables(&pool).await.unwrap();
    // An event already in the outbox: writing its id again violates the unique key.
    let taken = OutboxEvent::new("veil.events.test.taken", vec![1]);
    enqueue(&pool, &taken).await.unwrap();
    let writer = OutboxWriter::spawn(pool.clone(), RelayHandle::default());

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let writer = writer.clone();
        let mut event = OutboxEvent::new("veil.events.test.written", i.to_be_bytes().to_vec());
        if i == 150 {
            event.event_id = taken.event_id;
        }
        if i % 2 == 0 {
            event = event.with_traceparent(format!("00-{:032x}-{:016x}-01", i + 1, i + 1));
        }
        calls.spawn(async move { (event.event_id, writer.write(event).await) });
    }
    let mut written = HashSet::new();
    let mut failed = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined.unwrap() {
            (id, Ok(())) => assert!(written.insert(id)),
            (id, Err(_)) => failed.push(id),
        }
    }
    assert_eq!(failed, [taken.event_id]);
    assert_eq!(written.len(), 199);

    let stored: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT event_id, traceparent FROM outbox WHERE subject = 'veil.events.test.written'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 199);
    assert!(stored.iter().all(|(id, _)| written.contains(id)));
    // Even events carry a trace context; the failed one (150) was one of them.
    assert_eq!(stored.iter().filter(|(_, t)| t.is_some()).count(), 99);
    // Rows written by one statement share its transaction id: the events were batched
    // (those of the batch with the bad event were then written one by one).
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM outbox WHERE subject = 'veil.events.test.written'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        transactions < 150,
        "{transactions} transactions for 199 events"
    );
}
