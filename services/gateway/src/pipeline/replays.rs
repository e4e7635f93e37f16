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
//!
//! `RedactStream` honours the key too (see [`super::stream_replay`]): its claim is taken
//! by the context alone, since the text is only known at the stream's end.
//!
//! The answer is written by the turn's own statement ([`Replays::turn_answer`]), so that
//! no turn stands without it: a replica that dies after the turn leaves an answer, not a
//! claim whose retry would become a second turn. It leaves out the turn's message id and
//! index, stored beside it and put back by the caller ([`Replayed::turn`]). Only a step
//! after the turn that changes the answer (an in-chat erasure, submitted once its turn
//! is stored) writes the whole answer again ([`Replays::answer`]); until then retries
//! are held off as while the message runs, and once the claim has timed out the retry
//! takes that step itself from the turn's answer ([`Replayed::unfinished`]).
//!
//! Claims of concurrent messages are written in batches, one statement each (like the
//! turn writes, see [`super::turn_writer`]): an autocommit statement per message would
//! cost Postgres as much as the rest of the message.

use std::collections::HashSet;
use std::time::Duration;

use prost::Message as _;
use sqlx::PgPool;
use uuid::Uuid;
use veil_core::batch::{Batcher, Limits};
use veil_core::crypto::{Aad, constant_time_eq, keyed_digest, open, seal};
use veil_core::db::retry_if_lost;
use veil_core::error::ServiceError;
use veil_core::subjects::SubjectKeys;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::gateway::v1::MessageContext;

#[cfg(doc)]
use super::persist::Landing;
use super::persist::Stored;
use crate::store::TurnAnswer;

const FINGERPRINT_KEY_LABEL: &str = "replay-fingerprint";
const STREAM_FINGERPRINT_KEY_LABEL: &str = "replay-stream-fingerprint";
const SEAL_KEY_LABEL: &str = "replay-seal";
const AAD_DOMAIN: &str = "veil.gateway.replay.v1";

/// How long an unanswered claim holds off retries: far longer than a message takes. A
/// retry after it takes the claim over, since the first call died with its replica.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

/// Rows removed per statement when expired answers are cleared.
const PURGE_BATCH: i64 = 10_000;

/// Claim statements in flight at once.
const IN_FLIGHT: usize = 2;

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
    Replay(Replayed),
}

/// A kept answer.
pub struct Replayed {
    /// The bytes given to [`Replays::answer`] or [`Replays::turn_answer`].
    pub answer: Vec<u8>,
    /// For an answer kept with its turn: where the turn landed, which the caller puts
    /// into the answer (see [`super::persist::Landing`]).
    pub turn: Option<Stored>,
    /// When the first call's answer was to change after its turn (an in-chat erasure,
    /// submitted once the turn is stored) and the call died before it did: the claim this
    /// retry took over, to finish that step and keep the answer under.
    pub unfinished: Option<Claim>,
}

/// A held key.
pub struct Claim {
    key: ReplayKey,
    claim: Uuid,
    subject_ref: String,
    fingerprint: Vec<u8>,
}

impl Claim {
    fn held(key: ReplayKey, claim: Uuid, subject_ref: &SubjectRef, fingerprint: &[u8]) -> Self {
        Self {
            key,
            claim,
            subject_ref: subject_ref.as_str().to_string(),
            fingerprint: fingerprint.to_vec(),
        }
    }
}

/// The stored answers of keyed messages; cheap to clone.
#[derive(Clone)]
pub struct Replays {
    pool: PgPool,
    keys: SubjectKeys,
    window: Duration,
    claims: Batcher<ClaimWrite, Result<bool, ServiceError>>,
}

/// A claim to write: taken when the key is free, or its row has expired.
struct ClaimWrite {
    key: ReplayKey,
    subject_ref: String,
    fingerprint: Vec<u8>,
    claim: Uuid,
}

impl Replays {
    pub fn new(pool: PgPool, keys: SubjectKeys, window: Duration) -> Self {
        let claims = Batcher::spawn(
            Limits::statements("idempotency claims", IN_FLIGHT),
            |c: &ClaimWrite| c.key.conversation_id.len() + c.key.key.len() + 150,
            {
                let pool = pool.clone();
                move |claims: Vec<ClaimWrite>| {
                    let pool = pool.clone();
                    async move {
                        let taken = retry_if_lost(|| write_claims(&pool, &claims, window)).await;
                        super::lookups::fan_out(taken, claims.len())
                    }
                }
            },
        );
        Self {
            pool,
            keys,
            window,
            claims,
        }
    }

    /// The fingerprint of a checked context and text (the locale normalized, so
    /// spellings of one request match).
    pub fn fingerprint(&self, tenant: &TenantId, context: &MessageContext, text: &str) -> Vec<u8> {
        let mut bytes = context.encode_length_delimited_to_vec();
        bytes.extend_from_slice(text.as_bytes());
        let key = self.keys.tenant_key(tenant, FINGERPRINT_KEY_LABEL);
        keyed_digest(&key, &bytes).to_vec()
    }

