//! Putting originals back into an LLM reply for the same conversation and subject: the
//! gateway's placeholder rows name vault tokens, the vault reveals them for that subject
//! only, and `veil_pii::restore` replaces placeholders tolerantly (`<email_address_1>`,
//! `< EMAIL_ADDRESS_1 >`), never treating them as patterns.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_pii::PseudonymMap;

use crate::clients::Clients;
use crate::pseudonyms;
use crate::restriction::RESTRICTED;

/// Tokens per `Detokenize` call (the vault's limit per request).
const DETOKENIZE_BATCH: usize = 1_000;

/// The originals of one conversation's placeholders, for one subject.
pub struct Restorer {
    pub map: PseudonymMap,
    entity_of: HashMap<String, String>,
}

impl Restorer {
    /// Loads the conversation's placeholders of `subject_ref` and reveals their values
    /// (as the gateway service principal `service`). Placeholders a retention sweep
    /// restricted are loaded only with `include_restricted`: for the subject's own copy
    /// (GDPR Art. 15). A bot's restore leaves restricted placeholders in the text.
    pub async fn load(
        pool: &sqlx::PgPool,
        clients: &Clients,
        service: &Principal,
        scope: (TenantId, &str, &str),
        include_restricted: bool,
    ) -> Result<Self, tonic::Status> {
        let (tenant, conversation, subject_ref) = scope;
        let rows = pseudonyms::for_subject(
            pool,
            tenant.as_uuid(),
            conversation,
            subject_ref,
            include_restricted,
        )
        .await
        .map_err(ServiceError::from)?;
        Self::reveal(clients, service, subject_ref, rows).await
    }

    /// Like [`Restorer::load`] (restricted placeholders left out), but only for the
    /// placeholders `wanted` (those a text names): a reply that names one value reveals
    /// one, and a reply without placeholders reveals nothing. FAILED_PRECONDITION when
    /// the subject's processing is restricted (GDPR Art. 18), read with the rows.
    pub async fn load_named(
        pool: &sqlx::PgPool,
        clients: &Clients,
        service: &Principal,
        scope: (TenantId, &str, &str),
        wanted: &[String],
    ) -> Result<Self, tonic::Status> {
        let (tenant, conversation, subject_ref) = scope;
        let rows =
            pseudonyms::for_placeholders(pool, tenant.as_uuid(), conversation, subject_ref, wanted)
                .await
                .map_err(ServiceError::from)?
                .ok_or_else(|| ServiceError::FailedPrecondition(RESTRICTED.into()))?;
        Self::reveal(clients, service, subject_ref, rows).await
    }

    /// The originals of `rows`' tokens from the vault, for `subject_ref` only.
    async fn reveal(
        clients: &Clients,
        service: &Principal,
        subject_ref: &str,
        rows: Vec<pseudonyms::Row>,
    ) -> Result<Self, tonic::Status> {
        let values = values(clients, service, subject_ref, &rows).await?;
        Self::from_rows(rows, &values)
    }

    /// A restorer of `rows` whose tokens' originals are `values` (token -> entity type
    /// and value); a row without its value stays a placeholder.
    fn from_rows(
        rows: Vec<pseudonyms::Row>,
        values: &HashMap<String, (String, String)>,
    ) -> Result<Self, tonic::Status> {
        let map =
            pseudonyms::rebuild(&rows, &BTreeMap::new(), values).map_err(ServiceError::internal)?;
        let entity_of = rows
            .into_iter()
            .map(|r| (r.placeholder, r.entity_type))
            .collect();
        Ok(Self { map, entity_of })
    }

    /// Restores `text`; returns the text, counts per entity type and unknown placeholders.
    /// A text that would restore to more than [`MAX_RESTORED_BYTES`] is refused.
    pub fn restore(&self, text: &str) -> Result<Restored, ServiceError> {
        let (counts, unknown) = self.counts(text);
        Ok((restore_bounded(text, &self.map)?, counts, unknown))
    }

    /// Counts per entity type of the placeholders `text` names, and its unknown ones.
    pub fn counts(&self, text: &str) -> (BTreeMap<String, i64>, Vec<String>) {
        let mut counts = BTreeMap::new();
        let mut unknown = Vec::new();
        for candidate in placeholder_regex().captures_iter(text) {
            let canonical = format!("<{}>", candidate[1].to_ascii_uppercase());
            match (
                self.map.original(&canonical),
                self.entity_of.get(&canonical),
            ) {
                (Some(_), Some(entity)) => *counts.entry(entity.clone()).or_insert(0) += 1,
                _ => unknown.push(canonical),
            }
        }
        unknown.sort();
        unknown.dedup();
        (counts, unknown)
    }
}

/// A restored text, its counts per entity type and its unknown placeholders.
pub type Restored = (String, BTreeMap<String, i64>, Vec<String>);

/// The most a text may restore to: a short text naming one long original many times
/// would otherwise restore to many times its size (and past any response limit).
pub const MAX_RESTORED_BYTES: usize = 1 << 20;

/// `text` restored under `map`, or INVALID_ARGUMENT (`text`) when that would pass
/// [`MAX_RESTORED_BYTES`]; found before the text is built.
fn restore_bounded(text: &str, map: &veil_pii::PseudonymMap) -> Result<String, ServiceError> {
    veil_pii::restore_within(text, map, MAX_RESTORED_BYTES)
        .ok_or_else(|| ServiceError::invalid("text", "restores to more than 1 MiB"))
}

