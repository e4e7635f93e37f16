//! Two consent instances on one database: a withdrawal through one holds for the very
//! next check through the other, although both answer from in-process caches.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use veil_proto::common::v1::{DecisionReason, Jurisdiction};

const GRANTED: (bool, i32) = (true, DecisionReason::Granted as i32);
const WITHDRAWN: (bool, i32) = (false, DecisionReason::Withdrawn as i32);

/// Waits until `n` replicas have registered, i.e. their caches serve.
async fn replicas_serving(h: &Harness, n: i64) -> anyhow::Result<()> {
    let db = h.db().await?;
    veil_testkit::eventually(Duration::from_secs(10), || async {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM cache_replicas")
            .fetch_one(&db)
            .await
            .ok()?;
        (count >= n).then_some(())
    })
    .await
}

/// Waits until the outbox relay has published every event written so far.
async fn outbox_drained(db: &sqlx::PgPool) -> anyhow::Result<()> {
    veil_testkit::eventually(Duration::from_secs(10), || async {
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(db)
            .await
            .ok()?;
        (unsent == 0).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawal_on_one_replica_holds_at_once_on_the_other() -> anyhow::Result<()> {
    // A long ttl, so that a missing confirmation would show as a slow withdrawal.
    let slow = |s: &mut veil_consent::ConsentSettings| s.cache_ttl_ms = 5_000;
    let h = Harness::start_with(slow).await?;
    let (_b_running, b) = instance(&h.env, slow).await?;
    replicas_serving(&h, 2).await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let eu = Jurisdiction::EuGdpr;

    // B caches what it answers: a state changed behind its back (a raw insert, which
    // no service would do) is not seen until the cache entry dies. The grant's own
    // event also reaches B (its backup invalidation path) once the outbox relay has
    // published it; arriving after the raw insert, it would rightly drop B's entry.
    // So the grant's events are out first, and a late arrival costs an attempt.
    let db = h.db().await?;
    let mut served_from_cache = false;
    for attempt in 0..5 {
        let subject = format!("cached-{attempt}");
        h.grant(&subject, &["marketing"], &notice).await?;
        outbox_drained(&db).await?;
        assert_eq!(
            check_on(&b, &h, &subject, &["marketing"], eu).await?,
            vec![GRANTED]
        );
        sqlx::query(
            "INSERT INTO consent_events (id, tenant_id, subject_ref, purpose_key, state, event_type)
             SELECT gen_random_uuid(), tenant_id, subject_ref, purpose_key, 3, 3
             FROM consent_events ORDER BY created_at DESC LIMIT 1",
        )
        .execute(&db)
        .await?;
        if check_on(&b, &h, &subject, &["marketing"], eu).await? == vec![GRANTED] {
            served_from_cache = true;
            break;
        }
    }
    assert!(served_from_cache, "B answers from its cache");

    // A real withdrawal through A: B's very next check already says no.
    for round in 0..5 {
        let subject = format!("user-{round}");
        h.grant(&subject, &["marketing"], &notice).await?;
        assert_eq!(
            check_on(&b, &h, &subject, &["marketing"], eu).await?,
            vec![GRANTED]
        );
        assert_eq!(
            check_on(&b, &h, &subject, &["marketing"], eu).await?,
            vec![GRANTED]
        );
        let started = Instant::now();
        h.withdraw(&subject, &["marketing"]).await?;
        // B confirmed the invalidation (an unconfirmed one costs the 2 s cache ttl).
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "round {round}"
        );
        assert_eq!(
            check_on(&b, &h, &subject, &["marketing"], eu).await?,
            vec![WITHDRAWN],
            "round {round}: B must not answer from the old state"
        );
        assert_eq!(h.check(&subject, &["marketing"]).await?, vec![WITHDRAWN]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_does_not_confirm_is_waited_out() -> anyhow::Result<()> {
    let ttl = 1_500;
    let h = Harness::start_with(|s| {
        s.cache_ttl_ms = ttl;
        s.cache_heartbeat_ms = 100;
    })
    .await?;
    replicas_serving(&h, 1).await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    h.grant("quiet", &["marketing"], &notice).await?;

    // A registered replica that never answers (say, one stuck in a GC pause).
    let db = h.db().await?;
    let ghost = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO cache_replicas (replica_id, seen_at) VALUES ($1, now() + interval '1 hour')",
    )
    .bind(ghost)
    .execute(&db)
    .await?;
    let started = Instant::now();
    h.withdraw("quiet", &["marketing"]).await?;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(ttl - 50),
        "the withdrawal returned after {took:?}, before any stale entry could have died"
    );
    assert_eq!(h.check("quiet", &["marketing"]).await?, vec![WITHDRAWN]);

    // Without the ghost, writes do not wait.
    sqlx::query("DELETE FROM cache_replicas WHERE replica_id = $1")
        .bind(ghost)
        .execute(&db)
        .await?;
    let started = Instant::now();
    h.grant("quiet", &["marketing"], &notice).await?;
    assert!(
        started.elapsed() < Duration::from_millis(ttl),
        "no wait without stragglers"
    );
    Ok(())
}
