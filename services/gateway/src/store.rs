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

/// Everything one turn leaves behind: the redacted turn, its new placeholders and its
/// outbox events.
pub struct TurnWrite {
    pub message_id: Uuid,
    pub tenant: Uuid,
    pub conversation_id: String,
    pub subject_ref: String,
    pub role: i32,
    pub redacted_text: String,
    /// Entity type -> count, as a JSON object.
    pub entity_counts: String,
    /// Purposes the turn was processed for; retention sweeps per purpose select by them.
    pub purposes: Vec<String>,
    /// False when consent says the turn must not be kept: only its index is computed.
    pub store: bool,
    pub placeholders: Vec<NewPlaceholder>,
    pub events: Vec<OutboxEvent>,
    /// Whether the turn was built on the subject being restricted; when given, a turn
    /// whose subject's restriction differs now is stale (not written).
    pub restricted: Option<bool>,
    /// The conversation's rows (token, placeholder) the turn's map took as stored; a turn
    /// one of which is gone now is stale.
    pub known: Vec<(String, String)>,
    /// A keyed call's answer, kept with the turn.
    pub answer: Option<TurnAnswer>,
    /// An erasure of the subject after this time refuses the turn: the call's start, less
    /// the clock skew allowed between replicas (see the 0009 migration).
    pub erased_after: time::OffsetDateTime,
}

/// The answer of a call with an idempotency key, written by its turn's statement under the
/// call's claim (see `pipeline::replays`), so that no turn is written without it.
#[derive(Clone)]
pub struct TurnAnswer {
    pub idempotency_key: String,
    /// The claim's fingerprint, for a row that is gone (erased meanwhile) to come back
    /// whole.
    pub fingerprint: Vec<u8>,
    pub claim: Uuid,
    /// The answer, sealed; the turn's message id and index are stored beside it.
    pub sealed: Vec<u8>,
    /// Nothing after the turn changes the answer: a retry may be given it at once.
    pub settled: bool,
}

/// A placeholder the conversation gets with a turn.
#[derive(Clone)]
pub struct NewPlaceholder {
    pub token: String,
    pub placeholder: String,
    pub entity_type: String,
    pub number: i32,
    /// The turn was built on the map's word that the conversation has no row of this
    /// token: if a turn written since has one, the turn is stale (not written).
    pub token_is_new: bool,
    /// Likewise for the placeholder (a new number, not another spelling's placeholder):
    /// two values must never share a placeholder. The row is stored as the placeholder's
    /// introduction, unique per conversation.
    pub placeholder_is_new: bool,
}

impl NewPlaceholder {
    /// A row for `token`, numbered from its placeholder (`<PERSON_3>` is number 3).
    pub fn new(token: &str, placeholder: String, entity_type: &str) -> Self {
        Self {
            token: token.to_string(),
            number: crate::pseudonyms::number_of(&placeholder).unwrap_or(0),
            placeholder,
            entity_type: entity_type.to_string(),
            token_is_new: false,
            placeholder_is_new: false,
        }
    }
}

