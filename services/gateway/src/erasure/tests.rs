//! The erasure's fence against turns in flight: a turn of a message begun before its
//! subject's erasure is never written after it, whichever commits first.
#![allow(clippy::unwrap_used)]

use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use veil_core::events::OutboxEvent;
use veil_testkit::db::until_a_session_waits_for;

use super::erase_subject;
use crate::store::{self, Landed, NewPlaceholder, TurnWrite};
use crate::testing::{gateway_with_tenant, turn};

/// A turn of `subject` with a placeholder and an event, begun at `began`.
fn turn_of(tenant: Uuid, subject: &str, conversation: &str, began: OffsetDateTime) -> TurnWrite {
    let mut turn = turn(tenant, conversation, Uuid::now_v7());
    turn.subject_ref = subject.into();
    turn.placeholders = vec![NewPlaceholder {
        token_is_new: true,
        placeholder_is_new: true,
        ..NewPlaceholder::new(&format!("tok-{subject}"), "<PERSON_1>".into(), "PERSON")
    }];
    turn.events = vec![OutboxEvent::new(
        "veil.events.gateway.message_processed",
        vec![1],
    )];
    turn.erased_after = began;
    turn
}

async fn erase(pool: &PgPool, tenant: Uuid, subject: &str) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let erased = erase_subject(&mut tx, tenant, subject).await.unwrap();
    tx.commit().await.unwrap();
    erased.turns
}

/// (turns, placeholder rows, events) of `subject` (events: all of them).
async fn stored(pool: &PgPool, subject: &str) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM transcript_messages WHERE subject_ref = $1),
                (SELECT count(*) FROM conversation_pseudonyms WHERE subject_ref = $1),
                (SELECT count(*) FROM outbox)",
    )
    .bind(subject)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn write(pool: &PgPool, turns: &[&TurnWrite]) -> Vec<Landed> {
    store::write_turns(pool, turns).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_begun_before_its_subjects_erasure_is_refused_and_a_later_one_kept() {
    let (_db, pool, tenant) = gateway_with_tenant().await;
    let before = OffsetDateTime::now_utc() - Duration::seconds(1);
    let first = turn_of(tenant, "anna", "c-1", before);
    assert_eq!(write(&pool, &[&first]).await, vec![Landed::At(0)]);
    assert_eq!(erase(&pool, tenant, "anna").await, 1);

    // In flight across the erasure, in one statement with another subject's turn.
    let late = turn_of(tenant, "anna", "c-1", before);
    let other = turn_of(tenant, "bob", "c-2", before);
    assert_eq!(
        write(&pool, &[&late, &other]).await,
        vec![Landed::Erased, Landed::At(0)]
    );
    assert_eq!(
        stored(&pool, "anna").await,
        (0, 0, 2),
        "nothing of anna's turn"
    );
    assert_eq!(stored(&pool, "bob").await, (1, 1, 2));

    // A message begun after the erasure is the subject's new data.
    let after = turn_of(tenant, "anna", "c-1", OffsetDateTime::now_utc());
    assert_eq!(write(&pool, &[&after]).await, vec![Landed::At(0)]);
    assert_eq!(stored(&pool, "anna").await, (1, 1, 3));
}

/// The erasure holds its subject's lock until it commits: a turn write that reaches the
/// lock meanwhile waits, then reads the fence committed while it waited (its statement
/// began before), and writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_turn_write_waits_for_an_erasure_in_progress_and_is_refused() {
    let (_db, pool, tenant) = gateway_with_tenant().await;
    let began = OffsetDateTime::now_utc() - Duration::seconds(1);
    let mut erasure = pool.begin().await.unwrap();
    erase_subject(&mut erasure, tenant, "anna").await.unwrap();
    let racing = {
        let pool = pool.clone();
        let turn = turn_of(tenant, "anna", "c-1", began);
        tokio::spawn(async move { store::write_turns(&pool, &[&turn]).await })
    };
    until_a_session_waits_for(&pool, "advisory").await.unwrap();
    erasure.commit().await.unwrap();
    assert_eq!(racing.await.unwrap().unwrap(), vec![Landed::Erased]);
    assert_eq!(stored(&pool, "anna").await, (0, 0, 0));
}

/// A turn write holds its subjects' locks (shared) until it commits: an erasure that
/// comes meanwhile waits for it, then deletes the turn it could not see before.
#[tokio::test(flavor = "multi_thread")]
async fn an_erasure_waits_for_a_turn_write_in_progress_and_deletes_its_turn() {
    let (_db, pool, tenant) = gateway_with_tenant().await;
    let mut writing = pool.begin().await.unwrap();
    let turn = turn_of(tenant, "anna", "c-1", OffsetDateTime::now_utc());
    let written = store::write_turns(&mut *writing, &[&turn]).await.unwrap();
    assert_eq!(written, vec![Landed::At(0)]);
    let racing = {
        let pool = pool.clone();
        tokio::spawn(async move { erase(&pool, tenant, "anna").await })
    };
    until_a_session_waits_for(&pool, "advisory").await.unwrap();
    writing.commit().await.unwrap();
    assert_eq!(racing.await.unwrap(), 1, "the erasure deleted the turn");
    assert_eq!(stored(&pool, "anna").await, (0, 0, 1));
}

/// Fences older than a day are dropped by the next erasure; the subject's own stays.
#[tokio::test(flavor = "multi_thread")]
async fn old_fences_are_dropped_by_the_next_erasure() {
    let (_db, pool, tenant) = gateway_with_tenant().await;
    sqlx::query(
        "INSERT INTO subject_erasures (tenant_id, subject_ref, erased_at)
         VALUES ($1, 'old', now() - interval '2 days'), ($1, 'anna', now() - interval '2 days'),
                ($1, 'recent', now() - interval '1 hour')",
    )
    .bind(tenant)
    .execute(&pool)
    .await
    .unwrap();
    erase(&pool, tenant, "anna").await;
    let fences: Vec<String> =
        sqlx::query_scalar("SELECT subject_ref FROM subject_erasures ORDER BY subject_ref")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(fences, vec!["anna".to_string(), "recent".to_string()]);
}
