//! SQL of the token index.

use std::collections::HashSet;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Token rows to store, as parallel columns (one `UNNEST` insert per batch). Tokens are
/// the 16 MAC bytes, subject refs the 32 digest bytes (see the 0002 migration).
#[derive(Default)]
pub struct TokenRows {
    pub tokens: Vec<Vec<u8>>,
    pub subject_refs: Vec<Vec<u8>>,
    pub entity_types: Vec<String>,
    pub sealed_values: Vec<Option<Vec<u8>>>,
}

/// Inserts token rows (unique per subject and token); an existing one-way row gains the
/// sealed value when one is given. Returns the `(token, subject_ref)` byte pairs that
/// were new.
pub async fn insert_tokens(
    tx: &mut PgConnection,
    tenant: Uuid,
    rows: &TokenRows,
) -> sqlx::Result<HashSet<(Vec<u8>, Vec<u8>)>> {
    let created: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "INSERT INTO tokens AS t (tenant_id, token, subject_ref, entity_type, sealed_value)
         SELECT $1, * FROM UNNEST($2::bytea[], $3::bytea[], $4::text[], $5::bytea[])
         ON CONFLICT (tenant_id, subject_ref, token) DO UPDATE
             SET sealed_value = EXCLUDED.sealed_value
             WHERE t.sealed_value IS NULL AND EXCLUDED.sealed_value IS NOT NULL
         RETURNING token, subject_ref, (xmax = 0) AS created",
    )
    .bind(tenant)
    .bind(&rows.tokens)
    .bind(&rows.subject_refs)
    .bind(&rows.entity_types)
    .bind(&rows.sealed_values)
    .fetch_all(tx)
    .await?
    .into_iter()
    .filter_map(|(token, subject, created): (Vec<u8>, Vec<u8>, bool)| {
        created.then_some((token, subject))
    })
    .collect::<Vec<_>>();
    Ok(created.into_iter().collect())
}

/// The statement of [`insert_tokens_under_keys`], public so a test can check its plan.
/// Each subject's key row is read by the full primary key in a LATERAL subquery (a
/// plain join, or `= ANY`, was planned as a scan of every key of the tenant); so is
/// its erasure fence.
pub const TOKENS_UNDER_KEYS_SQL: &str = "WITH keys AS (
     SELECT k.key_id
     FROM UNNEST($6::text[], $7::uuid[]) AS c(subject_ref, key_id)
     JOIN LATERAL (SELECT key_id FROM subject_keys
                   WHERE tenant_id = $1 AND subject_ref = c.subject_ref
                   FOR KEY SHARE) k ON k.key_id = c.key_id
 ), fenced AS (
     SELECT 1 FROM UNNEST($6::text[]) AS c(subject_ref)
     JOIN LATERAL (SELECT 1 FROM subject_erasures
                   WHERE tenant_id = $1 AND subject_ref = c.subject_ref
                     AND erased_at > $8) e ON true
 ), checked AS (
     SELECT count(*) = cardinality($7::uuid[]) AND NOT EXISTS (SELECT 1 FROM fenced) AS ok
     FROM keys
 ), written AS (
     INSERT INTO tokens AS t (tenant_id, token, subject_ref, entity_type, sealed_value)
     SELECT $1, u.token, u.subject_ref, u.entity_type, u.sealed_value
     FROM UNNEST($2::bytea[], $3::bytea[], $4::text[], $5::bytea[])
          AS u(token, subject_ref, entity_type, sealed_value), checked
     WHERE checked.ok
     ON CONFLICT (tenant_id, subject_ref, token) DO UPDATE
         SET sealed_value = EXCLUDED.sealed_value
         WHERE t.sealed_value IS NULL AND EXCLUDED.sealed_value IS NOT NULL
     RETURNING t.token, t.subject_ref, (t.xmax = 0) AS created
 )
 SELECT (SELECT ok FROM checked),
        COALESCE((SELECT array_agg(token) FROM written WHERE created), '{}'),
        COALESCE((SELECT array_agg(subject_ref) FROM written WHERE created), '{}')";

