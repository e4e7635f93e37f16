//! The batched ingest consumer against the real NATS JetStream and Postgres: batches
//! share one transaction, a poison event is dead-lettered without costing the rest of
//! its batch, and a redelivery of everything (every ack lost) adds nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::audit_pool;
use prost::Message;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_audit::ingest::Ingest;
use veil_core::events::{BatchSettings, Consumer, ConsumerSettings, EventsConfig, MSG_ID_HEADER};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{Event, VaultRecordStored};
use veil_testkit::{TestDb, TestNats, eventually};

const DURABLE: &str = "audit_ingest";
const WAIT: Duration = Duration::from_secs(20);

fn envelope(id: Uuid, i: usize) -> Vec<u8> {
    Event {
        event_id: id.to_string(),
        occurred_at: Some(veil_core::convert::now()),
        tenant_id: Uuid::now_v7().to_string(),
        payload: Some(Payload::VaultRecordStored(VaultRecordStored {
            record_id: format!("record-{i}"),
            category: "contact".into(),
            ..VaultRecordStored::default()
        })),
        ..Event::default()
    }
    .encode_to_vec()
}

/// Publishes `payload` under `id`; true when the stream stored it (not a duplicate).
async fn publish(js: &jetstream::Context, subject: &str, id: Uuid, payload: Vec<u8>) -> bool {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MSG_ID_HEADER, id.to_string().as_str());
    let ack = js
        .publish_with_headers(subject.to_owned(), headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
    !ack.duplicate
}

/// Runs the batched ingest consumer until every message in the stream is acknowledged
/// (or terminated), then stops it.
async fn consume_all(js: &jetstream::Context, config: &EventsConfig, pool: &PgPool) {
    let settings = ConsumerSettings {
        fetch_expires_ms: 500,
        retry_delay_ms: 50,
        ..ConsumerSettings::default()
    };
    let consumer =
        Consumer::with_settings(js.clone(), &config.stream, DURABLE, &config.all(), settings)
            .await
            .unwrap();
    let batch = BatchSettings {
        max_messages: 100,
        max_wait_ms: 200,
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run_batch(
        pool.clone(),
        Ingest::new(config.subject_prefix.clone()),
        batch,
        stop.clone(),
    ));
    let stream = js.get_stream(&config.stream).await.unwrap();
    eventually(WAIT, || async {
        let last = js
            .get_stream(&config.stream)
            .await
            .ok()?
            .info()
            .await
            .ok()?
            .state
            .last_sequence;
        let info = stream.consumer_info(DURABLE).await.ok()?;
        (info.ack_floor.stream_sequence >= last
            && info.num_ack_pending == 0
            && info.num_pending == 0)
            .then_some(())
    })
    .await
    .unwrap();
    stop.cancel();
    task.await.unwrap();
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_queued_in_one_transaction_and_a_poison_event_alone_is_dead_lettered() {
    let db = TestDb::create().await.unwrap();
    let pool = audit_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let (js, config) = (nats.jetstream(), nats.config());
    let subject = config.subject("vault", "record_stored").unwrap();
    for i in 0..20 {
        let id = Uuid::now_v7();
        assert!(publish(js, &subject, id, envelope(id, i)).await);
    }
    consume_all(js, config, &pool).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM pending").await, 20);
    // Rows written by one transaction share its xmin: far fewer transactions than events.
    let transactions = count(&pool, "SELECT count(DISTINCT xmin::text) FROM pending").await;
    assert!(
        transactions <= 5,
        "{transactions} transactions for 20 events"
    );

    // A second round with an event that can never be decoded in the middle.
    let poison = Uuid::now_v7();
    for i in 20..40 {
        let id = Uuid::now_v7();
        assert!(publish(js, &subject, id, envelope(id, i)).await);
        if i == 30 {
            assert!(publish(js, &subject, poison, b"\xff not protobuf".to_vec()).await);
        }
    }
    consume_all(js, config, &pool).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM pending").await, 40);
    // The queue's unique event id is the de-duplication: no claim rows, in batches or
    // on the one-at-a-time path the poison event took.
    assert_eq!(
        count(&pool, "SELECT count(*) FROM processed_events").await,
        0
    );
    let failed: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT event_id FROM event_failures WHERE consumer = $1")
            .bind(DURABLE)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(failed, vec![Some(poison)]);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM pending WHERE event_id = $1")
        .bind(poison)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_of_everything_and_a_copy_in_the_same_batch_add_nothing() {
    let db = TestDb::create().await.unwrap();
    let pool = audit_pool(&db).await;
    let mut nats = TestNats::new().await.unwrap();
    // A short window lets one event id into the stream twice, as a republish would.
    nats.config_mut().duplicate_window_ms = 100;
    nats.ensure_stream().await.unwrap();
    let (js, config) = (nats.jetstream(), nats.config());
    let subject = config.subject("vault", "record_stored").unwrap();
    let twice = Uuid::now_v7();
    assert!(publish(js, &subject, twice, envelope(twice, 0)).await);
    for i in 1..30 {
        let id = Uuid::now_v7();
        assert!(publish(js, &subject, id, envelope(id, i)).await);
    }
    eventually(WAIT, || async {
        publish(js, &subject, twice, envelope(twice, 0))
            .await
            .then_some(())
    })
    .await
    .unwrap();
    consume_all(js, config, &pool).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM pending").await, 30);

    // A crash after the commit and before any ack: the consumer starts over from the
    // first message and every event is delivered again.
    js.get_stream(&config.stream)
        .await
        .unwrap()
        .delete_consumer(DURABLE)
        .await
        .unwrap();
    consume_all(js, config, &pool).await;
    assert_eq!(count(&pool, "SELECT count(*) FROM pending").await, 30);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM processed_events").await,
        0
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM event_failures").await, 0);
}
