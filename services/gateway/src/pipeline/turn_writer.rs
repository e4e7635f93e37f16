//! Group commit of turns: the turns of concurrent messages are written by one statement
//! (see [`store::write_turns`]), so under load a turn costs a fraction of a round trip and
//! of a commit, and a message on an idle gateway is written at once.

use std::collections::HashSet;

use sqlx::PgPool;
use uuid::Uuid;
use veil_core::batch::{BatchLost, Batcher, Limits};
use veil_core::db::retry_if_lost;
use veil_core::events::RelayHandle;

use crate::store::{self, Landed, TurnWrite};

/// Statements in flight at once (each holds a pooled connection while it runs).
pub const IN_FLIGHT: usize = 2;

/// About how many bytes a turn adds to the statement's parameters.
fn size(turn: &TurnWrite) -> usize {
    let placeholders: usize = turn
        .placeholders
        .iter()
        .map(|p| p.token.len() + p.placeholder.len() + p.entity_type.len() + 60)
        .sum();
    let events: usize = turn
        .events
        .iter()
        .map(|e| e.payload.len() + e.subject.len() + 80)
        .sum();
    let answer = turn.answer.as_ref().map_or(0, |a| {
        a.idempotency_key.len() + a.fingerprint.len() + a.sealed.len() + 60
    });
    turn.redacted_text.len() + turn.entity_counts.len() + 150 + placeholders + events + answer
}

/// Where a turn went (see [`store::write_turns`]).
type Written = sqlx::Result<Landed>;

/// Writes turns in batches; cheap to clone.
#[derive(Clone)]
pub struct TurnWriter {
    batcher: Batcher<TurnWrite, Written>,
}

impl TurnWriter {
    /// Starts the writer; the relay is woken after each batch to publish its events.
    pub fn spawn(pool: PgPool, relay: RelayHandle) -> Self {
        let batcher = Batcher::spawn(
            Limits::statements("turn writes", IN_FLIGHT),
            size,
            move |turns| {
                let (pool, relay) = (pool.clone(), relay.clone());
                async move {
                    let written = write_batch(&pool, &turns).await;
                    relay.notify();
                    written
                }
            },
        );
        Self { batcher }
    }

    /// Writes one turn with whichever others are waiting; returns where it went.
    pub async fn write(&self, turn: TurnWrite) -> Result<Written, BatchLost> {
        self.batcher.call(turn).await
    }
}

