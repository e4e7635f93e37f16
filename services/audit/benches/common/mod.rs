//! What the audit benchmarks share: a realistic event, a fresh migrated database, and
//! percentiles.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use prost::Message;
use uuid::Uuid;
use veil_proto::common::v1::{Actor, ActorKind};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{Event, GatewayMessageProcessed};

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic envelope: a processed message with entity counts (about 300 bytes).
pub fn event(i: u64, tenant: Uuid) -> (Uuid, Vec<u8>) {
    let id = Uuid::now_v7();
    let mut counts = std::collections::HashMap::new();
    counts.insert("EMAIL_ADDRESS".to_string(), 1);
    counts.insert("PHONE_NUMBER".to_string(), (i % 3) as i64);
    let event = Event {
        event_id: id.to_string(),
        occurred_at: Some(veil_core::convert::now()),
        tenant_id: tenant.to_string(),
        subject_ref: format!("{:064x}", i % 5_000),
        actor: Some(Actor {
            kind: ActorKind::ApiKey as i32,
            principal_id: "key_0123456789".into(),
            roles: vec![1],
            tenant_id: tenant.to_string(),
        }),
        source: 1,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        request_id: Uuid::now_v7().to_string(),
        payload: Some(Payload::GatewayMessageProcessed(GatewayMessageProcessed {
            conversation_id: format!("conv-{}", i / 10),
            message_id: Uuid::now_v7().to_string(),
            message_role: "user".into(),
            entity_counts: counts,
            purposes: vec!["support".into()],
            stored: true,
            policy_version: 3,
            text_bytes: 180,
            ..GatewayMessageProcessed::default()
        })),
    };
    (id, event.encode_to_vec())
}

/// A fresh database with the audit schema and the event tables.
pub async fn audit_db() -> (veil_testkit::TestDb, sqlx::PgPool) {
    let db = veil_testkit::TestDb::create().await.unwrap();
    let database = veil_core::config::DatabaseSettings {
        url: veil_core::types::Personal::new(db.url()),
        schema: "audit".into(),
        max_connections: 4,
        ..veil_core::config::DatabaseSettings::default()
    };
    let pool = veil_core::db::connect_and_migrate(&database, &veil_audit::MIGRATOR)
        .await
        .unwrap();
    veil_core::events::ensure_tables(&pool).await.unwrap();
    (db, pool)
}

/// Settings of the measured writer: no event reaches a rule threshold, but the entity
/// counts are recorded for the volume rule like in production.
pub fn settings() -> veil_audit::AuditSettings {
    veil_audit::AuditSettings {
        pii_volume_threshold: u64::MAX / 2,
        append_batch: env_number("AUDIT_BENCH_BATCH", 5_000) as usize,
        ..veil_audit::AuditSettings::default()
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

/// "median X, p99 Y, max Z" of `samples` (sorted in place).
pub fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "median {:?}, p99 {:?}, max {:?} (n = {})",
        percentile(samples, 0.5),
        percentile(samples, 0.99),
        samples[samples.len() - 1],
        samples.len()
    )
}
