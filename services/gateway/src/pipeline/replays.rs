//! Idempotent messages (`MessageContext.idempotency_key`). The first call with a key
//! claims it and leaves its answer when done; a retry with the same key and the same
//! request gets that answer again and writes nothing (no second turn, event, vault token
//! or privacy command). The key is scoped to the tenant and conversation.
//!
//! The answer is sealed with AES-256-GCM under a tenant key derived from
//! `privacy.subject_key` (it holds the redacted text and may hold a one-time
//! verification code); the request is recognized by an HMAC under another tenant key, so
//! the table holds nothing readable of the subject. Rows expire after
//! `service.idempotency_window_secs` and go with the subject's erasure.

use std::time::Duration;

use prost::Message as _;
use sqlx::PgPool;
use uuid::Uuid;
use veil_core::crypto::{Aad, constant_time_eq, keyed_digest, open, seal};
use veil_core::error::ServiceError;
use veil_core::subjects::SubjectKeys;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::gateway::v1::{MessageContext, ProcessMessageResponse};

const FINGERPRINT_KEY_LABEL: &str = "replay-fingerprint";
const SEAL_KEY_LABEL: &str = "replay-seal";
const AAD_DOMAIN: &str = "veil.gateway.replay.v1";

/// How long an unanswered claim holds off retries: far longer than a message takes. A
/// retry after it takes the claim over, since the first call died with its replica.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

/// Rows removed per statement when expired answers are cleared.
const PURGE_BATCH: i64 = 10_000;

/// Where a key lives: tenant, conversation and the caller's key.
#[derive(Debug, Clone)]
pub struct ReplayKey {
    tenant: TenantId,
    conversation_id: String,
    key: String,
}

impl ReplayKey {
    /// The key of a checked context, or `None` when it names none.
    pub fn of(tenant: TenantId, context: &MessageContext) -> Option<Self> {
        (!context.idempotency_key.is_empty()).then(|| Self {
            tenant,
            conversation_id: context.conversation_id.clone(),
            key: context.idempotency_key.clone(),
        })
    }

    fn aad(&self) -> Aad {
        Aad::new(AAD_DOMAIN)
            .part(self.tenant.as_bytes())
            .part(&self.conversation_id)
            .part(&self.key)
    }
}

/// What claiming a key found.
pub enum Claimed {
    /// This call holds the key: process the message, then [`Replays::answer`] or
    /// [`Replays::release`].
    Fresh(Claim),
    /// An earlier call with this key and request was answered with this.
    Replay(Box<ProcessMessageResponse>),
}

/// A held key.
pub struct Claim {
    key: ReplayKey,
    claim: Uuid,
}

/// The stored answers of keyed messages; cheap to clone.
#[derive(Clone)]
pub struct Replays {
    pool: PgPool,
    keys: SubjectKeys,
    window: Duration,
}

impl Replays {
    pub fn new(pool: PgPool, keys: SubjectKeys, window: Duration) -> Self {
        Self { pool, keys, window }
    }

    /// The fingerprint of a checked context and text (the locale normalized, so
    /// spellings of one request match).
    pub fn fingerprint(&self, tenant: &TenantId, context: &MessageContext, text: &str) -> Vec<u8> {
        let mut bytes = context.encode_length_delimited_to_vec();
        bytes.extend_from_slice(text.as_bytes());
        let key = self.keys.tenant_key(tenant, FINGERPRINT_KEY_LABEL);
        keyed_digest(&key, &bytes).to_vec()
    }