/// [`write_turns`]' statement (public for the plan test, tests/hot_plans.rs).
pub const WRITE_TURNS_SQL: &str = "WITH input AS (
        SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int[],
                             $6::text[], $7::text[], $8::text[], $9::bool[], $24::bool[])
                      WITH ORDINALITY
            AS x(message_id, tenant_id, conversation_id, subject_ref, role,
                 redacted_text, entity_counts, purposes, store, restricted, n)
    ), fence AS (
        -- Takes the subjects' erasure locks (shared) and reads their fences; every
        -- write below depends on it, so runs after it.
        SELECT erased_since($2::uuid[], $4::text[], $35::timestamptz[]) AS erased
    ), new_rows AS (
        SELECT * FROM UNNEST($10::uuid[], $11::text[], $12::text[], $13::text[],
                             $14::text[], $15::text[], $16::int[], $17::bool[], $18::bool[])
            AS n(tenant_id, conversation_id, subject_ref, token, placeholder, entity_type,
                 number, token_is_new, placeholder_is_new)
    ), stale AS (
        -- LIMIT keeps each lookup a subquery run per row by index: as a plain EXISTS,
        -- statistics of a small table made it a hashed scan of the whole table.
        SELECT n.tenant_id, n.conversation_id FROM new_rows n CROSS JOIN LATERAL (
            (SELECT 1 FROM conversation_pseudonyms p
             WHERE n.token_is_new AND p.tenant_id = n.tenant_id
               AND p.conversation_id = n.conversation_id AND p.token = n.token
             LIMIT 1)
            UNION ALL
            (SELECT 1 FROM conversation_pseudonyms p
             WHERE n.placeholder_is_new AND p.tenant_id = n.tenant_id
               AND p.conversation_id = n.conversation_id AND p.placeholder = n.placeholder
             LIMIT 1)
        ) taken
        UNION ALL
        -- A row the turn took as known is gone (purged since): its placeholder would
        -- restore to nothing.
        SELECT k.tenant_id, k.conversation_id
        FROM UNNEST($25::uuid[], $26::text[], $27::text[], $28::text[])
            AS k(tenant_id, conversation_id, token, placeholder)
        LEFT JOIN LATERAL (
            SELECT 1 AS found FROM conversation_pseudonyms p
            WHERE p.tenant_id = k.tenant_id AND p.conversation_id = k.conversation_id
              AND p.token = k.token AND p.placeholder = k.placeholder
            LIMIT 1
        ) f ON true
        WHERE f.found IS NULL
    ), checked AS (
        SELECT input.*, EXISTS (
            SELECT 1 FROM stale s
            WHERE s.tenant_id = input.tenant_id AND s.conversation_id = input.conversation_id
        ) OR (
            -- Built on the subject's restriction as it was (when the turn says so).
            input.restricted IS NOT NULL AND input.restricted <> (
                (SELECT true FROM subject_restrictions r
                 WHERE r.tenant_id = input.tenant_id AND r.subject_ref = input.subject_ref
                 LIMIT 1) IS NOT NULL)
        ) AS stale, (SELECT f.erased[input.n] FROM fence f) AS erased
        FROM input
    ), next AS (
        SELECT checked.*, n.turn_index FROM checked CROSS JOIN LATERAL (
            SELECT COALESCE(MAX(m.turn_index) + 1, 0) AS turn_index
            FROM transcript_messages m
            WHERE m.tenant_id = checked.tenant_id
              AND m.conversation_id = checked.conversation_id) n
    ), answers AS (
        -- A keyed turn's answer goes into its claim's row. The upsert finds the row
        -- through its key's index whatever the statistics say (an UPDATE joined to the
        -- input, or a lookup by the key, was planned as a scan of the whole table while
        -- it was small), and returns the claims it found still held.
        INSERT INTO message_replays AS r
            (tenant_id, conversation_id, idempotency_key, subject_ref, fingerprint, claim,
             turn_answer, turn_message_id, turn_index, settled)
        SELECT next.tenant_id, next.conversation_id, a.idempotency_key, next.subject_ref,
               a.fingerprint, a.claim, a.answer,
               CASE WHEN next.store THEN next.message_id END, next.turn_index, a.settled
        FROM UNNEST($29::uuid[], $30::text[], $31::bytea[], $32::uuid[], $33::bytea[],
                    $34::bool[])
            AS a(message_id, idempotency_key, fingerprint, claim, answer, settled)
        JOIN next ON next.message_id = a.message_id AND NOT next.stale AND NOT next.erased
        ON CONFLICT (tenant_id, conversation_id, idempotency_key) DO UPDATE
            SET turn_answer = EXCLUDED.turn_answer,
                turn_message_id = EXCLUDED.turn_message_id,
                turn_index = EXCLUDED.turn_index, settled = EXCLUDED.settled
            WHERE r.claim = EXCLUDED.claim
        RETURNING r.claim
    ), lost AS (
        -- A keyed turn whose claim is no longer its call's (a retry took the key over
        -- after the claim's timeout, this call being stuck that long) is not written.
        SELECT a.message_id FROM UNNEST($29::uuid[], $32::uuid[]) AS a(message_id, claim)
        WHERE a.message_id IN (SELECT message_id FROM next WHERE NOT stale AND NOT erased)
          AND a.claim NOT IN (SELECT claim FROM answers)
    ), landing AS (
        SELECT message_id, tenant_id, conversation_id FROM next
        WHERE NOT stale AND NOT erased AND message_id NOT IN (SELECT message_id FROM lost)
    ), placeholders AS (
        INSERT INTO conversation_pseudonyms
            (tenant_id, conversation_id, subject_ref, token, placeholder, entity_type,
             number, introduces)
        SELECT n.tenant_id, n.conversation_id, n.subject_ref, n.token, n.placeholder,
               n.entity_type, n.number, n.placeholder_is_new
        FROM new_rows n
        WHERE EXISTS (SELECT 1 FROM landing l WHERE l.tenant_id = n.tenant_id
                                                AND l.conversation_id = n.conversation_id)
        ON CONFLICT (tenant_id, conversation_id, token) DO NOTHING
    ), events AS (
        INSERT INTO outbox (event_id, subject, payload, traceparent)
        SELECT e.event_id, e.subject, e.payload, e.traceparent
        FROM UNNEST($19::uuid[], $20::text[], $21::bytea[], $22::text[], $23::uuid[])
            AS e(event_id, subject, payload, traceparent, message_id)
        WHERE e.message_id IN (SELECT message_id FROM landing)
    ), stored AS (
        INSERT INTO transcript_messages
            (message_id, tenant_id, conversation_id, subject_ref, turn_index, role,
             redacted_text, entity_counts, purposes)
        SELECT message_id, tenant_id, conversation_id, subject_ref, turn_index, role,
               redacted_text, entity_counts::jsonb,
               ARRAY(SELECT jsonb_array_elements_text(purposes::jsonb))
        FROM next WHERE store AND message_id IN (SELECT message_id FROM landing)
    )
    SELECT message_id, turn_index, stale, message_id IN (SELECT message_id FROM lost), erased
    FROM next";

