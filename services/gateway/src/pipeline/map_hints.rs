//! What this replica last saw of each conversation's map and of its subject's
//! restriction, so that most messages need no read before their turn write.
//!
//! A hint is never trusted. The turn write checks every assumption the turn was built on
//! (see [`crate::store::write_turns`]): the tokens and placeholders it took as new are
//! still free, the rows it took as known are still stored, and the subject's restriction
//! is as assumed. A turn built on a stale hint (another replica wrote to the
//! conversation, a retention purge removed rows, the subject was restricted) is not
//! written; its hint is dropped and the next attempt reads the map. A hint costs at most
//! one attempt, never a wrong turn.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use uuid::Uuid;

use crate::pseudonyms::{Known, Row};
use crate::store::NewPlaceholder;
use crate::turn_state::TurnState;

/// Conversations kept before the hints start over.
const MAX_CONVERSATIONS: usize = 50_000;
/// Rows kept in all (about 150 bytes each) before the hints start over.
const MAX_ROWS: usize = 500_000;
/// A conversation with more rows than this is not kept (it is read per message).
const MAX_ROWS_PER_CONVERSATION: usize = 256;

type Key = (Uuid, String);

struct Hint {
    /// The subject whose restriction `restricted` is.
    subject_ref: String,
    restricted: bool,
    /// The conversation had no rows when first read, and every row written since through
    /// this replica is here: a token not here is taken as new. Otherwise only messages
    /// whose tokens are all here use the hint.
    complete: bool,
    /// Token -> (placeholder, entity type).
    rows: HashMap<String, (String, String)>,
    /// Highest placeholder number per entity type.
    counters: BTreeMap<String, i32>,
}

impl Hint {
    fn new(subject_ref: &str, restricted: bool, complete: bool) -> Self {
        Self {
            subject_ref: subject_ref.to_string(),
            restricted,
            complete,
            rows: HashMap::new(),
            counters: BTreeMap::new(),
        }
    }

    fn add(&mut self, token: &str, placeholder: &str, entity_type: &str, number: Option<i32>) {
        self.rows.insert(
            token.to_string(),
            (placeholder.to_string(), entity_type.to_string()),
        );
        if let Some(number) = number {
            self.raise(entity_type, number);
        }
    }

    fn raise(&mut self, entity_type: &str, number: i32) {
        let counter = self.counters.entry(entity_type.to_string()).or_insert(0);
        *counter = (*counter).max(number);
    }
}

#[derive(Default)]
struct Hints {
    by_conversation: HashMap<Key, Hint>,
    rows: usize,
}

impl Hints {
    /// Changes the conversation's hint, made with `make` when there is none (starting
    /// over when full); a hint grown too large is dropped.
    fn update(&mut self, key: Key, make: impl FnOnce() -> Hint, change: impl FnOnce(&mut Hint)) {
        if !self.by_conversation.contains_key(&key)
            && (self.by_conversation.len() >= MAX_CONVERSATIONS || self.rows >= MAX_ROWS)
        {
            self.by_conversation.clear();
            self.rows = 0;
        }
        let hint = self.by_conversation.entry(key.clone()).or_insert_with(make);
        let before = hint.rows.len();
        change(hint);
        let after = hint.rows.len();
        self.rows = self.rows - before + after;
        if after > MAX_ROWS_PER_CONVERSATION {
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(hint) = self.by_conversation.remove(key) {
            self.rows -= hint.rows.len();
        }
    }
}

/// The hints of one gateway replica.
#[derive(Default)]
pub struct MapHints {
    hints: Mutex<Hints>,
}

impl MapHints {
    /// The state a message of `subject_ref` with `tokens` can be built on, if the hint of
    /// its conversation is enough: it knows the subject's restriction, and every token
    /// (or, when it is complete, every token that is not new).
    pub fn state(
        &self,
        tenant: Uuid,
        conversation: &str,
        subject_ref: &str,
        tokens: &[String],
    ) -> Option<TurnState> {
        let hints = self.hints.lock().ok()?;
        let hint = hints
            .by_conversation
            .get(&(tenant, conversation.to_string()))?;
        if hint.subject_ref != subject_ref
            || !(hint.complete || tokens.iter().all(|t| hint.rows.contains_key(t)))
        {
            return None;
        }
        let rows = tokens
            .iter()
            .filter_map(|token| {
                let (placeholder, entity_type) = hint.rows.get(token)?;
                Some(Row {
                    token: token.clone(),
                    placeholder: placeholder.clone(),
                    entity_type: entity_type.clone(),
                })
            })
            .collect();
        Some(TurnState {
            restricted: hint.restricted,
            known: Known {
                rows,
                counters: hint.counters.clone(),
            },
        })
    }

    /// Learns from a read of the conversation's map for a message of `subject_ref`.
    pub fn read(&self, tenant: Uuid, conversation: &str, subject_ref: &str, state: &TurnState) {
        // A conversation without a single row: every row it gets is written from now on.
        let empty = state.known.rows.is_empty() && state.known.counters.is_empty();
        self.update(
            tenant,
            conversation,
            || Hint::new(subject_ref, state.restricted, empty),
            |hint| {
                if hint.subject_ref == subject_ref {
                    hint.restricted = state.restricted;
                }
                for row in &state.known.rows {
                    hint.add(&row.token, &row.placeholder, &row.entity_type, None);
                }
                for (entity_type, number) in &state.known.counters {
                    hint.raise(entity_type, *number);
                }
            },
        );
    }