/// One answer per turn, in order. Turns of one conversation go in separate statements,
/// one after another, since each takes the index after the previous one. When a
/// statement of several turns fails (nothing of it is written), each of its turns is
/// tried alone, so that a conflict or a bad row fails only its own message.
async fn write_batch(pool: &PgPool, turns: &[TurnWrite]) -> Vec<Written> {
    let mut answers: Vec<Option<Written>> = (0..turns.len()).map(|_| None).collect();
    let mut pending: Vec<usize> = (0..turns.len()).collect();
    while !pending.is_empty() {
        let mut conversations: HashSet<(Uuid, &str)> = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = pending.into_iter().partition(|&i| {
            conversations.insert((turns[i].tenant, turns[i].conversation_id.as_str()))
        });
        let batch: Vec<&TurnWrite> = round.iter().map(|&i| &turns[i]).collect();
        match retry_if_lost(|| store::write_turns(pool, &batch)).await {
            Ok(indexes) => {
                for (i, index) in round.into_iter().zip(indexes) {
                    answers[i] = Some(Ok(index));
                }
            }
            Err(error) if round.len() == 1 => answers[round[0]] = Some(Err(error)),
            Err(_) => {
                for i in round {
                    let one = [&turns[i]];
                    let alone = retry_if_lost(|| store::write_turns(pool, &one)).await;
                    answers[i] = Some(alone.and_then(|indexes| {
                        indexes.into_iter().next().ok_or(sqlx::Error::RowNotFound)
                    }));
                }
            }
        }
        pending = later;
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or(Err(sqlx::Error::RowNotFound)))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use veil_testkit::db::until_a_session_waits_for;

    use super::super::persist::is_unique_violation;
    use super::*;
    use crate::testing::{gateway_with_tenant, turn};

    /// Turns of one conversation in one batch take consecutive indexes; a turn that
    /// cannot be written (here a message id already stored) fails alone.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_batch_orders_turns_of_a_conversation_and_isolates_a_failure() {
        let (_db, pool, tenant) = gateway_with_tenant().await;
        let taken = Uuid::now_v7();
        let first = write_batch(&pool, &[turn(tenant, "c-0", taken)]).await;
        assert_eq!(first[0].as_ref().unwrap(), &Landed::At(0));

        let batch = vec![
            turn(tenant, "c-1", Uuid::now_v7()),
            turn(tenant, "c-1", Uuid::now_v7()),
            turn(tenant, "c-2", taken),
            turn(tenant, "c-1", Uuid::now_v7()),
            turn(tenant, "c-0", Uuid::now_v7()),
        ];
        let written = write_batch(&pool, &batch).await;
        let indexes: Vec<Option<Landed>> =
            written.iter().map(|w| w.as_ref().ok().copied()).collect();
        let at = |i| Some(Landed::At(i));
        assert_eq!(indexes, vec![at(0), at(1), None, at(2), at(1)]);
        let stored: Vec<(String, i64)> = sqlx::query_as(
            "SELECT conversation_id, turn_index FROM transcript_messages
             ORDER BY conversation_id, turn_index",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let expected = [("c-0", 0), ("c-0", 1), ("c-1", 0), ("c-1", 1), ("c-1", 2)];
        let expected: Vec<(String, i64)> =
            expected.iter().map(|(c, i)| (c.to_string(), *i)).collect();
        assert_eq!(stored, expected);
        let purposes: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT unnest(purposes) FROM transcript_messages")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(purposes, vec!["support".to_string()]);
    }

    fn mapping(token: &str, placeholder: &str, placeholder_is_new: bool) -> store::NewPlaceholder {
        store::NewPlaceholder {
            token_is_new: true,
            placeholder_is_new,
            ..store::NewPlaceholder::new(token, placeholder.into(), "PERSON")
        }
    }

    /// Turns whose map says a token or a placeholder is new, when a turn written since
    /// has it, are not written at all (no turn, no row, no event); the others of the
    /// same statement are. Another spelling may reuse a known placeholder.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_turn_built_on_a_stale_map_is_not_written() {
        let (_db, pool, tenant) = gateway_with_tenant().await;
        let with = |conversation: &str, rows: Vec<store::NewPlaceholder>| {
            let mut turn = turn(tenant, conversation, Uuid::now_v7());
            turn.placeholders = rows;
            turn.events = vec![veil_core::events::OutboxEvent::new(
                "veil.events.gateway.message_processed",
                vec![1],
            )];
            turn
        };
        let first = write_batch(
            &pool,
            &[with("c-1", vec![mapping("tok-bob", "<PERSON_1>", true)])],
        )
        .await;
        assert_eq!(first[0].as_ref().unwrap(), &Landed::At(0));

        // Both read the map before the first turn was written.
        let batch = vec![
            with("c-1", vec![mapping("tok-carl", "<PERSON_1>", true)]),
            with("c-2", vec![mapping("tok-carl", "<PERSON_1>", true)]),
        ];
        let written = write_batch(&pool, &batch).await;
        let indexes: Vec<Landed> = written.into_iter().map(|w| w.unwrap()).collect();
        assert_eq!(
            indexes,
            vec![Landed::Stale, Landed::At(0)],
            "the placeholder was taken in c-1"
        );
        let again = write_batch(
            &pool,
            &[with("c-1", vec![mapping("tok-bob", "<PERSON_2>", true)])],
        )
        .await;
        assert_eq!(
            again[0].as_ref().unwrap(),
            &Landed::Stale,
            "the token was mapped in c-1"
        );
        let spelling = write_batch(
            &pool,
            &[with("c-1", vec![mapping("tok-bob2", "<PERSON_1>", false)])],
        )
        .await;
        assert_eq!(spelling[0].as_ref().unwrap(), &Landed::At(1));

        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT conversation_id, token, placeholder FROM conversation_pseudonyms
             ORDER BY conversation_id, token",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let expected = [
            ("c-1", "tok-bob", "<PERSON_1>"),
            ("c-1", "tok-bob2", "<PERSON_1>"),
            ("c-2", "tok-carl", "<PERSON_1>"),
        ];
        let expected: Vec<(String, String, String)> = expected
            .iter()
            .map(|(c, t, p)| (c.to_string(), t.to_string(), p.to_string()))
            .collect();
        assert_eq!(rows, expected);
        let turns: i64 = sqlx::query_scalar("SELECT count(*) FROM transcript_messages")
            .fetch_one(&pool)
            .await
            .unwrap();
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((turns, events), (3, 3));
    }

    /// A keyed turn is written, with its answer, only while its call holds the key's
    /// claim, not once a retry has taken the key over.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_keyed_turn_is_written_only_under_its_claim() {
        let (_db, pool, tenant) = gateway_with_tenant().await;
        let held = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO message_replays
                 (tenant_id, conversation_id, idempotency_key, subject_ref, fingerprint, claim)
             VALUES ($1, 'c-1', 'k-1', 'subject', '\\x00', $2)",
        )
        .bind(tenant)
        .bind(held)
        .execute(&pool)
        .await
        .unwrap();
        let keyed = |key: &str, claim: Uuid| {
            let mut turn = turn(tenant, "c-1", Uuid::now_v7());
            turn.answer = Some(store::TurnAnswer {
                idempotency_key: key.into(),
                fingerprint: vec![0],
                claim,
                sealed: vec![1, 2, 3],
                settled: true,
            });
            turn
        };
        let taken_over = write_batch(&pool, &[keyed("k-1", Uuid::now_v7())]).await;
        assert_eq!(taken_over[0].as_ref().unwrap(), &Landed::ClaimLost);
        let turns: i64 = sqlx::query_scalar("SELECT count(*) FROM transcript_messages")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(turns, 0);

        let own = keyed("k-1", held);
        let written = write_batch(&pool, std::slice::from_ref(&own)).await;
        assert_eq!(written[0].as_ref().unwrap(), &Landed::At(0));
        type Kept = (Option<Vec<u8>>, Option<Uuid>, Option<i64>, bool);
        let kept: Vec<Kept> = sqlx::query_as(
            "SELECT turn_answer, turn_message_id, turn_index, settled FROM message_replays",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            kept,
            vec![(Some(vec![1, 2, 3]), Some(own.message_id), Some(0), true)]
        );
    }

    /// Two writers that introduce the same placeholder for different values at once,
    /// neither storing a turn (so no turn index orders them): the second waits for the
    /// first and fails instead of committing a second value under the placeholder.
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_introductions_of_a_placeholder_collide() {
        let (_db, pool, tenant) = gateway_with_tenant().await;
        let unstored = |token: &str| {
            let mut turn = turn(tenant, "c-1", Uuid::now_v7());
            turn.store = false;
            turn.placeholders = vec![mapping(token, "<PERSON_1>", true)];
            turn
        };
        let (first, second) = (unstored("tok-anna"), unstored("tok-bob"));
        let mut tx = pool.begin().await.unwrap();
        let written = store::write_turns(&mut *tx, &[&first]).await.unwrap();
        assert_eq!(written, vec![Landed::At(0)]);
        let racing = {
            let pool = pool.clone();
            tokio::spawn(async move { store::write_turns(&pool, &[&second]).await })
        };
        // The second statement has read no row of the first (not committed yet); it can
        // only finish once the first transaction ends.
        until_a_session_waits_for(&pool, "transactionid")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let error = racing.await.unwrap().expect_err("a second introduction");
        assert!(is_unique_violation(&error), "{error}");
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT token FROM conversation_pseudonyms WHERE placeholder = '<PERSON_1>'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(rows, vec!["tok-anna".to_string()]);
    }
}