/// Where a turn of [`write_turns`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landed {
    /// Written at this index of its conversation.
    At(i64),
    /// Not written: what it was built on no longer holds (see [`write_turns`]).
    Stale,
    /// Not written: its call's claim of the idempotency key is gone (see [`TurnAnswer`]).
    ClaimLost,
    /// Not written: its subject was erased after its call began (see
    /// [`TurnWrite::erased_after`]).
    Erased,
}

/// Writes `turns` in ONE statement, which Postgres runs atomically without an explicit
/// transaction: the new placeholders (a token already mapped by a concurrent turn keeps
/// its row), the outbox events, each turn at its conversation's next index and a keyed
/// call's answer ([`TurnAnswer`]). Returns per turn, in the order of `turns` (which must
/// name each conversation at most once), where it went: its index, or
/// [`Landed::Stale`] when what it was built on no longer holds (a turn written since
/// took a token or placeholder the turn believed new, see [`NewPlaceholder`]; a row it
/// took as stored is gone; or its subject's restriction changed, see [`TurnWrite`]),
/// [`Landed::ClaimLost`] or [`Landed::Erased`]; nothing of such a turn is written. Concurrent turns of one
/// conversation are serialized by the unique (tenant, conversation, turn), and writers that introduce the
/// same placeholder (also those that store no turn) by the unique index over
/// introductions: the loser fails with a unique violation and nothing of the statement
/// is written; tried again, it sees the winner's rows.
pub async fn write_turns(
    db: impl PgExecutor<'_>,
    turns: &[&TurnWrite],
) -> sqlx::Result<Vec<Landed>> {
    let mut t = TurnColumns::default();
    for turn in turns {
        t.push(turn)?;
    }
    let rows: Vec<(Uuid, i64, bool, bool, bool)> = sqlx::query_as(WRITE_TURNS_SQL)
        .bind(&t.message_ids)
        .bind(&t.tenants)
        .bind(&t.conversations)
        .bind(&t.subject_refs)
        .bind(&t.roles)
        .bind(&t.texts)
        .bind(&t.entity_counts)
        .bind(&t.purposes)
        .bind(&t.store)
        .bind(&t.p_tenants)
        .bind(&t.p_conversations)
        .bind(&t.p_subject_refs)
        .bind(&t.p_tokens)
        .bind(&t.p_placeholders)
        .bind(&t.p_entity_types)
        .bind(&t.p_numbers)
        .bind(&t.p_token_is_new)
        .bind(&t.p_placeholder_is_new)
        .bind(&t.event_ids)
        .bind(&t.event_subjects)
        .bind(&t.event_payloads)
        .bind(&t.event_traceparents)
        .bind(&t.event_turns)
        .bind(&t.restricted)
        .bind(&t.k_tenants)
        .bind(&t.k_conversations)
        .bind(&t.k_tokens)
        .bind(&t.k_placeholders)
        .bind(&t.a_turns)
        .bind(&t.a_keys)
        .bind(&t.a_fingerprints)
        .bind(&t.a_claims)
        .bind(&t.a_sealed)
        .bind(&t.a_settled)
        .bind(&t.erased_after)
        .fetch_all(db)
        .await?;
    turns
        .iter()
        .map(|turn| {
            rows.iter()
                .find(|(id, ..)| *id == turn.message_id)
                .map(|&(_, index, stale, lost, erased)| {
                    if erased {
                        Landed::Erased
                    } else if lost {
                        Landed::ClaimLost
                    } else if stale {
                        Landed::Stale
                    } else {
                        Landed::At(index)
                    }
                })
                .ok_or(sqlx::Error::RowNotFound)
        })
        .collect()
}