    /// Learns from a turn written on the assumption that `subject_ref` is `restricted`
    /// (the write checked it), with its new rows.
    pub fn written(
        &self,
        tenant: Uuid,
        conversation: &str,
        subject_ref: &str,
        restricted: bool,
        rows: &[NewPlaceholder],
    ) {
        self.update(
            tenant,
            conversation,
            || Hint::new(subject_ref, restricted, false),
            |hint| {
                if hint.subject_ref == subject_ref {
                    hint.restricted = restricted;
                }
                for row in rows {
                    hint.add(
                        &row.token,
                        &row.placeholder,
                        &row.entity_type,
                        Some(row.number),
                    );
                }
            },
        );
    }

    /// Drops the conversation's hint: a turn built on it was stale.
    pub fn forget(&self, tenant: Uuid, conversation: &str) {
        if let Ok(mut hints) = self.hints.lock() {
            hints.remove(&(tenant, conversation.to_string()));
        }
    }

    fn update(
        &self,
        tenant: Uuid,
        conversation: &str,
        make: impl FnOnce() -> Hint,
        change: impl FnOnce(&mut Hint),
    ) {
        if let Ok(mut hints) = self.hints.lock() {
            hints.update((tenant, conversation.to_string()), make, change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(token: &str, placeholder: &str) -> Row {
        Row {
            token: token.into(),
            placeholder: placeholder.into(),
            entity_type: "PERSON".into(),
        }
    }

    fn state(rows: Vec<Row>, counters: &[(&str, i32)]) -> TurnState {
        TurnState {
            restricted: false,
            known: Known {
                rows,
                counters: counters.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            },
        }
    }

    fn new_row(token: &str, placeholder: &str) -> NewPlaceholder {
        NewPlaceholder {
            token_is_new: true,
            placeholder_is_new: true,
            ..NewPlaceholder::new(token, placeholder.into(), "PERSON")
        }
    }

    fn tokens(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn a_conversation_first_read_empty_answers_for_new_tokens() {
        let hints = MapHints::default();
        let tenant = Uuid::now_v7();
        assert!(hints.state(tenant, "c", "s", &tokens(&["a"])).is_none());
        hints.read(tenant, "c", "s", &state(Vec::new(), &[]));
        hints.written(tenant, "c", "s", false, &[new_row("a", "<PERSON_1>")]);

        let known = hints
            .state(tenant, "c", "s", &tokens(&["a", "b"]))
            .expect("complete hint");
        assert_eq!(known.known.rows.len(), 1);
        assert_eq!(known.known.rows[0].placeholder, "<PERSON_1>");
        assert_eq!(known.known.counters.get("PERSON"), Some(&1));
        // Another subject's restriction is not known.
        assert!(hints.state(tenant, "c", "other", &tokens(&["a"])).is_none());
        // Nor is another tenant's conversation of the same name.
        assert!(
            hints
                .state(Uuid::now_v7(), "c", "s", &tokens(&["a"]))
                .is_none()
        );
    }

    #[test]
    fn a_conversation_with_rows_before_answers_only_for_tokens_it_holds() {
        let hints = MapHints::default();
        let tenant = Uuid::now_v7();
        hints.read(
            tenant,
            "c",
            "s",
            &state(vec![row("a", "<PERSON_3>")], &[("PERSON", 4)]),
        );
        assert!(
            hints
                .state(tenant, "c", "s", &tokens(&["a", "b"]))
                .is_none()
        );
        let known = hints
            .state(tenant, "c", "s", &tokens(&["a"]))
            .expect("every token held");
        assert_eq!(known.known.rows[0].placeholder, "<PERSON_3>");
        assert_eq!(known.known.counters.get("PERSON"), Some(&4));
        hints.forget(tenant, "c");
        assert!(hints.state(tenant, "c", "s", &tokens(&["a"])).is_none());
    }

    #[test]
    fn restriction_follows_reads_and_writes_of_the_subject() {
        let hints = MapHints::default();
        let tenant = Uuid::now_v7();
        let restricted = TurnState {
            restricted: true,
            ..state(Vec::new(), &[])
        };
        hints.read(tenant, "c", "s", &restricted);
        assert!(hints.state(tenant, "c", "s", &[]).expect("hint").restricted);
        hints.written(tenant, "c", "s", false, &[]);
        assert!(!hints.state(tenant, "c", "s", &[]).expect("hint").restricted);
    }

    #[test]
    fn large_conversations_are_not_kept_and_rows_are_counted() {
        let hints = MapHints::default();
        let tenant = Uuid::now_v7();
        hints.read(tenant, "c", "s", &state(Vec::new(), &[]));
        let many: Vec<NewPlaceholder> = (0..=MAX_ROWS_PER_CONVERSATION)
            .map(|i| new_row(&format!("t{i}"), &format!("<PERSON_{i}>")))
            .collect();
        hints.written(tenant, "c", "s", false, &many[..10]);
        assert_eq!(hints.hints.lock().expect("lock").rows, 10);
        hints.written(tenant, "c", "s", false, &many);
        assert!(hints.state(tenant, "c", "s", &[]).is_none());
        assert_eq!(hints.hints.lock().expect("lock").rows, 0);
    }
}