/// The originals of `rows`' tokens (token -> entity type and value), revealed by the vault
/// for `subject_ref` only; a token the vault no longer has is left out.
async fn values(
    clients: &Clients,
    service: &Principal,
    subject_ref: &str,
    rows: &[pseudonyms::Row],
) -> Result<HashMap<String, (String, String)>, tonic::Status> {
    // The vault reveals at most DETOKENIZE_BATCH tokens per call; a long conversation
    // (or a subject export) can hold more.
    let mut values = HashMap::new();
    for batch in rows.chunks(DETOKENIZE_BATCH) {
        let tokens: Vec<String> = batch.iter().map(|r| r.token.clone()).collect();
        let revealed = clients.detokenize(service, subject_ref, tokens).await?;
        values.extend(
            revealed
                .into_iter()
                .filter(|r| r.found)
                .map(|r| (r.token, (r.entity_type, r.value))),
        );
    }
    Ok(values)
}

/// Restores a streamed text, revealing each placeholder's original only when a piece of
/// the text names it: a streamed reply reveals what it puts back, as `RestoreText` does.
pub struct RevealAsNamed {
    /// The conversation's placeholders of the subject not revealed yet.
    unrevealed: HashMap<String, pseudonyms::Row>,
    revealed: Vec<pseudonyms::Row>,
    values: HashMap<String, (String, String)>,
    restorer: Restorer,
}

impl RevealAsNamed {
    /// The subject's placeholders of the conversation (restricted ones left out); no
    /// value is revealed yet.
    pub async fn load(
        pool: &sqlx::PgPool,
        scope: (TenantId, &str, &str),
    ) -> Result<Self, tonic::Status> {
        let (tenant, conversation, subject_ref) = scope;
        let rows =
            pseudonyms::for_subject(pool, tenant.as_uuid(), conversation, subject_ref, false)
                .await
                .map_err(ServiceError::from)?;
        Ok(Self {
            unrevealed: rows
                .into_iter()
                .map(|r| (r.placeholder.clone(), r))
                .collect(),
            revealed: Vec::new(),
            values: HashMap::new(),
            restorer: Restorer::from_rows(Vec::new(), &HashMap::new())?,
        })
    }

    /// The length of the longest placeholder the text may name.
    pub fn longest_placeholder(&self) -> usize {
        self.unrevealed.keys().map(String::len).max().unwrap_or(0)
    }

    /// `piece` restored, after revealing the originals of the placeholders it names for
    /// the first time (as the gateway service principal `service`).
    pub async fn restore(
        &mut self,
        clients: &Clients,
        service: &Principal,
        subject_ref: &str,
        piece: &str,
    ) -> Result<String, tonic::Status> {
        let named: Vec<pseudonyms::Row> = veil_pii::placeholders_in(piece)
            .iter()
            .filter_map(|placeholder| self.unrevealed.remove(placeholder))
            .collect();
        if !named.is_empty() {
            self.values
                .extend(values(clients, service, subject_ref, &named).await?);
            self.revealed.extend(named);
            self.restorer = Restorer::from_rows(self.revealed.clone(), &self.values)?;
        }
        Ok(restore_bounded(piece, &self.restorer.map)?)
    }

    /// The restorer of everything revealed, for the stream's counts.
    pub fn restorer(&self) -> &Restorer {
        &self.restorer
    }
}

/// Things that look like placeholders, in the forms LLMs produce.
fn placeholder_regex() -> &'static regex::Regex {
    static PLACEHOLDER: OnceLock<regex::Regex> = OnceLock::new();
    PLACEHOLDER.get_or_init(|| {
        regex::Regex::new(r"<\s*([A-Za-z][A-Za-z0-9_]*_[0-9]+)\s*>")
            .unwrap_or_else(|_| unreachable!("the placeholder pattern is a valid regex"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_pii::EntityType;

    #[test]
    fn counts_known_and_lists_unknown_placeholders() {
        let mut map = PseudonymMap::new();
        let email = EntityType::parse("EMAIL_ADDRESS").expect("type");
        let placeholder = map.placeholder_for(&email, "anna@example.org");
        let restorer = Restorer {
            map,
            entity_of: HashMap::from([(placeholder, "EMAIL_ADDRESS".to_string())]),
        };
        let (text, counts, unknown) = restorer
            .restore("Mail < email_address_1 > or <PERSON_7>, not <EMAIL_ADDRESS_1>.")
            .expect("small");
        assert_eq!(
            text,
            "Mail anna@example.org or <PERSON_7>, not anna@example.org."
        );
        assert_eq!(counts.get("EMAIL_ADDRESS"), Some(&2));
        assert_eq!(unknown, vec!["<PERSON_7>".to_string()]);
    }

    #[test]
    fn a_text_restoring_past_the_bound_is_refused() {
        let mut map = PseudonymMap::new();
        let url = EntityType::parse("URL").expect("type");
        let long = format!("https://example.org/{}", "a".repeat(64 * 1024));
        let placeholder = map.placeholder_for(&url, &long);
        let restorer = Restorer {
            map,
            entity_of: HashMap::from([(placeholder, "URL".to_string())]),
        };
        // 64 KiB of placeholders would restore to about 700 MiB.
        let reply = "<URL_1> ".repeat(8 * 1024);
        let refused = restorer.restore(&reply).expect_err("too large");
        assert!(
            refused.to_string().starts_with("invalid text:"),
            "{refused}"
        );
        let (counts, _) = restorer.counts(&reply);
        assert_eq!(counts.get("URL"), Some(&(8 * 1024)));
        assert!(restorer.restore("<URL_1>").is_ok());
    }
}
