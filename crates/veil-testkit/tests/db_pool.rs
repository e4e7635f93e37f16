//! Pools of `veil_core::db`: a connection idle past `PING_AFTER_IDLE` is pinged before it
//! is handed out, so one whose backend went away meanwhile is replaced without an error;
//! busy connections that a server restart ended cost at most the first statement that
//! finds one, and nothing where the caller retries (`retry_if_lost`, `begin`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sqlx::PgPool;
use veil_core::config::DatabaseSettings;
use veil_core::db::{PING_AFTER_IDLE, begin, connect, is_lost, retry_if_lost};
use veil_core::error::ServiceError;
use veil_core::types::Personal;
use veil_testkit::TestDb;

const BACKEND: &str = "SELECT pg_backend_pid()";

/// A pool of `size` connections, all opened and used just now; their server processes.
async fn busy_pool(db: &TestDb, size: u32) -> (PgPool, Vec<i32>) {
    let settings = DatabaseSettings {
        url: Personal::new(db.url()),
        schema: "pool_test".into(),
        max_connections: size,
        ..Default::default()
    };
    let pool = connect(&settings).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..size {
        held.push(pool.acquire().await.unwrap());
    }
    let mut pids = Vec::new();
    for conn in &mut held {
        let pid: i32 = sqlx::query_scalar(BACKEND)
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        pids.push(pid);
    }
    drop(held);
    (pool, pids)
}

/// Every connection of a busy pool ended (a restart under load): the first statement
/// fails, as UNAVAILABLE since it did not run; the pool then checks its older
/// connections before use, so the next statements find live ones.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_lost_connection_the_pool_checks_the_others_before_use() {
    let db = TestDb::create().await.unwrap();
    let (pool, pids) = busy_pool(&db, 3).await;
    let ended_at = Instant::now();
    assert_eq!(db.terminate_connections().await.unwrap(), 3);
    if ended_at.elapsed() >= PING_AFTER_IDLE / 2 {
        // Idle that long, ended connections are pinged anyway: nothing to tell here.
        eprintln!("skipped: the machine was too slow to tell");
        return;
    }

    let first = sqlx::query_scalar::<_, i32>(BACKEND).fetch_one(&pool).await;
    let error = first.unwrap_err();
    assert!(is_lost(&error), "{error:?}");
    let status = tonic::Status::from(ServiceError::from(error));
    assert_eq!(status.code(), tonic::Code::Unavailable);
    for _ in 0..3 {
        let pid: i32 = sqlx::query_scalar(BACKEND).fetch_one(&pool).await.unwrap();
        assert!(
            !pids.contains(&pid),
            "the pool handed out an ended connection"
        );
    }
}

/// Statements run through `retry_if_lost` and transactions begun with `begin` find no
/// error at all when every connection of the pool was ended.
#[tokio::test(flavor = "multi_thread")]
async fn retried_statements_and_transactions_ride_through_ended_connections() {
    let db = TestDb::create().await.unwrap();
    let (pool, pids) = busy_pool(&db, 3).await;
    db.terminate_connections().await.unwrap();
    let pid: i32 = retry_if_lost(|| sqlx::query_scalar(BACKEND).fetch_one(&pool))
        .await
        .unwrap();
    assert!(!pids.contains(&pid));

    let (pool, pids) = busy_pool(&db, 3).await;
    db.terminate_connections().await.unwrap();
    let mut tx = begin(&pool).await.unwrap();
    let pid: i32 = sqlx::query_scalar(BACKEND)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!pids.contains(&pid));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_whose_backend_died_is_replaced_without_an_error() {
    let db = TestDb::create().await.unwrap();
    let (pool, pids) = busy_pool(&db, 1).await;
    let pid = pids[0];

    let admin = db.pool("admin").await.unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(killed);
    // The idle time is what is under test, not a readiness wait.
    let idle_since = Instant::now();
    tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(100)).await;
    assert!(idle_since.elapsed() > PING_AFTER_IDLE);

    let replaced: i32 = sqlx::query_scalar(BACKEND).fetch_one(&pool).await.unwrap();
    assert_ne!(replaced, pid, "the pool handed out the dead connection");
}