/// [`write_turns`]' parameters: one array per column.
#[derive(Default)]
struct TurnColumns<'a> {
    message_ids: Vec<Uuid>,
    tenants: Vec<Uuid>,
    conversations: Vec<&'a str>,
    subject_refs: Vec<&'a str>,
    roles: Vec<i32>,
    texts: Vec<&'a str>,
    entity_counts: Vec<&'a str>,
    purposes: Vec<String>,
    store: Vec<bool>,
    p_tenants: Vec<Uuid>,
    p_conversations: Vec<&'a str>,
    p_subject_refs: Vec<&'a str>,
    p_tokens: Vec<&'a str>,
    p_placeholders: Vec<&'a str>,
    p_entity_types: Vec<&'a str>,
    p_numbers: Vec<i32>,
    p_token_is_new: Vec<bool>,
    p_placeholder_is_new: Vec<bool>,
    event_ids: Vec<Uuid>,
    event_subjects: Vec<&'a str>,
    event_payloads: Vec<&'a [u8]>,
    event_traceparents: Vec<Option<&'a str>>,
    event_turns: Vec<Uuid>,
    restricted: Vec<Option<bool>>,
    k_tenants: Vec<Uuid>,
    k_conversations: Vec<&'a str>,
    k_tokens: Vec<&'a str>,
    k_placeholders: Vec<&'a str>,
    a_turns: Vec<Uuid>,
    a_keys: Vec<&'a str>,
    a_fingerprints: Vec<&'a [u8]>,
    a_claims: Vec<Uuid>,
    a_sealed: Vec<&'a [u8]>,
    a_settled: Vec<bool>,
    erased_after: Vec<time::OffsetDateTime>,
}

impl<'a> TurnColumns<'a> {
    fn push(&mut self, turn: &'a TurnWrite) -> sqlx::Result<()> {
        self.message_ids.push(turn.message_id);
        self.tenants.push(turn.tenant);
        self.conversations.push(&turn.conversation_id);
        self.subject_refs.push(&turn.subject_ref);
        self.roles.push(turn.role);
        self.texts.push(&turn.redacted_text);
        self.entity_counts.push(&turn.entity_counts);
        // Arrays of arrays cannot be unnested row by row: each turn's list goes as JSON.
        self.purposes.push(
            serde_json::to_string(&turn.purposes).map_err(|e| sqlx::Error::Encode(e.into()))?,
        );
        self.store.push(turn.store);
        self.restricted.push(turn.restricted);
        self.erased_after.push(turn.erased_after);
        for (token, placeholder) in &turn.known {
            self.k_tenants.push(turn.tenant);
            self.k_conversations.push(&turn.conversation_id);
            self.k_tokens.push(token);
            self.k_placeholders.push(placeholder);
        }
        for p in &turn.placeholders {
            self.p_tenants.push(turn.tenant);
            self.p_conversations.push(&turn.conversation_id);
            self.p_subject_refs.push(&turn.subject_ref);
            self.p_tokens.push(&p.token);
            self.p_placeholders.push(&p.placeholder);
            self.p_entity_types.push(&p.entity_type);
            self.p_numbers.push(p.number);
            self.p_token_is_new.push(p.token_is_new);
            self.p_placeholder_is_new.push(p.placeholder_is_new);
        }
        for e in &turn.events {
            self.event_ids.push(e.event_id);
            self.event_subjects.push(&e.subject);
            self.event_payloads.push(&e.payload);
            self.event_traceparents.push(e.traceparent.as_deref());
            self.event_turns.push(turn.message_id);
        }
        if let Some(a) = &turn.answer {
            self.a_turns.push(turn.message_id);
            self.a_keys.push(&a.idempotency_key);
            self.a_fingerprints.push(&a.fingerprint);
            self.a_claims.push(a.claim);
            self.a_sealed.push(&a.sealed);
            self.a_settled.push(a.settled);
        }
        Ok(())
    }
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
