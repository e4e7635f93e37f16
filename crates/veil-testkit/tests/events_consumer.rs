//! The durable pull consumer against the real Postgres and NATS JetStream.
#![allow(clippy::unwrap_used)]

mod events_common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream;
use events_common::{
    Behaviour, DEADLINE, RecordingHandler, create_effects_table, effects_for, eventually, publish,
    stream_messages, wait_all_acked,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_core::events::{
    Consumer, ConsumerSettings, EventsConfig, OutboxEvent, OutboxRelay, RelaySettings, enqueue,
    ensure_stream, ensure_tables,
};
use veil_testkit::{PrivateNats, TestDb, TestNats};

const DURABLE: &str = "audit";

fn fast_settings() -> ConsumerSettings {
    ConsumerSettings {
        fetch_expires_ms: 500,
        retry_delay_ms: 50,
        retry_delay_max_ms: 200,
        lag_refresh_ms: 50,
        ..ConsumerSettings::default()
    }
}

async fn consumer_pool(db: &TestDb) -> PgPool {
    let pool = db.pool("audit").await.unwrap();
    ensure_tables(&pool).await.unwrap();
    create_effects_table(&pool).await;
    pool
}

/// Starts a consumer on every event of `config`; returns its shutdown token and task.
async fn start_consumer(
    js: &jetstream::Context,
    config: &EventsConfig,
    pool: &PgPool,
    handler: Arc<RecordingHandler>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let consumer = Consumer::with_settings(
        js.clone(),
        &config.stream,
        DURABLE,
        &config.all(),
        fast_settings(),
    )
    .await
    .unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(pool.clone(), handler, shutdown.clone()));
    (shutdown, task)
}

#[tokio::test]
async fn the_same_event_twice_in_the_stream_is_applied_once() {
    let db = TestDb::create().await.unwrap();
    let pool = consumer_pool(&db).await;
    let mut nats = TestNats::new().await.unwrap();
    // A short window lets the test put one event id into the stream twice, as a
    // republish after the window would.
    nats.config_mut().duplicate_window_ms = 100;
    nats.ensure_stream().await.unwrap();
    let (js, config) = (nats.jetstream().clone(), nats.config().clone());
    let subject = config.subject("consent", "withdrawn").unwrap();
    let event_id = Uuid::now_v7();
    assert!(
        !publish(&js, &subject, Some(event_id), b"v1")
            .await
            .duplicate
    );
    eventually(
        "second copy accepted after the window",
        DEADLINE,
        || async {
            (!publish(&js, &subject, Some(event_id), b"v1")
                .await
                .duplicate)
                .then_some(())
        },
    )
    .await;
    assert_eq!(stream_messages(&js, &config.stream).await, 2);
    // An event this consumer applied before whose ack was lost: only redelivered.
    let redelivered = Uuid::now_v7();
    sqlx::query("INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)")
        .bind(DURABLE)
        .bind(redelivered)
        .execute(&pool)
        .await
        .unwrap();
    publish(&js, &subject, Some(redelivered), b"again").await;

    let handler = Arc::new(RecordingHandler::new());
    let (shutdown, task) = start_consumer(&js, &config, &pool, handler.clone()).await;
    wait_all_acked(&js, &config.stream, DURABLE).await;
    shutdown.cancel();
    task.await.unwrap();

    assert_eq!(effects_for(&pool, event_id).await, 1);
    assert_eq!(effects_for(&pool, redelivered).await, 0);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(processed, 2);
}

