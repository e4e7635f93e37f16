//! Conversation pseudonyms: the same value gets the same placeholder for a whole
//! conversation (`<EMAIL_ADDRESS_1>`), and the mapping lets the caller put the
//! originals back. The state serializes so the gateway can keep it between messages
//! (in the vault: it holds original values).

use crate::analyzer::KnownValue;
use crate::entity::EntityType;

/// Score of a value seen earlier in the conversation: it was reported then.
const KNOWN_SCORE: f32 = 0.9;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// One placeholder's original value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pseudonym {
    /// The entity type.
    pub entity: String,
    /// The original value (first spelling seen).
    pub value: String,
}

#[derive(Serialize, Deserialize, Default)]
struct PseudonymData {
    counters: BTreeMap<String, u32>,
    entries: BTreeMap<String, Pseudonym>,
}

/// Placeholder state of one conversation.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(from = "PseudonymData", into = "PseudonymData")]
pub struct PseudonymMap {
    counters: BTreeMap<String, u32>,
    entries: BTreeMap<String, Pseudonym>,
    index: HashMap<String, String>,
}

/// Never prints values: the map holds personal data.
impl fmt::Debug for PseudonymMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymMap")
            .field("placeholders", &self.entries.len())
            .finish()
    }
}

impl From<PseudonymData> for PseudonymMap {
    fn from(data: PseudonymData) -> Self {
        let index = data
            .entries
            .iter()
            .map(|(placeholder, p)| (key(&p.entity, &p.value), placeholder.clone()))
            .collect();
        PseudonymMap {
            counters: data.counters,
            entries: data.entries,
            index,
        }
    }
}

impl From<PseudonymMap> for PseudonymData {
    fn from(map: PseudonymMap) -> Self {
        PseudonymData {
            counters: map.counters,
            entries: map.entries,
        }
    }
}

/// The identity of a value: its type and exact spelling (trimmed). Exact spelling
/// keeps `restore` lossless: every placeholder maps back to exactly what it replaced.
fn key(entity: &str, value: &str) -> String {
    format!("{entity}\u{0}{}", value.trim())
}

impl PseudonymMap {
    /// An empty map (a new conversation).
    pub fn new() -> Self {
        PseudonymMap::default()
    }

    /// The placeholder for a value, allocating the next free number of its type when
    /// new (a number whose placeholder the map holds is never handed out again).
    pub fn placeholder_for(&mut self, entity: &EntityType, value: &str) -> String {
        let k = key(entity.name(), value);
        if let Some(existing) = self.index.get(&k) {
            return existing.clone();
        }
        let counter = self.counters.entry(entity.name().to_owned()).or_insert(0);
        let placeholder = loop {
            *counter += 1;
            let placeholder = format!("<{}_{}>", entity.name(), counter);
            if !self.entries.contains_key(&placeholder) {
                break placeholder;
            }
        };
        self.entries.insert(
            placeholder.clone(),
            Pseudonym {
                entity: entity.name().to_owned(),
                value: value.to_owned(),
            },
        );
        self.index.insert(k, placeholder.clone());
        placeholder
    }

    /// Marks the numbers up to `highest` of `entity` as taken (by placeholders whose
    /// values the map does not hold): new values get higher ones.
    pub fn reserve(&mut self, entity: &str, highest: u32) {
        let counter = self.counters.entry(entity.to_owned()).or_insert(0);
        *counter = (*counter).max(highest);
    }

    /// The original value behind a placeholder (exact form, e.g. `<PERSON_1>`).
    pub fn original(&self, placeholder: &str) -> Option<&str> {
        self.entries.get(placeholder).map(|p| p.value.as_str())
    }

    /// Every placeholder and its original value, in placeholder order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Pseudonym)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of placeholders.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no placeholder was handed out yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The conversation's values, for [`crate::Analyzer::analyze_with_known`].
    pub fn known_values(&self) -> Vec<KnownValue> {
        self.entries
            .values()
            .filter_map(|p| {
                Some(KnownValue {
                    entity: EntityType::parse(&p.entity)?,
                    value: p.value.clone(),
                    score: KNOWN_SCORE,
                })
            })
            .collect()
    }

    /// The longest placeholder, which bounds what a stream restorer holds back.
    pub(crate) fn longest_placeholder(&self) -> usize {
        self.entries.keys().map(String::len).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::BuiltIn;

    #[test]
    fn same_value_same_placeholder() {
        let mut map = PseudonymMap::new();
        let email: EntityType = BuiltIn::EmailAddress.into();
        let phone: EntityType = BuiltIn::PhoneNumber.into();
        assert_eq!(map.placeholder_for(&email, "a@x.io"), "<EMAIL_ADDRESS_1>");
        assert_eq!(map.placeholder_for(&email, "b@x.io"), "<EMAIL_ADDRESS_2>");
        assert_eq!(map.placeholder_for(&email, "a@x.io"), "<EMAIL_ADDRESS_1>");
        assert_eq!(
            map.placeholder_for(&phone, "+1 415-555-0132"),
            "<PHONE_NUMBER_1>"
        );
        // Another spelling is another value, so that restoring gives back each spelling.
        assert_eq!(
            map.placeholder_for(&phone, "+14155550132"),
            "<PHONE_NUMBER_2>"
        );
        assert_eq!(map.original("<EMAIL_ADDRESS_1>"), Some("a@x.io"));
    }

    #[test]
    fn survives_serialization() {
        let mut map = PseudonymMap::new();
        let person: EntityType = BuiltIn::Person.into();
        map.placeholder_for(&person, "Anna Schmidt");
        let json = serde_json::to_string(&map).expect("serializes");
        let mut back: PseudonymMap = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back.placeholder_for(&person, "Anna Schmidt"), "<PERSON_1>");
        assert_eq!(back.placeholder_for(&person, "Bob"), "<PERSON_2>");
        assert!(!format!("{back:?}").contains("Anna"));
    }

    /// A map rebuilt from some of a conversation's placeholders (without counters)
    /// skips the numbers it holds, and reserved numbers it does not hold.
    #[test]
    fn never_hands_out_a_taken_number() {
        let email: EntityType = BuiltIn::EmailAddress.into();
        let json = r#"{"counters":{},"entries":{"<EMAIL_ADDRESS_1>":{"entity":"EMAIL_ADDRESS","value":"a@x.io"}}}"#;
        let mut map: PseudonymMap = serde_json::from_str(json).expect("deserializes");
        assert_eq!(map.placeholder_for(&email, "b@x.io"), "<EMAIL_ADDRESS_2>");
        assert_eq!(map.original("<EMAIL_ADDRESS_1>"), Some("a@x.io"));
        map.reserve("EMAIL_ADDRESS", 5);
        map.reserve("EMAIL_ADDRESS", 3);
        assert_eq!(map.placeholder_for(&email, "c@x.io"), "<EMAIL_ADDRESS_6>");
    }
}
