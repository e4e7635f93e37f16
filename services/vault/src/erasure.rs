//! Crypto-shredding, shared by `ShredSubject` and the erasure saga: the consumer of
//! `retention.erasure_requested` shreds the event's subject and reports
//! `vault.erasure_completed` with its counts.

use std::collections::HashMap;

use sqlx::{PgConnection, Postgres, Transaction};
use std::sync::Arc;
use uuid::Uuid;
use veil_core::app::Foundation;
use veil_core::convert::now;
use veil_core::emit::EventContext;
use veil_core::events::{EventHandler, HandlerError, ReceivedEvent, erasure_target};
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::{ErasureOutcome, VeilService};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{ErasureCompleted, VaultSubjectShredded};

use crate::error::VaultResult;
use crate::state::Vault;
use crate::store::keys as key_sql;
use crate::store::tokens as token_sql;

/// Durable consumer name; also its idempotency scope in `processed_events`.
const DURABLE: &str = "vault_erasure";

/// What a shred destroyed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shredded {
    /// Records sealed under the destroyed key (left as unreadable ciphertext).
    pub records: i64,
    /// Token entries deleted.
    pub tokens: i64,
    /// Data keys destroyed (0 or 1).
    pub data_keys: i64,
    key_id: Option<Uuid>,
}

impl Shredded {
    /// The counts as an erasure outcome.
    pub fn outcome(&self) -> ErasureOutcome {
        ErasureOutcome {
            service: VeilService::Vault as i32,
            counts: HashMap::from([
                ("records".to_string(), self.records),
                ("tokens".to_string(), self.tokens),
                ("data_keys".to_string(), self.data_keys),
            ]),
            completed_at: Some(now()),
        }
    }
}

/// Destroys the subject's data key and token entries within `tx` and writes
/// `vault.subject_shredded`. Two deletes by key and index, however many records the
/// subject has: they stay behind as ciphertext nobody can open (retention purges them).
/// First the subject's fence: a Tokenize or PutRecord in flight since before now is
/// refused rather than sealing what it read under a new key (the key statements check
/// it: `keys::subject_keys_locked`, `keys::insert_subject_keys`,
/// `tokens::insert_tokens_under_keys`; see the 0004 migration).
pub async fn shred_in(
    vault: &Vault,
    tx: &mut PgConnection,
    tenant: TenantId,
    subject: &SubjectRef,
    request_id: &str,
    context: &EventContext,
) -> VaultResult<Shredded> {
    veil_core::fences::fence_subject(tx, tenant.as_uuid(), subject.as_str()).await?;
    let destroyed = key_sql::delete_subject_key(tx, tenant.as_uuid(), subject.as_str()).await?;
    let tokens = token_sql::delete_subject_tokens(
        tx,
        tenant.as_uuid(),
        &token_sql::subject_bytes(subject.as_str()),
    )
    .await?;
    let shredded = Shredded {
        records: destroyed.map_or(0, |(_, count)| count),
        tokens: i64::try_from(tokens).unwrap_or(i64::MAX),
        data_keys: i64::from(destroyed.is_some()),
        key_id: destroyed.map(|(key_id, _)| key_id),
    };
    let payload = Payload::VaultSubjectShredded(VaultSubjectShredded {
        request_id: request_id.to_string(),
        records_destroyed: shredded.records,
        tokens_destroyed: shredded.tokens,
        data_keys_destroyed: shredded.data_keys,
    });
    vault.emit(tx, context, payload).await?;
    Ok(shredded)
}

/// After the commit: drops the destroyed key from this replica's cache and wakes the
/// relay.
pub fn after_commit(vault: &Vault, shredded: &Shredded) {
    if let Some(key_id) = &shredded.key_id {
        vault.keys.forget_data_key(key_id);
    }
    vault.notify_relay();
}

/// Registers the erasure-saga consumer.
pub fn spawn(foundation: &mut Foundation, vault: Arc<Vault>) -> anyhow::Result<()> {
    let filter = foundation
        .events
        .subject("retention", "erasure_requested")?;
    foundation.spawn_consumer(DURABLE, filter, ErasureConsumer { vault });
    Ok(())
}

struct ErasureConsumer {
    vault: Arc<Vault>,
}

#[derive(Debug, thiserror::Error)]
enum SagaError {
    #[error("vault error: {0}")]
    Vault(String),
}

#[async_trait::async_trait]
impl EventHandler for ErasureConsumer {
    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let Some(target) = erasure_target(&event.payload, VeilService::Vault)? else {
            return Ok(());
        };
        let context = target.answer_context("vault");
        let vault = &self.vault;
        let shredded = shred_in(
            vault,
            tx,
            target.tenant,
            &target.subject,
            &target.request_id,
            &context,
        )
        .await
        .map_err(|e| {
            HandlerError::retryable(SagaError::Vault(
                tonic::Status::from(e).message().to_string(),
            ))
        })?;
        let completed = Payload::VaultErasureCompleted(ErasureCompleted {
            request_id: target.request_id.clone(),
            outcome: Some(shredded.outcome()),
        });
        vault.emit(tx, &context, completed).await.map_err(|e| {
            HandlerError::retryable(SagaError::Vault(
                tonic::Status::from(e).message().to_string(),
            ))
        })?;
        // The consumer commits after this returns; forgetting the key early is harmless
        // (the cache is never the authority) and the relay also polls.
        after_commit(vault, &shredded);
        Ok(())
    }
}