/// [`insert_tokens`] in one autocommit statement for values sealed under cached data
/// keys: the keys' rows are key-share locked and the rows go in only if every subject
/// still has the key it was sealed under (`key_ids[i]` for `subjects[i]`, distinct) and
/// none was shredded after `since`. `None` when a key is gone or was replaced (a shred,
/// perhaps a concurrent one: its delete and this lock wait for each other) or a subject
/// was shredded since (the general path tells the caller); nothing is written then.
/// Saves the transaction's BEGIN, key read and COMMIT round trips of the general path.
pub async fn insert_tokens_under_keys(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    rows: &TokenRows,
    subjects: &[&str],
    key_ids: &[Uuid],
    since: time::OffsetDateTime,
) -> sqlx::Result<Option<HashSet<(Vec<u8>, Vec<u8>)>>> {
    let (ok, tokens, subject_refs): (bool, Vec<Vec<u8>>, Vec<Vec<u8>>) =
        sqlx::query_as(TOKENS_UNDER_KEYS_SQL)
            .bind(tenant)
            .bind(&rows.tokens)
            .bind(&rows.subject_refs)
            .bind(&rows.entity_types)
            .bind(&rows.sealed_values)
            .bind(subjects)
            .bind(key_ids)
            .bind(since)
            .fetch_one(db)
            .await?;
    Ok(ok.then(|| tokens.into_iter().zip(subject_refs).collect()))
}

/// A stored token with its sealed value and the keys needed to open it.
#[derive(Debug, sqlx::FromRow)]
pub struct TokenEntry {
    pub token: Vec<u8>,
    pub subject_ref: String,
    pub entity_type: String,
    pub sealed_value: Option<Vec<u8>>,
    pub key_id: Uuid,
    pub kek_version: i32,
    pub wrapped: Vec<u8>,
    pub kek_master_version: i32,
    pub kek_wrapped: Vec<u8>,
}

/// The columns and joins of a token lookup: the entry with its subject's key and the
/// tenant key that wraps it.
macro_rules! lookup_from {
    () => {
        "SELECT tk.token, k.subject_ref, tk.entity_type, tk.sealed_value,
                k.key_id, k.kek_version, k.wrapped,
                t.master_version AS kek_master_version, t.wrapped AS kek_wrapped
         FROM tokens tk
         JOIN subject_keys k ON k.tenant_id = tk.tenant_id
                            AND k.subject_ref = encode(tk.subject_ref, 'hex')
         JOIN tenant_keys t ON t.tenant_id = k.tenant_id AND t.purpose = 'tenant_kek'
                           AND t.version = k.kek_version"
    };
}

/// [`lookup`] of one subject's tokens (public for the plan test, tests/key_plans.rs): by
/// primary key. Equal values give equal tokens in a tenant, so a common value has a
/// row per subject that said it; a lookup by token alone reads all of them.
pub const LOOKUP_FOR_SUBJECT_SQL: &str = concat!(
    lookup_from!(),
    " WHERE tk.tenant_id = $1 AND tk.subject_ref = $3 AND tk.token = ANY($2)
        AND tk.sealed_value IS NOT NULL"
);

/// [`lookup`] of tokens whoever holds them (a privacy officer's reveal).
const LOOKUP_ANY_SUBJECT_SQL: &str = concat!(
    lookup_from!(),
    " WHERE tk.tenant_id = $1 AND tk.token = ANY($2) AND tk.sealed_value IS NOT NULL"
);

/// Entries of `tokens` (of one subject when given), with their keys read in the same
/// statement. Tokens of a shredded subject are gone with its key.
pub async fn lookup(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    tokens: &[Vec<u8>],
    subject_ref: Option<&[u8]>,
) -> sqlx::Result<Vec<TokenEntry>> {
    let query = match subject_ref {
        Some(subject_ref) => sqlx::query_as(LOOKUP_FOR_SUBJECT_SQL)
            .bind(tenant)
            .bind(tokens)
            .bind(subject_ref),
        None => sqlx::query_as(LOOKUP_ANY_SUBJECT_SQL)
            .bind(tenant)
            .bind(tokens),
    };
    query.fetch_all(db).await
}

/// A subject's token entries for export, in token order after `after`.
pub async fn subject_page(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &[u8],
    after: Option<&[u8]>,
    limit: i64,
) -> sqlx::Result<Vec<(Vec<u8>, String, Option<Vec<u8>>)>> {
    sqlx::query_as(
        "SELECT token, entity_type, sealed_value FROM tokens
         WHERE tenant_id = $1 AND subject_ref = $2 AND ($3::bytea IS NULL OR token > $3)
         ORDER BY token LIMIT $4",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes every token of a subject (one indexed delete); returns how many.
pub async fn delete_subject_tokens(
    tx: &mut PgConnection,
    tenant: Uuid,
    subject_ref: &[u8],
) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM tokens WHERE tenant_id = $1 AND subject_ref = $2")
        .bind(tenant)
        .bind(subject_ref)
        .execute(tx)
        .await?;
    Ok(done.rows_affected())
}

/// The stored form of a subject ref: its 32 digest bytes.
pub fn subject_bytes(subject_ref: &str) -> Vec<u8> {
    // Subject refs are validated 64-character lowercase hex, so decoding cannot fail;
    // an empty vector would match nothing.
    hex::decode(subject_ref).unwrap_or_default()
}
