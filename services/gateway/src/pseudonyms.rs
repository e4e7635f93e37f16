//! Conversation pseudonym maps kept by the gateway: placeholder <-> vault token, never
//! the original value. A message's [`PseudonymMap`] is rebuilt from these rows plus the
//! values seen in the message, so the same value keeps its placeholder across turns.

use std::collections::{BTreeMap, HashMap};

use sqlx::PgExecutor;
use uuid::Uuid;
use veil_pii::PseudonymMap;

/// One stored placeholder.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub token: String,
    pub placeholder: String,
    pub entity_type: String,
}

/// A row of [`load_many`]'s query: a known placeholder, or an entity type's highest
/// number, of the `i`-th conversation asked for (from 1).
#[derive(sqlx::FromRow)]
struct Found {
    i: i64,
    token: Option<String>,
    placeholder: Option<String>,
    entity_type: String,
    number: Option<i32>,
}

/// What a message needs of its conversation's map: the rows of its tokens, and the
/// highest placeholder number per entity type.
#[derive(Debug, Default)]
pub struct Known {
    pub rows: Vec<Row>,
    pub counters: BTreeMap<String, i32>,
}

/// A conversation and the tokens a message brings to it.
pub struct Wanted<'a> {
    pub tenant: Uuid,
    pub conversation: &'a str,
    pub tokens: &'a [String],
}

/// [`load_many`]'s statement (public for the plan test, tests/hot_plans.rs).
pub const LOAD_MANY_SQL: &str = "SELECT x.i, f.token, f.placeholder, f.entity_type, f.number
    FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY AS x(tenant_id, conversation_id, i)
    CROSS JOIN LATERAL (
        SELECT p.token, p.placeholder, p.entity_type, NULL::int AS number
        FROM conversation_pseudonyms p
        WHERE p.tenant_id = x.tenant_id AND p.conversation_id = x.conversation_id
          AND p.token = ANY (ARRAY(SELECT w.token
                                   FROM UNNEST($3::int8[], $4::text[]) AS w(i, token)
                                   WHERE w.i = x.i))
        UNION ALL
        SELECT NULL, NULL, p.entity_type, max(p.number)
        FROM conversation_pseudonyms p
        WHERE p.tenant_id = x.tenant_id AND p.conversation_id = x.conversation_id
        GROUP BY p.entity_type
    ) f";

/// [`Known`] for each of `wanted`, in order, in one round trip (this runs for every
/// message that has values to pseudonymize, batched across concurrent messages). Each
/// conversation is looked up by its own index scans (LATERAL), whatever the plan.
pub async fn load_many(db: impl PgExecutor<'_>, wanted: &[Wanted<'_>]) -> sqlx::Result<Vec<Known>> {
    let tenants: Vec<Uuid> = wanted.iter().map(|w| w.tenant).collect();
    let conversations: Vec<&str> = wanted.iter().map(|w| w.conversation).collect();
    let mut token_of = Vec::new();
    let mut tokens = Vec::new();
    for (i, w) in (1_i64..).zip(wanted) {
        for token in w.tokens {
            token_of.push(i);
            tokens.push(token.as_str());
        }
    }
    // Rows with a token are a message's known placeholders; rows without one carry an
    // entity type's highest number.
    let found: Vec<Found> = sqlx::query_as(LOAD_MANY_SQL)
        .bind(&tenants)
        .bind(&conversations)
        .bind(&token_of)
        .bind(&tokens)
        .fetch_all(db)
        .await?;
    let mut known: Vec<Known> = wanted.iter().map(|_| Known::default()).collect();
    for Found {
        i,
        token,
        placeholder,
        entity_type,
        number,
    } in found
    {
        let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| known.get_mut(i)) else {
            continue;
        };
        match (token, placeholder, number) {
            (Some(token), Some(placeholder), _) => slot.rows.push(Row {
                token,
                placeholder,
                entity_type,
            }),
            (_, _, Some(number)) => {
                slot.counters.insert(entity_type, number);
            }
            _ => {}
        }
    }
    Ok(known)
}

/// Every row of a conversation for one subject. Rows restricted by a retention sweep
/// only with `include_restricted` (a subject's own export); otherwise their placeholders
/// stay in the text.
pub async fn for_subject(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    conversation: &str,
    subject_ref: &str,
    include_restricted: bool,
) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as(
        "SELECT DISTINCT ON (placeholder) token, placeholder, entity_type
         FROM conversation_pseudonyms
         WHERE tenant_id = $1 AND conversation_id = $2 AND subject_ref = $3
           AND ($4 OR restricted_at IS NULL)
         ORDER BY placeholder, created_at",
    )
    .bind(tenant)
    .bind(conversation)
    .bind(subject_ref)
    .bind(include_restricted)
    .fetch_all(db)
    .await
}

/// A new placeholder to store (written with the turn, see `store::write_turn`).
pub struct NewRow<'a> {
    pub token: &'a str,
    pub placeholder: &'a str,
    pub entity_type: &'a str,
}

/// Rebuilds a [`PseudonymMap`] whose known placeholders map to the values seen now.
///
/// `values` maps each token of this message to its (entity type, value). Counters start
/// after the conversation's highest numbers, so new placeholders never reuse one.
pub fn rebuild(
    rows: &[Row],
    counters: &BTreeMap<String, i32>,
    values: &HashMap<String, (String, String)>,
) -> Result<PseudonymMap, serde_json::Error> {
    let mut entries = serde_json::Map::new();
    for row in rows {
        if let Some((entity, value)) = values.get(&row.token) {
            entries.insert(
                row.placeholder.clone(),
                serde_json::json!({ "entity": entity, "value": value }),
            );
        }
    }
    let state = serde_json::json!({ "counters": counters, "entries": entries });
    serde_json::from_value(state)
}

/// The number in a placeholder such as `<EMAIL_ADDRESS_12>`.
pub fn number_of(placeholder: &str) -> Option<i32> {
    placeholder
        .trim_end_matches('>')
        .rsplit('_')
        .next()
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_pii::EntityType;

    #[test]
    fn rebuilt_map_keeps_known_placeholders_and_continues_numbering() {
        let rows = vec![Row {
            token: "tok_a".into(),
            placeholder: "<EMAIL_ADDRESS_2>".into(),
            entity_type: "EMAIL_ADDRESS".into(),
        }];
        let counters = BTreeMap::from([("EMAIL_ADDRESS".to_string(), 2)]);
        let values = HashMap::from([(
            "tok_a".to_string(),
            ("EMAIL_ADDRESS".to_string(), "anna@example.org".to_string()),
        )]);
        let mut map = rebuild(&rows, &counters, &values).expect("rebuilds");
        let email = EntityType::parse("EMAIL_ADDRESS").expect("known type");
        assert_eq!(
            map.placeholder_for(&email, "anna@example.org"),
            "<EMAIL_ADDRESS_2>"
        );
        assert_eq!(
            map.placeholder_for(&email, "ben@example.org"),
            "<EMAIL_ADDRESS_3>"
        );
    }

    #[test]
    fn numbers_are_read_from_placeholders() {
        assert_eq!(number_of("<EMAIL_ADDRESS_12>"), Some(12));
        assert_eq!(number_of("<PERSON_1>"), Some(1));
        assert_eq!(number_of("nope"), None);
    }
}
