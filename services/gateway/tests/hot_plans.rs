//! Plans of the statements every ProcessMessage runs: the batched read of the
//! restriction and the placeholders, and the batched turn write. The gateway runs them on connections
//! with generic plans (a batch's arrays change length on every call, and Postgres would
//! otherwise re-plan most calls); among many conversations of one tenant, each must find
//! its conversation's (or subject's) rows by index, not scan the tenant's rows.
#![allow(clippy::unwrap_used)]

use veil_testkit::TestDb;
use veil_testkit::plans::{assert_reads_by, generic_plan, scan_conditions};

/// Conversations of the grown tenant, ten turns and ten placeholders each.
const CONVERSATIONS: i32 = 2_000;

#[tokio::test(flavor = "multi_thread")]
async fn per_message_statements_find_one_conversation_among_many() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let pool = db.pool("gateway").await?;
    veil_gateway::MIGRATOR.run(&pool).await?;
    veil_core::events::ensure_tables(&pool).await?;
    let tenant = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO tenants (tenant_id, name, slug) VALUES ($1, 'Plans', 'plans')")
        .bind(tenant)
        .execute(&pool)
        .await?;
    let mut conn = pool.acquire().await?;
    for state in ["never analyzed", "analyzed", "analyzed while small"] {
        match state {
            "never analyzed" => grow(&mut conn, tenant, CONVERSATIONS).await?,
            "analyzed" => analyze(&mut conn).await?,
            _ => {
                // One conversation, statistics of that, then many conversations again.
                for table in [
                    "transcript_messages",
                    "conversation_pseudonyms",
                    "subject_restrictions",
                    "message_replays",
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                        .execute(&mut *conn)
                        .await?;
                }
                grow(&mut conn, tenant, 1).await?;
                analyze(&mut conn).await?;
                grow(&mut conn, tenant, CONVERSATIONS).await?;
            }
        }
        let mut statements = vec![
            (
                veil_gateway::WRITE_TURNS_SQL,
                "transcript_messages",
                "conversation_id = ",
            ),
            (
                veil_gateway::WRITE_TURNS_SQL,
                "conversation_pseudonyms",
                "conversation_id = ",
            ),
        ];
        // Statistics taken while the tenant was small make any read look cheap, and the
        // placeholder and restriction reads then go through an index on the tenant
        // alone (the write's restriction check even scans the table of restricted
        // subjects, which is small in all but this test). That lasts until autovacuum
        // analyzes again (after 10 % of the rows changed), for the unbatched reads these
        // replaced too; the turn write finds the next index and its placeholders by the
        // conversation's key even then.
        if state != "analyzed while small" {
            statements.push((
                veil_gateway::WRITE_TURNS_SQL,
                "subject_restrictions",
                "subject_ref = ",
            ));
            statements.push((
                veil_gateway::TURN_STATE_SQL,
                "conversation_pseudonyms",
                "conversation_id = ",
            ));
            statements.push((
                veil_gateway::TURN_STATE_SQL,
                "subject_restrictions",
                "subject_ref = ",
            ));
        }
        // A keyed turn's answer reaches its claim's row (and learns whether the claim is
        // still its call's) through the upsert's arbiter index, which no plan shows: no
        // scan of message_replays the planner could choose (an UPDATE joined to the
        // batch, or a lookup by the key, was planned as a scan while the table was small).
        let plan = generic_plan(&mut conn, veil_gateway::WRITE_TURNS_SQL).await?;
        let replays = scan_conditions(&plan, "message_replays");
        assert!(replays.is_empty(), "{state}: {replays:?}; plan: {plan:#}");
        for (sql, relation, lookup) in statements {
            let plan = generic_plan(&mut conn, sql).await?;
            assert_reads_by(&plan, relation, &[lookup], state);
        }
    }
    Ok(())
}

/// Adds `conversations` conversations of ten turns, ten placeholders and ten keyed
/// messages' claims each, and a restricted subject per conversation.
async fn grow(
    conn: &mut sqlx::PgConnection,
    tenant: uuid::Uuid,
    conversations: i32,
) -> anyhow::Result<()> {
    let seed = uuid::Uuid::now_v7().simple().to_string();
    let rows = [
        "INSERT INTO transcript_messages
             (message_id, tenant_id, conversation_id, subject_ref, turn_index, role,
              redacted_text, entity_counts)
         SELECT gen_random_uuid(), $1, $2 || (i / 10), $2 || (i / 10), i % 10, 1, 'Hi',
                '{}'
         FROM generate_series(0, $3 * 10 - 1) AS i",
        "INSERT INTO conversation_pseudonyms
             (tenant_id, conversation_id, subject_ref, token, placeholder, entity_type,
              number)
         SELECT $1, $2 || (i / 10), $2 || (i / 10), 'tok_' || i, '<PERSON_' || i % 10 || '>',
                'PERSON', i % 10
         FROM generate_series(0, $3 * 10 - 1) AS i",
        "INSERT INTO subject_restrictions (tenant_id, subject_ref)
         SELECT $1, $2 || i FROM generate_series(0, $3 - 1) AS i",
        "INSERT INTO message_replays
             (tenant_id, conversation_id, idempotency_key, subject_ref, fingerprint, claim)
         SELECT $1, $2 || (i / 10), 'key_' || i, $2 || (i / 10), '\\x00', gen_random_uuid()
         FROM generate_series(0, $3 * 10 - 1) AS i",
    ];
    for sql in rows {
        sqlx::query(sql)
            .bind(tenant)
            .bind(&seed)
            .bind(conversations)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn analyze(conn: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    sqlx::query(
        "ANALYZE transcript_messages, conversation_pseudonyms, subject_restrictions,
                 message_replays",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
