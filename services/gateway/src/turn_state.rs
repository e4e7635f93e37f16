//! What `ProcessMessage` reads before it writes a turn, in one statement for many
//! messages: whether the subject is restricted (GDPR Art. 18, see [`crate::restriction`])
//! and what the conversation's map already holds for the message's tokens.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::pseudonyms::{Known, Row};

/// What one message asks: its subject, and its conversation with its tokens (no
/// conversation when it has nothing to pseudonymize: then only the restriction is read).
pub struct Wanted<'a> {
    pub tenant: Uuid,
    pub subject_ref: &'a str,
    pub conversation: Option<&'a str>,
    pub tokens: &'a [String],
}

/// The answer for one message.
#[derive(Debug, Default)]
pub struct TurnState {
    pub restricted: bool,
    pub known: Known,
}

/// [`read_many`]'s statement (public for the plan test, tests/hot_plans.rs).
///
/// One row per message at least (the LEFT JOINs): map rows with a token are the
/// message's known placeholders, rows without one carry an entity type's highest
/// number. Each subject and conversation is looked up by its own index scans (LATERAL,
/// LIMIT keeps the restriction a per-subject subquery), whatever the plan.
pub const TURN_STATE_SQL: &str = "SELECT x.i, r.restricted IS NOT NULL AS restricted,
        f.token, f.placeholder, f.entity_type, f.number
    FROM UNNEST($1::uuid[], $2::text[], $3::text[])
         WITH ORDINALITY AS x(tenant_id, subject_ref, conversation_id, i)
    LEFT JOIN LATERAL (
        SELECT true AS restricted FROM subject_restrictions s
        WHERE s.tenant_id = x.tenant_id AND s.subject_ref = x.subject_ref
        LIMIT 1
    ) r ON true
    LEFT JOIN LATERAL (
        SELECT p.token, p.placeholder, p.entity_type, NULL::int AS number
        FROM conversation_pseudonyms p
        WHERE p.tenant_id = x.tenant_id AND p.conversation_id = x.conversation_id
          AND p.token = ANY (ARRAY(SELECT w.token
                                   FROM UNNEST($4::int8[], $5::text[]) AS w(i, token)
                                   WHERE w.i = x.i))
        UNION ALL
        SELECT NULL, NULL, p.entity_type, max(p.number)
        FROM conversation_pseudonyms p
        WHERE p.tenant_id = x.tenant_id AND p.conversation_id = x.conversation_id
        GROUP BY p.entity_type
    ) f ON true";

/// A row of [`TURN_STATE_SQL`], of the `i`-th message asked for (from 1).
#[derive(sqlx::FromRow)]
struct Found {
    i: i64,
    restricted: bool,
    token: Option<String>,
    placeholder: Option<String>,
    entity_type: Option<String>,
    number: Option<i32>,
}

/// [`TurnState`] for each of `wanted`, in order, in one round trip.
pub async fn read_many(
    db: impl PgExecutor<'_>,
    wanted: &[Wanted<'_>],
) -> sqlx::Result<Vec<TurnState>> {
    let tenants: Vec<Uuid> = wanted.iter().map(|w| w.tenant).collect();
    let subjects: Vec<&str> = wanted.iter().map(|w| w.subject_ref).collect();
    let conversations: Vec<Option<&str>> = wanted.iter().map(|w| w.conversation).collect();
    let mut token_of = Vec::new();
    let mut tokens = Vec::new();
    for (i, w) in (1_i64..).zip(wanted) {
        for token in w.tokens {
            token_of.push(i);
            tokens.push(token.as_str());
        }
    }
    let found: Vec<Found> = sqlx::query_as(TURN_STATE_SQL)
        .bind(&tenants)
        .bind(&subjects)
        .bind(&conversations)
        .bind(&token_of)
        .bind(&tokens)
        .fetch_all(db)
        .await?;
    let mut states: Vec<TurnState> = wanted.iter().map(|_| TurnState::default()).collect();
    for found in found {
        let Some(state) = usize::try_from(found.i - 1)
            .ok()
            .and_then(|i| states.get_mut(i))
        else {
            continue;
        };
        state.restricted = found.restricted;
        let Some(entity_type) = found.entity_type else {
            continue;
        };
        match (found.token, found.placeholder, found.number) {
            (Some(token), Some(placeholder), _) => state.known.rows.push(Row {
                token,
                placeholder,
                entity_type,
            }),
            (_, _, Some(number)) => {
                state.known.counters.insert(entity_type, number);
            }
            _ => {}
        }
    }
    Ok(states)
}
