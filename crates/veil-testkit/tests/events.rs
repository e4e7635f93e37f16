//! Stream, outbox and relay against the real Postgres and NATS JetStream.
#![allow(clippy::unwrap_used)]

mod events_common;

use std::time::Duration;

use async_nats::jetstream;
use events_common::{DEADLINE, eventually, msg_id_at, stream_messages};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veil_core::events::{
    CLAIM_PLAN, CLAIM_SQL, EventsError, OutboxEvent, OutboxRelay, RelaySettings, enqueue,
    ensure_stream, ensure_tables,
};
use veil_testkit::{PrivateNats, TestDb, TestNats};

async fn outbox_pool(db: &TestDb) -> PgPool {
    let pool = db.pool("svc").await.unwrap();
    ensure_tables(&pool).await.unwrap();
    pool
}

async fn sent_at_set(pool: &PgPool, event_id: Uuid) -> Option<bool> {
    sqlx::query_scalar("SELECT sent_at IS NOT NULL FROM outbox WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(pool)
        .await
        .unwrap()
}

fn spawn_relay(relay: OutboxRelay) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    (shutdown, task)
}

/// The relay's claim reads the unsent index in id order and stops after its batch, also
/// when nearly every row was marked sent since the last vacuum (here: none yet, as for a
/// busy new deployment): a bitmap scan of that index then looks cheapest, and it visits
/// the entry and heap page of every row marked sent, on every round.
#[tokio::test]
async fn the_relay_claims_by_index_when_nearly_every_row_was_sent() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    sqlx::query(
        "INSERT INTO outbox (event_id, subject, payload)
         SELECT gen_random_uuid(), 'veil.events.test', '\\x00'::bytea
         FROM generate_series(1, 20050)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE id <= 20000")
        .execute(&pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql(CLAIM_PLAN).execute(&mut *tx).await.unwrap();
    let explain = format!("EXPLAIN (FORMAT JSON) {}", CLAIM_SQL.replace("$1", "100"));
    let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let text = plan.to_string();
    assert!(
        text.contains(r#""Node Type":"Index Scan""#)
            && text.contains(r#""Index Name":"outbox_unsent_idx""#)
            && !text.contains("Bitmap")
            && !text.contains("Sort"),
        "{plan}"
    );
}

#[tokio::test]
async fn stream_is_created_on_the_shared_server_once() {
    let nats = TestNats::new().await.unwrap();
    let version = nats.client().server_info().version;
    let info = nats.ensure_stream().await.unwrap();
    let config = &info.config;
    assert_eq!(config.name, nats.config().stream);
    assert_eq!(config.subjects, vec![nats.config().all()]);
    assert_eq!(config.storage, jetstream::stream::StorageType::File);
    assert_eq!(config.retention, jetstream::stream::RetentionPolicy::Limits);
    assert_eq!(config.discard, jetstream::stream::DiscardPolicy::New);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    let again = nats.ensure_stream().await.unwrap();
    assert_eq!(again.created, info.created, "second call must not recreate");
    println!("stream created on nats-server {version}");
}

#[tokio::test]
async fn existing_stream_without_the_prefix_is_rejected() {
    let nats = TestNats::new().await.unwrap();
    let config = nats.config();
    nats.jetstream()
        .create_stream(jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.other", config.subject_prefix)],
            ..Default::default()
        })
        .await
        .unwrap();
    let error = ensure_stream(nats.jetstream(), config).await.unwrap_err();
    assert!(
        matches!(error, EventsError::StreamMismatch { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn rolled_back_change_publishes_nothing_and_committed_one_publishes_once() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let subject = nats.config().subject("consent", "granted").unwrap();

    let rolled_back = OutboxEvent::new(&subject, b"rolled back".to_vec());
    let mut tx = pool.begin().await.unwrap();
    enqueue(&mut *tx, &rolled_back).await.unwrap();
    tx.rollback().await.unwrap();

    let committed = OutboxEvent::new(&subject, b"committed".to_vec())
        .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let mut tx = pool.begin().await.unwrap();
    enqueue(&mut *tx, &committed).await.unwrap();
    tx.commit().await.unwrap();

    let relay = OutboxRelay::new(
        pool.clone(),
        nats.jetstream().clone(),
        RelaySettings::default(),
    );
    let handle = relay.handle();
    let (shutdown, task) = spawn_relay(relay);
    handle.notify();
    eventually("committed event marked sent", DEADLINE, || async {
        sent_at_set(&pool, committed.event_id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    eventually("backlog gauge at zero", DEADLINE, || async {
        (handle.backlog() == 0).then_some(())
    })
    .await;
    // Another round must not publish it again.
    handle.notify();
    shutdown.cancel();
    task.await.unwrap();

    let js = nats.jetstream();
    let stream = &nats.config().stream;
    assert_eq!(stream_messages(js, stream).await, 1);
    assert_eq!(
        msg_id_at(js, stream, 1).await,
        committed.event_id.to_string()
    );
    let message = js
        .get_stream(stream)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert_eq!(message.payload.as_ref(), b"committed");
    assert_eq!(message.subject.as_str(), subject);
    assert_eq!(
        message.headers.get("traceparent").map(|v| v.as_str()),
        committed.traceparent.as_deref()
    );
    assert_eq!(sent_at_set(&pool, rolled_back.event_id).await, None);
}

/// An event larger than the broker accepts is set aside, not retried in front of the
/// events behind it (which would stall the outbox for good).
#[tokio::test]
async fn an_event_the_broker_refuses_for_size_is_set_aside_and_the_rest_flows() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let subject = nats.config().subject("gateway", "auth_failed").unwrap();
    let too_large = nats.client().server_info().max_payload + 1;
    let events = [
        OutboxEvent::new(&subject, b"before".to_vec()),
        OutboxEvent::new(&subject, vec![0u8; too_large]),
        OutboxEvent::new(&subject, b"after".to_vec()),
    ];
    for event in &events {
        enqueue(&pool, event).await.unwrap();
    }
    let relay = OutboxRelay::new(
        pool.clone(),
        nats.jetstream().clone(),
        RelaySettings::default(),
    );
    let round = relay.publish_round().await.unwrap();
    assert_eq!((round.published, round.failed, round.rejected), (2, 0, 1));
    let (rejected, error): (bool, Option<String>) = sqlx::query_as(
        "SELECT rejected_at IS NOT NULL, last_error FROM outbox WHERE event_id = $1",
    )
    .bind(events[1].event_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(rejected);
    assert!(error.unwrap().contains("max_payload"));
    // Set aside: the next round neither fetches nor counts it.
    let next = relay.publish_round().await.unwrap();
    assert_eq!(next.fetched, 0);
    let js = nats.jetstream();
    assert_eq!(stream_messages(js, &nats.config().stream).await, 2);
    assert_eq!(
        msg_id_at(js, &nats.config().stream, 2).await,
        events[2].event_id.to_string()
    );
}

#[tokio::test]
async fn relay_keeps_events_while_nats_is_down_and_publishes_after_restart() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    let mut server = PrivateNats::start().await.unwrap();
    let client = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(server.url())
        .await
        .unwrap();
    let js = jetstream::new(client);
    let nats_config = veil_core::events::EventsConfig::default();
    ensure_stream(&js, &nats_config).await.unwrap();
    let settings = RelaySettings {
        publish_timeout_ms: 300,
        ..RelaySettings::default()
    };
    let relay = OutboxRelay::new(pool.clone(), js.clone(), settings);
    let handle = relay.handle();
    let (shutdown, task) = spawn_relay(relay);

    server.stop().unwrap();
    let event = OutboxEvent::new(
        nats_config.subject("vault", "record_stored").unwrap(),
        b"while down".to_vec(),
    );
    enqueue(&pool, &event).await.unwrap();
    handle.notify();
    let attempts: i32 = eventually("failed publish attempts recorded", DEADLINE, || async {
        let (attempts, sent, error): (i32, bool, Option<String>) = sqlx::query_as(
            "SELECT attempts, sent_at IS NOT NULL, last_error FROM outbox WHERE event_id = $1",
        )
        .bind(event.event_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(!sent, "must not be marked sent while nats is down");
        if attempts >= 2 {
            let error = error.unwrap_or_default();
            assert!(!error.contains("while down"), "payload leaked: {error}");
            Some(attempts)
        } else {
            None
        }
    })
    .await;
    assert_eq!(handle.backlog(), 1);

    server.resume().await.unwrap();
    eventually("event published after restart", DEADLINE, || async {
        sent_at_set(&pool, event.event_id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(stream_messages(&js, &nats_config.stream).await, 1);
    assert_eq!(
        msg_id_at(&js, &nats_config.stream, 1).await,
        event.event_id.to_string()
    );
    println!("event survived the outage after {attempts} failed attempts");
}

#[tokio::test]
async fn relay_publishes_many_events_in_order_and_two_replicas_lose_none() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let subject = nats
        .config()
        .subject("gateway", "message_processed")
        .unwrap();
    let total = 1_000;
    let mut ids = Vec::with_capacity(total);
    let mut tx = pool.begin().await.unwrap();
    for n in 0..total {
        let event = OutboxEvent::new(&subject, format!("event {n}").into_bytes());
        enqueue(&mut *tx, &event).await.unwrap();
        ids.push(event.event_id);
    }
    tx.commit().await.unwrap();

    let started = std::time::Instant::now();
    let first = OutboxRelay::new(
        pool.clone(),
        nats.jetstream().clone(),
        RelaySettings::default(),
    );
    let single = first.handle();
    let (shutdown, task) = spawn_relay(first);
    single.notify();
    eventually("all events sent", DEADLINE, || async {
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
        (unsent == 0).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    shutdown.cancel();
    task.await.unwrap();
    println!(
        "relay published {total} events in {elapsed:?} ({:.0}/s)",
        total as f64 / elapsed.as_secs_f64()
    );
    let js = nats.jetstream();
    let stream = &nats.config().stream;
    assert_eq!(stream_messages(js, stream).await, total as u64);
    for sequence in [1, 2, 500, total as u64] {
        let expected = ids[sequence as usize - 1].to_string();
        assert_eq!(
            msg_id_at(js, stream, sequence).await,
            expected,
            "seq {sequence}"
        );
    }

    // Two replicas over one outbox: every row is published and marked sent.
    let mut tx = pool.begin().await.unwrap();
    for n in 0..total {
        let event = OutboxEvent::new(&subject, format!("second {n}").into_bytes());
        enqueue(&mut *tx, &event).await.unwrap();
    }
    tx.commit().await.unwrap();
    let settings = RelaySettings {
        batch_size: 50,
        ..RelaySettings::default()
    };
    let replicas: Vec<_> = (0..2)
        .map(|_| {
            let relay = OutboxRelay::new(pool.clone(), js.clone(), settings.clone());
            relay.handle().notify();
            spawn_relay(relay)
        })
        .collect();
    eventually("both replicas drained the outbox", DEADLINE, || async {
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
        (unsent == 0).then_some(())
    })
    .await;
    for (shutdown, task) in replicas {
        shutdown.cancel();
        task.await.unwrap();
    }
    assert_eq!(stream_messages(js, stream).await, 2 * total as u64);
}

#[tokio::test]
async fn shutdown_drains_the_outbox_once_more() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let event = OutboxEvent::new(
        nats.config().subject("audit", "incident_opened").unwrap(),
        vec![1],
    );
    enqueue(&pool, &event).await.unwrap();
    let relay = OutboxRelay::new(
        pool.clone(),
        nats.jetstream().clone(),
        RelaySettings::default(),
    );
    let shutdown = CancellationToken::new();
    // Cancelled before it starts: only the final drain can publish the event.
    shutdown.cancel();
    relay.run(shutdown).await;
    assert_eq!(sent_at_set(&pool, event.event_id).await, Some(true));
    assert_eq!(
        stream_messages(nats.jetstream(), &nats.config().stream).await,
        1
    );
}

#[tokio::test]
async fn sent_rows_are_cleaned_up_after_retention() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let settings = RelaySettings {
        sent_retention_secs: 0,
        cleanup_interval_secs: 1,
        poll_interval_ms: 20,
        ..RelaySettings::default()
    };
    let relay = OutboxRelay::new(pool.clone(), nats.jetstream().clone(), settings);
    let handle = relay.handle();
    let (shutdown, task) = spawn_relay(relay);
    let event = OutboxEvent::new(
        nats.config()
            .subject("retention", "purge_completed")
            .unwrap(),
        vec![],
    );
    enqueue(&pool, &event).await.unwrap();
    handle.notify();
    eventually("sent row deleted", DEADLINE, || async {
        sent_at_set(&pool, event.event_id)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(
        stream_messages(nats.jetstream(), &nats.config().stream).await,
        1
    );
}

#[tokio::test]
async fn ensure_tables_is_idempotent_and_per_schema() {
    let db = TestDb::create().await.unwrap();
    let consent = db.pool("consent").await.unwrap();
    let vault = db.pool("vault").await.unwrap();
    let (a, b, c) = tokio::join!(
        ensure_tables(&consent),
        ensure_tables(&consent),
        ensure_tables(&vault)
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    enqueue(
        &consent,
        &OutboxEvent::new("veil.events.consent.granted", vec![]),
    )
    .await
    .unwrap();
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox' ORDER BY 1",
    )
    .fetch_all(&consent)
    .await
    .unwrap();
    assert_eq!(schemas, ["consent", "vault"]);
    let in_vault: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&vault)
        .await
        .unwrap();
    assert_eq!(in_vault, 0);
}

#[tokio::test]
async fn notify_wakes_an_idle_relay_and_polling_finds_rows_of_other_replicas() {
    let db = TestDb::create().await.unwrap();
    let pool = outbox_pool(&db).await;
    let nats = TestNats::new().await.unwrap();
    nats.ensure_stream().await.unwrap();
    let subject = nats.config().subject("consent", "notice_served").unwrap();
    let sleepy = RelaySettings {
        poll_interval_ms: 600_000,
        ..RelaySettings::default()
    };
    let relay = OutboxRelay::new(pool.clone(), nats.jetstream().clone(), sleepy);
    let handle = relay.handle();
    let first = OutboxEvent::new(&subject, vec![1]);
    enqueue(&pool, &first).await.unwrap();
    let (shutdown, task) = spawn_relay(relay);
    eventually("first round published", DEADLINE, || async {
        sent_at_set(&pool, first.event_id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    // The relay now sleeps for its ten-minute poll: only the notify can wake it.
    let second = OutboxEvent::new(&subject, vec![2]);
    enqueue(&pool, &second).await.unwrap();
    handle.notify();
    eventually("notified relay published", DEADLINE, || async {
        sent_at_set(&pool, second.event_id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();

    let polling = RelaySettings {
        poll_interval_ms: 20,
        ..RelaySettings::default()
    };
    let relay = OutboxRelay::new(pool.clone(), nats.jetstream().clone(), polling);
    let (shutdown, task) = spawn_relay(relay);
    // Written as if by another replica: nobody notifies this relay.
    let third = OutboxEvent::new(&subject, vec![3]);
    enqueue(&pool, &third).await.unwrap();
    eventually("polling relay published", DEADLINE, || async {
        sent_at_set(&pool, third.event_id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(
        stream_messages(nats.jetstream(), &nats.config().stream).await,
        3
    );
}
