//! Pools of `veil_core::db`: a connection idle past `PING_AFTER_IDLE` is pinged before it
//! is handed out, so one whose backend went away meanwhile is replaced without an error.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use veil_core::config::DatabaseSettings;
use veil_core::db::{PING_AFTER_IDLE, connect};
use veil_core::types::Personal;
use veil_testkit::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_whose_backend_died_is_replaced_without_an_error() {
    let db = TestDb::create().await.unwrap();
    let settings = DatabaseSettings {
        url: Personal::new(db.url()),
        schema: "pool_test".into(),
        max_connections: 1,
        ..Default::default()
    };
    let pool = connect(&settings).await.unwrap();
    let backend = "SELECT pg_backend_pid()";
    let pid: i32 = sqlx::query_scalar(backend).fetch_one(&pool).await.unwrap();

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

    let replaced: i32 = sqlx::query_scalar(backend).fetch_one(&pool).await.unwrap();
    assert_ne!(replaced, pid, "the pool handed out the dead connection");
}
