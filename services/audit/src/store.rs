//! SQL of the audit schema.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// One log entry as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct EntryRow {
    pub idx: i64,
    pub event_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub subject_ref: Option<String>,
    pub event_type: String,
    pub occurred_at: time::OffsetDateTime,
    pub appended_at: time::OffsetDateTime,
    pub envelope: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

/// A new entry; its index is assigned on append.
pub struct NewEntry<'a> {
    pub event_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub subject_ref: Option<&'a str>,
    pub event_type: &'a str,
    pub occurred_at: time::OffsetDateTime,
    pub envelope: &'a [u8],
    pub leaf_hash: &'a [u8],
}

/// Appends at the next index. The table lock serializes appenders so indexes stay
/// dense and ordered, which the Merkle log needs.
pub async fn append(conn: &mut PgConnection, entry: &NewEntry<'_>) -> sqlx::Result<i64> {
    sqlx::query("LOCK TABLE entries IN EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "INSERT INTO entries (idx, event_id, tenant_id, subject_ref, event_type, occurred_at,
                              envelope, leaf_hash)
         SELECT COALESCE(MAX(idx) + 1, 0), $1, $2, $3, $4, $5, $6, $7 FROM entries
         RETURNING idx",
    )
    .bind(entry.event_id)
    .bind(entry.tenant_id)
    .bind(entry.subject_ref)
    .bind(entry.event_type)
    .bind(entry.occurred_at)
    .bind(entry.envelope)
    .bind(entry.leaf_hash)
    .fetch_one(conn)
    .await
}

/// How an entry is addressed.
pub enum EntryKey {
    /// By leaf index.
    Index(i64),
    /// By event id.
    EventId(Uuid),
}

/// The entry, if it exists and belongs to `tenant` (None = any tenant).
pub async fn entry(
    db: impl PgExecutor<'_>,
    key: EntryKey,
    tenant: Option<Uuid>,
) -> sqlx::Result<Option<EntryRow>> {
    let (idx, event_id) = match key {
        EntryKey::Index(idx) => (Some(idx), None),
        EntryKey::EventId(id) => (None, Some(id)),
    };
    sqlx::query_as(
        "SELECT idx, event_id, tenant_id, subject_ref, event_type, occurred_at, appended_at,
                envelope, leaf_hash
         FROM entries
         WHERE ($1::bigint IS NULL OR idx = $1) AND ($2::uuid IS NULL OR event_id = $2)
           AND ($3::uuid IS NULL OR tenant_id = $3)",
    )
    .bind(idx)
    .bind(event_id)
    .bind(tenant)
    .fetch_optional(db)
    .await
}