#[tokio::test]
async fn a_failing_handler_gets_redeliveries_and_applies_once_it_succeeds() {
    let db = TestDb::create().await.unwrap();
    let pool = consumer_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let (js, config) = (nats.jetstream(), nats.config());
    let flaky = Uuid::now_v7();
    let steady = Uuid::now_v7();
    let handler = Arc::new(RecordingHandler::new());
    handler.behave(flaky, Behaviour::FailRetryable(2));
    let subject = config.subject("vault", "subject_shredded").unwrap();
    publish(js, &subject, Some(flaky), b"x").await;
    publish(js, &subject, Some(steady), b"y").await;

    let (shutdown, task) = start_consumer(js, config, &pool, handler.clone()).await;
    wait_all_acked(js, &config.stream, DURABLE).await;
    shutdown.cancel();
    task.await.unwrap();

    // The two failed attempts wrote rows too, but their transactions rolled back.
    assert_eq!(effects_for(&pool, flaky).await, 1);
    assert_eq!(effects_for(&pool, steady).await, 1);
    let delivered: i64 = sqlx::query_scalar("SELECT delivered FROM effects WHERE event_id = $1")
        .bind(flaky)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(delivered, 3);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn poison_messages_are_recorded_and_do_not_block_the_rest() {
    let db = TestDb::create().await.unwrap();
    let pool = consumer_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let (js, config) = (nats.jetstream(), nats.config());
    let subject = config.subject("gateway", "auth_failed").unwrap();
    let broken = Uuid::now_v7();
    let fine = Uuid::now_v7();
    let handler = Arc::new(RecordingHandler::new());
    handler.behave(broken, Behaviour::Permanent);
    publish(js, &subject, None, b"no id").await;
    publish(js, &subject, Some(broken), b"bad").await;
    publish(js, &subject, Some(fine), b"ok").await;

    let (shutdown, task) = start_consumer(js, config, &pool, handler.clone()).await;
    wait_all_acked(js, &config.stream, DURABLE).await;
    shutdown.cancel();
    task.await.unwrap();

    assert_eq!(effects_for(&pool, broken).await, 0);
    assert_eq!(effects_for(&pool, fine).await, 1);
    let failures: Vec<(Option<Uuid>, i64, String)> = sqlx::query_as(
        "SELECT event_id, stream_sequence, reason FROM event_failures ORDER BY stream_sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].0, None);
    assert_eq!(failures[0].1, 1);
    assert_eq!(failures[1].0, Some(broken));
    assert!(
        failures[1].2.contains("unknown event version"),
        "{failures:?}"
    );
    // A permanent failure is not marked processed: a fixed handler may apply it later.
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn outbox_to_consumer_end_to_end_with_lag_gauge() {
    let db = TestDb::create().await.unwrap();
    let producer = db.pool("consent").await.unwrap();
    ensure_tables(&producer).await.unwrap();
    let pool = consumer_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let (js, config) = (nats.jetstream(), nats.config());
    let subject = config.subject("consent", "granted").unwrap();
    let total = 200;
    let mut tx = producer.begin().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..total {
        let event = OutboxEvent::new(&subject, format!("{n}").into_bytes())
            .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        enqueue(&mut *tx, &event).await.unwrap();
        ids.push(event.event_id);
    }
    tx.commit().await.unwrap();

    let consumer = Consumer::with_settings(
        js.clone(),
        &config.stream,
        DURABLE,
        &config.service_all("consent").unwrap(),
        fast_settings(),
    )
    .await
    .unwrap();
    let lag = consumer.lag();
    let relay = OutboxRelay::new(producer.clone(), js.clone(), RelaySettings::default());
    relay.handle().notify();
    let stop_relay = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(stop_relay.clone()));
    eventually("all events in the stream", DEADLINE, || async {
        (stream_messages(js, &config.stream).await == total).then_some(())
    })
    .await;

    let started = std::time::Instant::now();
    let handler = Arc::new(RecordingHandler::new());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(pool.clone(), handler.clone(), shutdown.clone()));
    // The first refresh happens as the consumer starts, with the 200 events outstanding.
    eventually("lag gauge reports the backlog", DEADLINE, || async {
        (lag.pending() + lag.ack_pending() > 0).then_some(())
    })
    .await;
    eventually("every event applied", DEADLINE, || async {
        let applied: i64 = sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM effects")
            .fetch_one(&pool)
            .await
            .unwrap();
        (applied == total as i64).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    wait_all_acked(js, &config.stream, DURABLE).await;
    eventually("lag gauge at zero", DEADLINE, || async {
        (lag.pending() == 0 && lag.ack_pending() == 0).then_some(())
    })
    .await;
    shutdown.cancel();
    stop_relay.cancel();
    task.await.unwrap();
    relay_task.await.unwrap();
    println!(
        "consumer applied {total} events in {elapsed:?} ({:.0}/s)",
        total as f64 / elapsed.as_secs_f64()
    );
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE traceparent IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows, total as i64,
        "each applied once, trace context carried"
    );
    for id in [ids[0], ids[total as usize - 1]] {
        assert_eq!(effects_for(&pool, id).await, 1);
    }
}

#[tokio::test]
async fn consumer_keeps_running_across_a_nats_restart() {
    let db = TestDb::create().await.unwrap();
    let pool = consumer_pool(&db).await;
    let mut server = PrivateNats::start().await.unwrap();
    let client = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(server.url())
        .await
        .unwrap();
    let js = jetstream::new(client);
    let config = EventsConfig::default();
    ensure_stream(&js, &config).await.unwrap();
    let handler = Arc::new(RecordingHandler::new());
    let (shutdown, task) = start_consumer(&js, &config, &pool, handler.clone()).await;
    let subject = config.subject("retention", "hold_placed").unwrap();

    let before = Uuid::now_v7();
    publish(&js, &subject, Some(before), b"1").await;
    eventually("event before the restart applied", DEADLINE, || async {
        (effects_for(&pool, before).await == 1).then_some(())
    })
    .await;

    server.stop().unwrap();
    server.resume().await.unwrap();
    let after = Uuid::now_v7();
    eventually("publish accepted after the restart", DEADLINE, || async {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", after.to_string().as_str());
        let ack = js
            .publish_with_headers(subject.clone(), headers, "2".into())
            .await
            .ok()?;
        ack.await.ok().map(|_| ())
    })
    .await;
    eventually("event after the restart applied", DEADLINE, || async {
        (effects_for(&pool, after).await == 1).then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(effects_for(&pool, before).await, 1);
}
