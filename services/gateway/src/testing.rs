//! Fixtures of the unit tests that write turns against a real database.
#![allow(clippy::unwrap_used)]

use sqlx::PgPool;
use uuid::Uuid;
use veil_testkit::TestDb;

use crate::store::TurnWrite;

/// A stored turn of "subject" in `conversation`, begun now.
pub fn turn(tenant: Uuid, conversation: &str, message_id: Uuid) -> TurnWrite {
    TurnWrite {
        message_id,
        tenant,
        conversation_id: conversation.into(),
        subject_ref: "subject".into(),
        role: 1,
        redacted_text: "Hello <PERSON_1>".into(),
        entity_counts: r#"{"PERSON":1}"#.into(),
        purposes: vec!["support".into()],
        store: true,
        placeholders: Vec::new(),
        events: Vec::new(),
        restricted: None,
        known: Vec::new(),
        answer: None,
        erased_after: time::OffsetDateTime::now_utc(),
    }
}

/// A fresh gateway schema with one tenant (the database lives as long as the guard).
pub async fn gateway_with_tenant() -> (TestDb, PgPool, Uuid) {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool("gateway").await.unwrap();
    crate::MIGRATOR.run(&pool).await.unwrap();
    veil_core::events::ensure_tables(&pool).await.unwrap();
    let tenant = Uuid::now_v7();
    sqlx::query("INSERT INTO tenants (tenant_id, name, slug) VALUES ($1, 'T', 't')")
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
    (db, pool, tenant)
}