    /// Claims `key` for a request with `fingerprint`, or finds its answer. Refused with
    /// INVALID_ARGUMENT when the key was used for another request, ABORTED while the
    /// first call is still running.
    pub async fn claim(
        &self,
        key: ReplayKey,
        subject_ref: &SubjectRef,
        fingerprint: &[u8],
    ) -> Result<Claimed, tonic::Status> {
        let claim = Uuid::now_v7();
        // An unanswered claim past its timeout, or any row past the window, counts as
        // absent; the row is then taken over in the same statement.
        let taken: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO message_replays
                 (tenant_id, conversation_id, idempotency_key, subject_ref, fingerprint, claim)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, conversation_id, idempotency_key) DO UPDATE
                 SET subject_ref = EXCLUDED.subject_ref, fingerprint = EXCLUDED.fingerprint,
                     claim = EXCLUDED.claim, claimed_at = now(),
                     answer = NULL, answered_at = NULL
                 WHERE (message_replays.answer IS NULL
                        AND message_replays.claimed_at < now() - make_interval(secs => $7))
                    OR message_replays.claimed_at < now() - make_interval(secs => $8)
             RETURNING claim",
        )
        .bind(key.tenant.as_uuid())
        .bind(&key.conversation_id)
        .bind(&key.key)
        .bind(subject_ref.as_str())
        .bind(fingerprint)
        .bind(claim)
        .bind(CLAIM_TIMEOUT.as_secs_f64())
        .bind(self.window.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(ServiceError::from)?;
        if taken.is_some() {
            return Ok(Claimed::Fresh(Claim { key, claim }));
        }
        let found: Option<(Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT fingerprint, answer FROM message_replays
             WHERE tenant_id = $1 AND conversation_id = $2 AND idempotency_key = $3",
        )
        .bind(key.tenant.as_uuid())
        .bind(&key.conversation_id)
        .bind(&key.key)
        .fetch_optional(&self.pool)
        .await
        .map_err(ServiceError::from)?;
        let still_running = || {
            tonic::Status::aborted(
                "a message with this context.idempotency_key is still being processed; retry",
            )
        };
        let Some((stored, answer)) = found else {
            // Cleared between the two statements: the caller's retry claims it.
            return Err(still_running());
        };
        if !constant_time_eq(&stored, fingerprint) {
            return Err(ServiceError::invalid(
                "context.idempotency_key",
                "was already used for a different message in this conversation",
            )
            .into());
        }
        let Some(answer) = answer else {
            return Err(still_running());
        };
        let seal_key = self.keys.tenant_key(&key.tenant, SEAL_KEY_LABEL);
        let opened = open(&seal_key, &key.aad(), &answer).map_err(ServiceError::internal)?;
        let response =
            ProcessMessageResponse::decode(opened.as_slice()).map_err(ServiceError::internal)?;
        Ok(Claimed::Replay(Box::new(response)))
    }

    /// Stores the answer of a claimed message. A claim taken over meanwhile (the first
    /// call outlived [`CLAIM_TIMEOUT`]) keeps the later call's answer.
    pub async fn answer(
        &self,
        claim: &Claim,
        response: &ProcessMessageResponse,
    ) -> Result<(), ServiceError> {
        let seal_key = self.keys.tenant_key(&claim.key.tenant, SEAL_KEY_LABEL);
        let sealed = seal(&seal_key, &claim.key.aad(), &response.encode_to_vec())
            .map_err(ServiceError::internal)?;
        sqlx::query(
            "UPDATE message_replays SET answer = $5, answered_at = now()
             WHERE tenant_id = $1 AND conversation_id = $2 AND idempotency_key = $3
               AND claim = $4",
        )
        .bind(claim.key.tenant.as_uuid())
        .bind(&claim.key.conversation_id)
        .bind(&claim.key.key)
        .bind(claim.claim)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up a claim whose message failed, so that a retry processes it afresh.
    pub async fn release(&self, claim: &Claim) -> Result<(), ServiceError> {
        sqlx::query(
            "DELETE FROM message_replays
             WHERE tenant_id = $1 AND conversation_id = $2 AND idempotency_key = $3
               AND claim = $4 AND answer IS NULL",
        )
        .bind(claim.key.tenant.as_uuid())
        .bind(&claim.key.conversation_id)
        .bind(&claim.key.key)
        .bind(claim.claim)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the rows older than the window; returns how many.
    pub async fn purge_expired(&self) -> sqlx::Result<u64> {
        let mut removed = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM message_replays WHERE ctid IN (
                     SELECT ctid FROM message_replays
                     WHERE claimed_at < now() - make_interval(secs => $1) LIMIT $2)",
            )
            .bind(self.window.as_secs_f64())
            .bind(PURGE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            removed += done;
            if done < PURGE_BATCH as u64 {
                return Ok(removed);
            }
        }
    }
}
