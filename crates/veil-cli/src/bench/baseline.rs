//! The yardstick: raw single-row autocommit INSERTs into one table of the benchmark
//! database, from several connections at once. Every gateway message commits at least
//! one transaction, so this bounds what the pipeline could reach on the same server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::time::Instant;

/// Inserts per second and how many connections made them.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Committed inserts.
    pub inserts: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Inserts per second.
    pub per_second: f64,
    /// Concurrent connections.
    pub connections: usize,
}

/// Runs `connections` inserting loops for `duration`.
pub async fn run(
    db: &PgConnectOptions,
    connections: usize,
    duration: Duration,
    done: Arc<AtomicU64>,
) -> anyhow::Result<Baseline> {
    let mut setup = PgConnection::connect_with(db).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_insert (
             id bigserial PRIMARY KEY,
             conversation text NOT NULL,
             body text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut setup)
    .await?;
    setup.close().await?;
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(PgConnection::connect_with(db).await?);
    }
    let started = Instant::now();
    let until = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, mut conn) in conns.into_iter().enumerate() {
        let done = done.clone();
        tasks.spawn(async move {
            let conversation = format!("conversation-{n}");
            let body = "Hi, I'm <PERSON_1>, my email is <EMAIL_ADDRESS_1>, please call back.";
            let mut inserted = 0u64;
            while Instant::now() < until {
                sqlx::query("INSERT INTO bench_insert (conversation, body) VALUES ($1, $2)")
                    .bind(&conversation)
                    .bind(body)
                    .execute(&mut conn)
                    .await?;
                inserted += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            let _ = conn.close().await;
            Ok::<u64, sqlx::Error>(inserted)
        });
    }
    let mut inserts = 0;
    while let Some(joined) = tasks.join_next().await {
        inserts += joined??;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Baseline {
        inserts,
        seconds,
        per_second: inserts as f64 / seconds.max(1e-9),
        connections,
    })
}
