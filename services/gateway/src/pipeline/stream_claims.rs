//! How a redact stream gets its placeholders: like `ProcessMessage`, from the vault
//! tokens of its values and the conversation's rows of those tokens, never from the
//! originals. A stream reveals nothing (no `Detokenize`, no reveal in the audit log);
//! its new placeholders are claimed (written without a turn) before the text that
//! carries them is released.

use std::collections::HashMap;

use tonic::Status;
use veil_core::error::ServiceError;
use veil_core::types::SubjectRef;
use veil_pii::PseudonymMap;
use veil_proto::gateway::v1::MessageRole;

use super::lookups::StateQuery;
use super::persist::{erased_in_flight, is_unique_violation};
use super::{Call, PipelineApi};
use crate::pseudonyms::{self, Known};
use crate::store::{Landed, TurnWrite};

/// Where a redact stream writes: its conversation and subject.
pub(super) struct StreamScope<'a> {
    pub call: &'a Call,
    pub conversation_id: &'a str,
    pub subject_id: &'a str,
    pub subject_ref: &'a SubjectRef,
    pub role: MessageRole,
    pub store_raw: bool,
}

/// The vault tokens of the values a stream has seen, so each is tokenized once.
#[derive(Default)]
pub(super) struct StreamTokens {
    /// (entity type, value) -> token.
    by_value: HashMap<(String, String), String>,
}

impl StreamTokens {
    /// The map the conversation's rows `known` give the stream's values: their stored
    /// placeholders, and counters after the highest number of each entity type.
    pub fn map(&self, known: &Known) -> Result<PseudonymMap, ServiceError> {
        let by_token: HashMap<String, (String, String)> = self
            .by_value
            .iter()
            .map(|(value, token)| (token.clone(), value.clone()))
            .collect();
        pseudonyms::rebuild(&known.rows, &known.counters, &by_token).map_err(ServiceError::internal)
    }

    /// The tokens of `map`'s values, with the values, in one order.
    fn of(&self, map: &PseudonymMap) -> (Vec<String>, Vec<(String, String)>) {
        map.entries()
            .filter_map(|(_, p)| {
                let value = (p.entity.clone(), p.value.clone());
                let token = self.by_value.get(&value)?.clone();
                Some((token, value))
            })
            .unzip()
    }
}

impl PipelineApi {
    /// Tokenizes the values of `map` not tokenized yet and reads what the conversation
    /// holds for all the stream's tokens (one batched statement, as for a message).
    pub(super) async fn known(
        &self,
        scope: &StreamScope<'_>,
        tokens: &mut StreamTokens,
        map: &PseudonymMap,
    ) -> Result<Known, Status> {
        let fresh: Vec<(String, String)> = map
            .entries()
            .map(|(_, p)| (p.entity.clone(), p.value.clone()))
            .filter(|value| !tokens.by_value.contains_key(value))
            .collect();
        if !fresh.is_empty() {
            let minted = self
                .clients
                .tokenize(
                    &scope.call.service(),
                    scope.subject_id,
                    &fresh,
                    scope.store_raw,
                    scope.call.started,
                )
                .await?;
            tokens.by_value.extend(fresh.into_iter().zip(minted));
        }
        let query = StateQuery::conversation(
            scope.call.tenant.as_uuid(),
            scope.subject_ref,
            scope.conversation_id,
            tokens.by_value.values().cloned().collect(),
        );
        Ok(self.lookups.turn_state(query).await?.known)
    }

    /// Writes the rows of `map`'s values that `known` lacks (no turn yet); false when a
    /// turn written since `known` was read took one of their tokens or placeholders.
    pub(super) async fn claim(
        &self,
        scope: &StreamScope<'_>,
        known: &Known,
        tokens: &StreamTokens,
        map: &PseudonymMap,
    ) -> Result<bool, Status> {
        let (token_list, values) = tokens.of(map);
        let placeholders = pseudonyms::new_rows(known, &mut map.clone(), &token_list, &values);
        if placeholders.is_empty() {
            return Ok(true);
        }
        let call = scope.call;
        let claim = TurnWrite {
            message_id: uuid::Uuid::now_v7(),
            tenant: call.tenant.as_uuid(),
            conversation_id: scope.conversation_id.to_string(),
            subject_ref: scope.subject_ref.as_str().to_string(),
            role: scope.role as i32,
            redacted_text: String::new(),
            entity_counts: "{}".into(),
            purposes: Vec::new(),
            store: false,
            placeholders,
            events: Vec::new(),
            // The stream checked the restriction when it began.
            restricted: None,
            known: pseudonyms::pairs(&known.rows),
            answer: None,
            erased_after: self.erased_after(call),
        };
        let outcome = self.turns.write(claim).await.map_err(ServiceError::from)?;
        // This replica's hint of the conversation lacks the claimed rows: a message
        // built on it would only be refused by its write.
        self.map_hints
            .forget(call.tenant.as_uuid(), scope.conversation_id);
        match outcome {
            Ok(Landed::Erased) => Err(erased_in_flight().into()),
            Ok(landed) => Ok(matches!(landed, Landed::At(_))),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(ServiceError::from(error).into()),
        }
    }
}
