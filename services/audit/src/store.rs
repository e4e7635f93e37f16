//! SQL of the audit schema: entries and the pending queue (the tree is in [`tree`]).

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

pub mod tree;

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

/// An event as received: its index is assigned when the writer appends it.
pub struct NewEntry<'a> {
    pub event_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub subject_ref: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub event_type: &'a str,
    pub occurred_at: time::OffsetDateTime,
    pub envelope: &'a [u8],
}

/// Queues events for the writer in arrival order with one insert; returns how many were
/// new (the others were queued before: a redelivery).
pub async fn enqueue_many(conn: &mut PgConnection, entries: &[NewEntry<'_>]) -> sqlx::Result<u64> {
    if entries.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = entries.iter().map(|e| e.event_id).collect();
    let tenants: Vec<Option<Uuid>> = entries.iter().map(|e| e.tenant_id).collect();
    let subjects: Vec<Option<&str>> = entries.iter().map(|e| e.subject_ref).collect();
    let actors: Vec<Option<&str>> = entries.iter().map(|e| e.actor_id).collect();
    let types: Vec<&str> = entries.iter().map(|e| e.event_type).collect();
    let times: Vec<time::OffsetDateTime> = entries.iter().map(|e| e.occurred_at).collect();
    let envelopes: Vec<&[u8]> = entries.iter().map(|e| e.envelope).collect();
    // ORDER BY the ordinality: queue positions (`seq`) follow the batch's order.
    let done = sqlx::query(
        "INSERT INTO pending (event_id, tenant_id, subject_ref, actor_id, event_type,
                              occurred_at, envelope)
         SELECT id, tenant, subject, actor, kind, at, envelope
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::bytea[])
              WITH ORDINALITY AS u(id, tenant, subject, actor, kind, at, envelope, ord)
         ORDER BY ord
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&tenants)
    .bind(&subjects)
    .bind(&actors)
    .bind(&types)
    .bind(&times)
    .bind(&envelopes)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
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

/// Filters of [`query`]; every set filter must match.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// None: every tenant.
    pub tenant: Option<Uuid>,
    pub subject_ref: Option<String>,
    pub actor_id: Option<String>,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub occurred_from: Option<time::OffsetDateTime>,
    pub occurred_until: Option<time::OffsetDateTime>,
    /// Only entries after this index (-1 for the start).
    pub after: i64,
    pub limit: i64,
}

/// The conditions of an [`EntryFilter`] as `$1` to `$7` (see [`bind_filter`]).
macro_rules! entry_filter {
    () => {
        "WHERE ($1::uuid IS NULL OR tenant_id = $1)
           AND ($2::text IS NULL OR subject_ref = $2)
           AND ($3::text IS NULL OR actor_id = $3)
           AND (cardinality($4::text[]) = 0 OR event_type = ANY($4))
           AND ($5::timestamptz IS NULL OR occurred_at >= $5)
           AND ($6::timestamptz IS NULL OR occurred_at < $6)
           AND idx > $7"
    };
}

/// Binds `filter` to the parameters of [`entry_filter`].
fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    filter: &'q EntryFilter,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(filter.tenant)
        .bind(&filter.subject_ref)
        .bind(&filter.actor_id)
        .bind(&filter.event_types)
        .bind(filter.occurred_from)
        .bind(filter.occurred_until)
        .bind(filter.after)
}

/// Entries matching `filter`, oldest (lowest index) first.
pub async fn query(db: impl PgExecutor<'_>, filter: &EntryFilter) -> sqlx::Result<Vec<EntryRow>> {
    let query = sqlx::query_as(concat!(
        "SELECT idx, event_id, tenant_id, subject_ref, event_type, occurred_at, appended_at,
                envelope, leaf_hash
         FROM entries ",
        entry_filter!(),
        " ORDER BY idx LIMIT $8"
    ));
    bind_filter(query, filter)
        .bind(filter.limit)
        .fetch_all(db)
        .await
}

/// How many distinct subjects the entries matching `filter` name (its limit aside),
/// counted by Postgres: a report over a long period must not hold every subject in
/// memory.
pub async fn distinct_subjects(db: impl PgExecutor<'_>, filter: &EntryFilter) -> sqlx::Result<i64> {
    let query = sqlx::query_as(concat!(
        "SELECT count(DISTINCT subject_ref) FROM entries ",
        entry_filter!()
    ));
    let (count,): (i64,) = bind_filter(query, filter).fetch_one(db).await?;
    Ok(count)
}