    /// The fingerprint a stream claims its key with: of its context alone, under a key of
    /// its own, so that a key used by a `ProcessMessage` is never taken for a stream's
    /// or the other way round.
    pub fn stream_fingerprint(&self, tenant: &TenantId, context: &MessageContext) -> Vec<u8> {
        let key = self.keys.tenant_key(tenant, STREAM_FINGERPRINT_KEY_LABEL);
        keyed_digest(&key, &context.encode_length_delimited_to_vec()).to_vec()
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
        let write = ClaimWrite {
            key: key.clone(),
            subject_ref: subject_ref.as_str().to_string(),
            fingerprint: fingerprint.to_vec(),
            claim,
        };
        if self
            .claims
            .call(write)
            .await
            .map_err(ServiceError::from)??
        {
            return Ok(Claimed::Fresh(Claim::held(
                key,
                claim,
                subject_ref,
                fingerprint,
            )));
        }
        let found: Option<Found> = sqlx::query_as(
            "SELECT fingerprint, claim, answer, turn_answer, turn_message_id, turn_index,
                    settled OR claimed_at < now() - make_interval(secs => $4) AS turn_final,
                    settled
             FROM message_replays
             WHERE tenant_id = $1 AND conversation_id = $2 AND idempotency_key = $3",
        )
        .bind(key.tenant.as_uuid())
        .bind(&key.conversation_id)
        .bind(&key.key)
        .bind(CLAIM_TIMEOUT.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(ServiceError::from)?;
        let still_running = || {
            tonic::Status::aborted(
                "a message with this context.idempotency_key is still being processed; retry",
            )
        };
        let Some(found) = found else {
            // Cleared between the two statements: the caller's retry claims it.
            return Err(still_running());
        };
        if found.claim == claim {
            // The claim's statement committed, then its connection was lost and the
            // statement ran again: the claim is this call's.
            return Ok(Claimed::Fresh(Claim::held(
                key,
                claim,
                subject_ref,
                fingerprint,
            )));
        }
        if !constant_time_eq(&found.fingerprint, fingerprint) {
            return Err(key_reused().into());
        }
        let mut unfinished = None;
        let (sealed, turn) = match (found.answer, found.turn_answer) {
            (Some(answer), _) => (answer, None),
            (None, Some(answer)) if found.turn_final => {
                if !found.settled {
                    // One retry does what the first call left undone: it takes the claim
                    // over, and others are held off until it keeps its answer.
                    if !self.take_over(&key, found.claim, claim).await? {
                        return Err(still_running());
                    }
                    unfinished = Some(Claim::held(key.clone(), claim, subject_ref, fingerprint));
                }
                let turn = Stored {
                    message_id: found
                        .turn_message_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    turn_index: found.turn_index.unwrap_or_default(),
                };
                (answer, Some(turn))
            }
            _ => return Err(still_running()),
        };
        let seal_key = self.keys.tenant_key(&key.tenant, SEAL_KEY_LABEL);
        let answer = open(&seal_key, &key.aad(), &sealed).map_err(ServiceError::internal)?;
        Ok(Claimed::Replay(Replayed {
            answer,
            turn,
            unfinished,
        }))
    }

    /// Moves the claim of a timed-out call whose turn's answer is not settled from `from`
    /// to `to`; false when another retry did so first or the answer was kept meanwhile.
    async fn take_over(&self, key: &ReplayKey, from: Uuid, to: Uuid) -> Result<bool, ServiceError> {
        let taken = sqlx::query(
            "UPDATE message_replays SET claim = $5, claimed_at = now()
             WHERE tenant_id = $1 AND conversation_id = $2 AND idempotency_key = $3
               AND claim = $4 AND answer IS NULL AND NOT settled",
        )
        .bind(key.tenant.as_uuid())
        .bind(&key.conversation_id)
        .bind(&key.key)
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// The answer of a claimed call for its turn's statement to keep; `settled` when no
    /// later step changes it (otherwise [`Replays::answer`] follows).
    pub fn turn_answer(
        &self,
        claim: &Claim,
        answer: &[u8],
        settled: bool,
    ) -> Result<TurnAnswer, ServiceError> {
        Ok(TurnAnswer {
            idempotency_key: claim.key.key.clone(),
            fingerprint: claim.fingerprint.clone(),
            claim: claim.claim,
            sealed: self.seal(claim, answer)?,
            settled,
        })
    }

    fn seal(&self, claim: &Claim, answer: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let seal_key = self.keys.tenant_key(&claim.key.tenant, SEAL_KEY_LABEL);
        seal(&seal_key, &claim.key.aad(), answer).map_err(ServiceError::internal)
    }

    /// Stores the answer of a claimed message that changed after its turn (rare: an
    /// in-chat erasure), in a statement of its own. A claim taken over meanwhile (the
    /// first call outlived [`CLAIM_TIMEOUT`]) keeps the later call's answer. Like the
    /// turn's, the upsert finds the row through its key's index whatever the statistics
    /// say (an UPDATE joined to a batch was planned as a scan of the whole table).
    pub async fn answer(&self, claim: &Claim, answer: &[u8]) -> Result<(), ServiceError> {
        let sealed = self.seal(claim, answer)?;
        retry_if_lost(|| {
            sqlx::query(
                "INSERT INTO message_replays AS r
                     (tenant_id, conversation_id, idempotency_key, subject_ref, fingerprint,
                      claim, answer, answered_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now())
                 ON CONFLICT (tenant_id, conversation_id, idempotency_key) DO UPDATE
                     SET answer = EXCLUDED.answer, answered_at = now()
                     WHERE r.claim = EXCLUDED.claim",
            )
            .bind(claim.key.tenant.as_uuid())
            .bind(&claim.key.conversation_id)
            .bind(&claim.key.key)
            .bind(&claim.subject_ref)
            .bind(&claim.fingerprint)
            .bind(claim.claim)
            .bind(&sealed)
            .execute(&self.pool)
        })
        .await?;
        Ok(())
    }

    /// Gives up a claim whose message failed before its turn, so that a retry processes
    /// it afresh.
    pub async fn release(&self, claim: &Claim) -> Result<(), ServiceError> {
        sqlx::query(
            "DELETE FROM message_replays
             WHERE tenant_id = $1 AND conversation_id = $2 AND idempotency_key = $3
               AND claim = $4 AND answer IS NULL AND turn_answer IS NULL",
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

/// A key's row as a retry finds it.
#[derive(sqlx::FromRow)]
struct Found {
    fingerprint: Vec<u8>,
    claim: Uuid,
    answer: Option<Vec<u8>>,
    turn_answer: Option<Vec<u8>>,
    turn_message_id: Option<Uuid>,
    turn_index: Option<i64>,
    /// The turn's answer is settled, or its call has outlived the claim's timeout.
    turn_final: bool,
    settled: bool,
}

/// The refusal of a key used before for another message.
pub fn key_reused() -> ServiceError {
    ServiceError::invalid(
        "context.idempotency_key",
        "was already used for a different message in this conversation",
    )
}

/// Writes a batch of claims in one statement; whether each was taken. A key twice in one
/// batch (two concurrent calls with it) goes in once: the other call is not taken and
/// finds the first one's claim.
async fn write_claims(
    pool: &PgPool,
    claims: &[ClaimWrite],
    window: Duration,
) -> sqlx::Result<Vec<bool>> {
    let mut seen = HashSet::new();
    let firsts: Vec<&ClaimWrite> = claims
        .iter()
        .filter(|c| seen.insert((c.key.tenant, &c.key.conversation_id, &c.key.key)))
        .collect();
    let column = |f: fn(&ClaimWrite) -> &str| firsts.iter().map(|c| f(c)).collect::<Vec<_>>();
    let tenants: Vec<Uuid> = firsts.iter().map(|c| c.key.tenant.as_uuid()).collect();
    let fingerprints: Vec<&[u8]> = firsts.iter().map(|c| c.fingerprint.as_slice()).collect();
    let ids: Vec<Uuid> = firsts.iter().map(|c| c.claim).collect();
    // A claim past its timeout whose call left no answer (nor a turn), or any row past
    // the window, counts as absent and is taken over in the same statement.
    let taken: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO message_replays
             (tenant_id, conversation_id, idempotency_key, subject_ref, fingerprint, claim)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[],
                              $6::uuid[])
         ON CONFLICT (tenant_id, conversation_id, idempotency_key) DO UPDATE
             SET subject_ref = EXCLUDED.subject_ref, fingerprint = EXCLUDED.fingerprint,
                 claim = EXCLUDED.claim, claimed_at = now(),
                 answer = NULL, answered_at = NULL, turn_answer = NULL,
                 turn_message_id = NULL, turn_index = NULL, settled = false
             WHERE (message_replays.answer IS NULL AND message_replays.turn_answer IS NULL
                    AND message_replays.claimed_at < now() - make_interval(secs => $7))
                OR message_replays.claimed_at < now() - make_interval(secs => $8)
         RETURNING claim",
    )
    .bind(tenants)
    .bind(column(|c| &c.key.conversation_id))
    .bind(column(|c| &c.key.key))
    .bind(column(|c| &c.subject_ref))
    .bind(fingerprints)
    .bind(ids)
    .bind(CLAIM_TIMEOUT.as_secs_f64())
    .bind(window.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let taken: HashSet<Uuid> = taken.into_iter().collect();
    Ok(claims.iter().map(|c| taken.contains(&c.claim)).collect())
}
