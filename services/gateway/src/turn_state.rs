//! What a message must know before it is minimized: whether its subject's processing is
//! restricted (GDPR Art. 18) and what its conversation's pseudonym map already holds.
//! One statement answers it for the messages of many concurrent calls.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::pseudonyms::{Known, Row};

/// A message's subject and conversation.
pub struct Query<'a> {
    pub tenant: Uuid,
    pub subject_ref: &'a str,
    pub conversation: &'a str,
}

/// The answer for one message.
#[derive(Debug, Default)]
pub struct TurnState {
    pub restricted: bool,
    pub known: Known,
}

/// A row of [`TURN_STATE_SQL`]: the `i`-th query's (from 1) restriction mark, or one of
/// its conversation's placeholders.
#[derive(sqlx::FromRow)]
struct Found {
    i: i64,
    restricted: bool,
    token: Option<String>,
    placeholder: Option<String>,
    entity_type: Option<String>,
    number: Option<i32>,
}

/// [`load_many`]'s statement (public for the plan test, tests/hot_plans.rs). Each
/// message's rows are found by their own index lookups: a LATERAL subquery with LIMIT
/// or OFFSET is never flattened into a join the planner could hash over a whole table.
pub const TURN_STATE_SQL: &str = "WITH x AS (
        SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY
            AS x(tenant_id, subject_ref, conversation_id, i)
    )
    SELECT x.i, r.restricted IS NOT NULL AS restricted, NULL::text AS token,
           NULL::text AS placeholder, NULL::text AS entity_type, NULL::int AS number
    FROM x LEFT JOIN LATERAL (
        SELECT true AS restricted FROM subject_restrictions s
        WHERE s.tenant_id = x.tenant_id AND s.subject_ref = x.subject_ref
        LIMIT 1
    ) r ON true
    UNION ALL
    SELECT x.i, false, p.token, p.placeholder, p.entity_type, p.number
    FROM x CROSS JOIN LATERAL (
        SELECT p.token, p.placeholder, p.entity_type, p.number
        FROM conversation_pseudonyms p
        WHERE p.tenant_id = x.tenant_id AND p.conversation_id = x.conversation_id
        OFFSET 0
    ) p";

/// [`TurnState`] for each query, in order, in one round trip.
pub async fn load_many(
    db: impl PgExecutor<'_>,
    queries: &[Query<'_>],
) -> sqlx::Result<Vec<TurnState>> {
    let tenants: Vec<Uuid> = queries.iter().map(|q| q.tenant).collect();
    let subjects: Vec<&str> = queries.iter().map(|q| q.subject_ref).collect();
    let conversations: Vec<&str> = queries.iter().map(|q| q.conversation).collect();
    let found: Vec<Found> = sqlx::query_as(TURN_STATE_SQL)
        .bind(&tenants)
        .bind(&subjects)
        .bind(&conversations)
        .fetch_all(db)
        .await?;
    let mut states: Vec<TurnState> = queries.iter().map(|_| TurnState::default()).collect();
    for found in found {
        let Some(state) = usize::try_from(found.i - 1)
            .ok()
            .and_then(|i| states.get_mut(i))
        else {
            continue;
        };
        match (
            found.token,
            found.placeholder,
            found.entity_type,
            found.number,
        ) {
            (Some(token), Some(placeholder), Some(entity_type), Some(number)) => {
                let row = Row {
                    token,
                    placeholder,
                    entity_type,
                };
                state.known.add(row, number);
            }
            _ => state.restricted |= found.restricted,
        }
    }
    Ok(states)
}
