//! The anomaly rules' windows, evaluated by the writer: the per-second sums
//! (`rule_buckets`) only decide whether the exact window is worth counting, an event
//! just outside the window never counts, and an open incident is not opened twice.
#![allow(clippy::unwrap_used)]

mod common;

use common::audit_pool;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use veil_audit::AuditSettings;
use veil_audit::writer::{Step, Writer};
use veil_core::events::EventsConfig;
use veil_testkit::TestDb;

/// Queues one `vault.revealed` by `actor` at `at` and appends it; returns its event id.
async fn reveal(pool: &PgPool, writer: &mut Writer, actor: &str, at: OffsetDateTime) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO pending (event_id, tenant_id, subject_ref, actor_id, event_type,
                              occurred_at, envelope)
         VALUES ($1, $2, NULL, $3, 'vault.revealed', $4, $5)",
    )
    .bind(id)
    .bind(Uuid::nil())
    .bind(actor)
    .bind(at)
    .bind(id.as_bytes().to_vec())
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(writer.step().await.unwrap(), Step::Appended(1));
    id
}

async fn incidents(pool: &PgPool) -> Vec<(String, String, Vec<Uuid>)> {
    sqlx::query_as("SELECT rule, rule_key, event_ids FROM incidents ORDER BY opened_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_count_exactly_and_incidents_open_once() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let pool = audit_pool(&db).await;
    let settings = AuditSettings {
        reveal_burst_threshold: 3,
        reveal_window_secs: 60,
        ..AuditSettings::default()
    };
    let mut writer = Writer::new(pool.clone(), EventsConfig::default(), &settings);
    let start = OffsetDateTime::from_unix_timestamp(1_795_000_000)?;
    let at = |millis: i64| start + Duration::milliseconds(millis);

    // Three reveals whose seconds fall into one 61-second span of buckets, but the
    // first is 60.3 s before the last: the exact 60 s window holds two.
    reveal(&pool, &mut writer, "key_a", at(300)).await;
    let second = reveal(&pool, &mut writer, "key_a", at(60_400)).await;
    let third = reveal(&pool, &mut writer, "key_a", at(60_600)).await;
    assert!(incidents(&pool).await.is_empty());
    // Another principal's reveals are counted apart.
    reveal(&pool, &mut writer, "key_b", at(60_700)).await;
    reveal(&pool, &mut writer, "key_b", at(60_800)).await;
    assert!(incidents(&pool).await.is_empty());

    // The third reveal of key_a within 60 s opens one incident, naming those three.
    let fourth = reveal(&pool, &mut writer, "key_a", at(61_000)).await;
    let opened = incidents(&pool).await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].0, "reveal_burst");
    assert_eq!(opened[0].1, "key_a");
    assert_eq!(opened[0].2, vec![second, third, fourth]);

    // While it is open, more reveals do not open another.
    reveal(&pool, &mut writer, "key_a", at(61_500)).await;
    assert_eq!(incidents(&pool).await.len(), 1);

    // The buckets hold every counted event once, per principal.
    let sums: Vec<(String, i64)> = sqlx::query_as(
        "SELECT rule_key, sum(events)::bigint FROM rule_buckets GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(sums, [("key_a".to_string(), 5), ("key_b".to_string(), 2)]);
    Ok(())
}
