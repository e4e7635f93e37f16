//! Conversation pseudonym maps kept by the gateway: placeholder <-> vault token, never
//! the original value. A message's [`PseudonymMap`] is rebuilt from these rows plus the
//! values seen in the message, so the same value keeps its placeholder across turns.

use std::collections::{BTreeMap, HashMap};

use sqlx::PgExecutor;
use uuid::Uuid;
use veil_pii::PseudonymMap;

use crate::store::NewPlaceholder;

/// One stored placeholder.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub token: String,
    pub placeholder: String,
    pub entity_type: String,
}

/// The (token, placeholder) of each row, as a turn write checks them.
pub fn pairs(rows: &[Row]) -> Vec<(String, String)> {
    rows.iter()
        .map(|row| (row.token.clone(), row.placeholder.clone()))
        .collect()
}

/// What a message needs of its conversation's map: the rows of its tokens, and the
/// highest placeholder number per entity type.
#[derive(Debug, Default)]
pub struct Known {
    pub rows: Vec<Row>,
    pub counters: BTreeMap<String, i32>,
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

/// The rows of `placeholders` (each one's first introduction) of the conversation and
/// subject, leaving out rows a retention sweep restricted; `None` when the subject's
/// processing is restricted (GDPR Art. 18), which the same statement reads.
pub async fn for_placeholders(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    conversation: &str,
    subject_ref: &str,
    placeholders: &[String],
) -> sqlx::Result<Option<Vec<Row>>> {
    type Found = (bool, Option<String>, Option<String>, Option<String>);
    let found: Vec<Found> = sqlx::query_as(
        "SELECT r.restricted, p.token, p.placeholder, p.entity_type
         FROM (SELECT EXISTS (SELECT 1 FROM subject_restrictions s
                              WHERE s.tenant_id = $1 AND s.subject_ref = $3) AS restricted) r
         LEFT JOIN LATERAL (
             SELECT DISTINCT ON (placeholder) token, placeholder, entity_type
             FROM conversation_pseudonyms
             WHERE tenant_id = $1 AND conversation_id = $2 AND placeholder = ANY($4)
               AND subject_ref = $3 AND restricted_at IS NULL
             ORDER BY placeholder, created_at
         ) p ON NOT r.restricted",
    )
    .bind(tenant)
    .bind(conversation)
    .bind(subject_ref)
    .bind(placeholders)
    .fetch_all(db)
    .await?;
    if found.first().is_some_and(|(restricted, ..)| *restricted) {
        return Ok(None);
    }
    Ok(Some(
        found
            .into_iter()
            .filter_map(|(_, token, placeholder, entity_type)| {
                Some(Row {
                    token: token?,
                    placeholder: placeholder?,
                    entity_type: entity_type?,
                })
            })
            .collect(),
    ))
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

/// Rows for the tokens seen for the first time in this conversation: a new placeholder,
/// or an existing one for another spelling of the same value.
pub fn new_rows(
    known: &Known,
    map: &mut veil_pii::PseudonymMap,
    tokens: &[String],
    values: &[(String, String)],
) -> Vec<NewPlaceholder> {
    let mut rows = Vec::new();
    for (token, (entity, value)) in tokens.iter().zip(values) {
        if known.rows.iter().any(|row| &row.token == token) {
            continue;
        }
        let Some(entity_type) = veil_pii::EntityType::parse(entity) else {
            continue;
        };
        let placeholder = map.placeholder_for(&entity_type, value);
        let placeholder_is_new = !known.rows.iter().any(|row| row.placeholder == placeholder);
        rows.push(NewPlaceholder {
            token_is_new: true,
            placeholder_is_new,
            ..NewPlaceholder::new(token, placeholder, entity)
        });
    }
    rows
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
