//! SQL of the gateway schema.

use sqlx::PgExecutor;
use uuid::Uuid;
use veil_core::events::OutboxEvent;

/// A tenant row.
#[derive(Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub default_jurisdiction: i32,
    pub default_locale: String,
    pub created_at: time::OffsetDateTime,
}

/// Inserts a tenant; `None` when the slug is taken.
pub async fn insert_tenant(
    db: impl PgExecutor<'_>,
    name: &str,
    slug: &str,
    jurisdiction: i32,
    locale: &str,
) -> sqlx::Result<Option<TenantRow>> {
    sqlx::query_as(
        "INSERT INTO tenants (tenant_id, name, slug, default_jurisdiction, default_locale)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (slug) DO NOTHING
         RETURNING tenant_id, name, slug, default_jurisdiction, default_locale, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(slug)
    .bind(jurisdiction)
    .bind(locale)
    .fetch_optional(db)
    .await
}

/// Whether the tenant exists.
pub async fn tenant_exists(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)")
        .bind(tenant)
        .fetch_one(db)
        .await
}

/// A stored API key (hash only).
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub key_id: String,
    pub tenant_id: Uuid,
    pub secret_hash: Vec<u8>,
    pub roles: Vec<String>,
    pub expires_at: Option<time::OffsetDateTime>,
}

/// Stores a new key.
pub async fn insert_key(
    db: impl PgExecutor<'_>,
    key_id: &str,
    tenant: Uuid,
    name: &str,
    secret_hash: &[u8],
    roles: &[String],
    expires_at: Option<time::OffsetDateTime>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (key_id, tenant_id, name, secret_hash, roles, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key_id)
    .bind(tenant)
    .bind(name)
    .bind(secret_hash)
    .bind(roles)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The key if it exists, is not revoked and has not expired.
pub async fn active_key(db: impl PgExecutor<'_>, key_id: &str) -> sqlx::Result<Option<KeyRow>> {
    sqlx::query_as(
        "SELECT key_id, tenant_id, secret_hash, roles, expires_at FROM api_keys
         WHERE key_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(key_id)
    .fetch_optional(db)
    .await
}

/// A redacted turn to store.
pub struct NewTurn<'a> {
    pub message_id: Uuid,
    pub tenant: Uuid,
    pub conversation_id: &'a str,
    pub subject_ref: &'a str,
    pub role: i32,
    pub redacted_text: &'a str,
    pub entity_counts: serde_json::Value,
    /// Purposes the turn was processed for; retention sweeps per purpose select by them.
    pub purposes: &'a [String],
    /// False when consent says the turn must not be kept: only its index is computed.
    pub store: bool,
}

/// The conversation's new placeholders, as parallel columns.
#[derive(Default)]
pub struct NewPlaceholders<'a> {
    pub tokens: Vec<&'a str>,
    pub placeholders: Vec<&'a str>,
    pub entity_types: Vec<&'a str>,
    pub numbers: Vec<i32>,
}

/// Writes everything a turn leaves behind in ONE statement, which Postgres runs
/// atomically without an explicit transaction (one round trip instead of six): the new
/// placeholders (a token already mapped by a concurrent turn keeps its row), the outbox
/// events, and the turn at the conversation's next index, which it returns. Concurrent
/// turns of one conversation are serialized by the unique (tenant, conversation, turn):
/// the loser fails with a unique violation and nothing of it is written.
pub async fn write_turn(
    db: impl PgExecutor<'_>,
    turn: &NewTurn<'_>,
    placeholders: &NewPlaceholders<'_>,
    events: &[OutboxEvent],
) -> sqlx::Result<i64> {
    let event_ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    let traceparents: Vec<Option<&str>> = events.iter().map(|e| e.traceparent.as_deref()).collect();
    sqlx::query_scalar(
        "WITH placeholders AS (
             INSERT INTO conversation_pseudonyms
                 (tenant_id, conversation_id, token, placeholder, entity_type, number,
                  subject_ref)
             SELECT $2, $3, t, p, e, n, $4
             FROM UNNEST($9::text[], $10::text[], $11::text[], $12::int[]) AS x(t, p, e, n)
             ON CONFLICT (tenant_id, conversation_id, token) DO NOTHING
         ), events AS (
             INSERT INTO outbox (event_id, subject, payload, traceparent)
             SELECT * FROM UNNEST($13::uuid[], $14::text[], $15::bytea[], $16::text[])
         ), next AS (
             SELECT COALESCE(MAX(turn_index) + 1, 0) AS turn_index FROM transcript_messages
             WHERE tenant_id = $2 AND conversation_id = $3
         ), stored AS (
             INSERT INTO transcript_messages
                 (message_id, tenant_id, conversation_id, subject_ref, turn_index, role,
                  redacted_text, entity_counts, purposes)
             SELECT $1, $2, $3, $4, turn_index, $5, $6, $7, $17 FROM next WHERE $8
         )
         SELECT turn_index FROM next",
    )
    .bind(turn.message_id)
    .bind(turn.tenant)
    .bind(turn.conversation_id)
    .bind(turn.subject_ref)
    .bind(turn.role)
    .bind(turn.redacted_text)
    .bind(&turn.entity_counts)
    .bind(turn.store)
    .bind(&placeholders.tokens)
    .bind(&placeholders.placeholders)
    .bind(&placeholders.entity_types)
    .bind(&placeholders.numbers)
    .bind(&event_ids)
    .bind(&subjects)
    .bind(&payloads)
    .bind(&traceparents)
    .bind(turn.purposes)
    .fetch_one(db)
    .await
}

/// The index the next turn of a conversation would get (for turns that are not stored).
pub async fn next_turn_index(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    conversation_id: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COALESCE(MAX(turn_index) + 1, 0) FROM transcript_messages
         WHERE tenant_id = $1 AND conversation_id = $2",
    )
    .bind(tenant)
    .bind(conversation_id)
    .fetch_one(db)
    .await
}

/// One stored turn.
#[derive(Debug, sqlx::FromRow)]
pub struct TurnRow {
    pub message_id: Uuid,
    pub turn_index: i64,
    pub role: i32,
    pub redacted_text: String,
    pub subject_ref: String,
    pub created_at: time::OffsetDateTime,
    /// Restricted by a retention sweep, or its subject is restricted.
    pub restricted: bool,
}

/// Up to `limit` turns of a conversation after `after` (exclusive), in order.
pub async fn turns(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    conversation_id: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<TurnRow>> {
    sqlx::query_as(
        "SELECT t.message_id, t.turn_index, t.role, t.redacted_text, t.subject_ref,
                t.created_at,
                t.restricted_at IS NOT NULL
                    OR EXISTS (SELECT 1 FROM subject_restrictions r
                               WHERE r.tenant_id = t.tenant_id
                                 AND r.subject_ref = t.subject_ref) AS restricted
         FROM transcript_messages t
         WHERE t.tenant_id = $1 AND t.conversation_id = $2 AND t.turn_index > $3
         ORDER BY t.turn_index LIMIT $4",
    )
    .bind(tenant)
    .bind(conversation_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}
