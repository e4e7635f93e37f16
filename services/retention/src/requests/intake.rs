//! SubmitRequest and VerifyRequest: a request is opened (or found again), its identity
//! verified by a trusted caller's assertion or a one-time code, and, once verified,
//! started through [`super::execute`].
//!
//! Duplicates: an open request of the same subject and type is returned instead of a
//! new one (flagged `duplicate`); the partial unique index on open requests makes this
//! hold under concurrent submissions too. A retried call with the same idempotency key
//! returns the request it opened. Either way a still unverified request gets a fresh
//! code (the old one stops working; wrong attempts keep counting).

use time::{Duration, OffsetDateTime};
use tonic::Code;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::{ErrorChain, ServiceError};
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{Actor, Jurisdiction, RequestState, RequestType, SubjectSelector};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{RetentionRequestReceived, RetentionRequestStateChanged};
use veil_proto::retention::v1::{RequestChannel, VerificationChallenge};
use veil_proto::vault::v1::{DetokenizeRequest, TokenizeItem, TokenizeRequest};

use super::due;
use super::execute::{self, Started};
use super::notifier::CodeDelivery;
use super::store::{self, NewRequest, RequestRow};
use super::verification::{self, Issued};
use crate::state::Retention;

/// Entity type of the subject id kept in the vault for consent calls.
pub const SUBJECT_ID_ENTITY: &str = "DSR_SUBJECT_ID";
/// Purpose stated to the vault when a correction names an existing token.
pub const RECTIFICATION_PURPOSE: &str = "dsr_rectification";

/// A validated SubmitRequest.
pub struct Submission {
    pub tenant: TenantId,
    /// The external id; personal data, used for the vault and then dropped.
    pub subject_id: String,
    pub subject_ref: SubjectRef,
    pub request_type: RequestType,
    pub channel: RequestChannel,
    pub jurisdiction: Jurisdiction,
    pub locale: String,
    pub purpose_keys: Vec<String>,
    /// (field, new value) per correction.
    pub corrections: Vec<(String, String)>,
    /// The caller may vouch for the subject's identity and did.
    pub identity_asserted: bool,
    pub idempotency_key: Option<String>,
    pub actor: Actor,
}

/// What SubmitRequest answers.
#[derive(Debug)]
pub struct Submitted {
    pub row: RequestRow,
    pub challenge: Option<VerificationChallenge>,
    /// An open request of the same subject and type was returned instead.
    pub duplicate: bool,
    /// The legal hold that put the request ON_HOLD.
    pub held_by: Option<String>,
}

/// Opens a request, or returns the open or idempotent one.
pub async fn submit(state: &Retention, submission: Submission) -> Result<Submitted, ServiceError> {
    if let Some(found) = existing(state, &submission).await? {
        return Ok(found);
    }
    let prepared = prepare(state, &submission).await?;
    let now = OffsetDateTime::now_utc();
    let deadlines = due::deadlines(submission.jurisdiction, now);
    let request_id = Uuid::now_v7();
    let issued =
        (!submission.identity_asserted).then(|| issue(state, submission.tenant, request_id));
    let new = NewRequest {
        request_id,
        tenant: submission.tenant,
        subject_ref: submission.subject_ref.clone(),
        request_type: submission.request_type,
        state: if submission.identity_asserted {
            RequestState::Verified
        } else {
            RequestState::Received
        },
        channel: submission.channel as i32,
        jurisdiction: submission.jurisdiction,
        locale: submission.locale.clone(),
        purpose_keys: submission.purpose_keys.clone(),
        received_at: now,
        due_at: deadlines.due_at,
        max_due_at: deadlines.max_due_at,
        ack_due_at: deadlines.ack_due_at,
        submitted_by: submission.actor.clone(),
        idempotency_key: submission.idempotency_key.clone(),
        code_hash: issued.as_ref().map(|i| i.hash.clone()),
        code_expires_at: issued.as_ref().map(|i| i.expires_at),
        code_max_attempts: state.settings.verification_max_attempts,
        subject_token: prepared.subject_token,
        correction_fields: prepared.correction_fields,
        correction_tokens: prepared.correction_tokens,
    };
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let Some(row) = store::insert(&mut tx, &new).await? else {
        // A concurrent submission won the race; answer with its request.
        drop(tx);
        return match existing(state, &submission).await? {
            Some(found) => Ok(found),
            None => Err(ServiceError::Unavailable(
                "a concurrent submission changed the request; retry".into(),
            )),
        };
    };
    let context = row.context(Some(submission.actor.clone()));
    let received = Payload::RetentionRequestReceived(RetentionRequestReceived {
        request_id: row.request_id.to_string(),
        request_type: row.request_type as i32,
        channel: channel_label(submission.channel).into(),
        jurisdiction: row.jurisdiction as i32,
        due_at: Some(timestamp(row.due_at)),
    });
    state.emit(&mut tx, &context, received).await?;
    let mut started = None;
    let mut row = row;
    if submission.identity_asserted {
        let changed = Payload::RetentionRequestStateChanged(RetentionRequestStateChanged {
            request_id: row.request_id.to_string(),
            request_type: row.request_type as i32,
            from_state: RequestState::Received as i32,
            to_state: RequestState::Verified as i32,
            reason_code: "identity_asserted".into(),
            due_at: Some(timestamp(row.due_at)),
        });
        state.emit(&mut tx, &context, changed).await?;
        let (next, how) = execute::start(&mut tx, state, &row).await?;
        row = next;
        started = Some(how);
    }
    tx.commit().await?;
    let (row, held_by) = after_commit(state, row, started).await;
    let challenge = match issued {
        Some(issued) => Some(deliver(state, &row, issued).await),
        None => None,
    };
    Ok(Submitted {
        row,
        challenge,
        duplicate: false,
        held_by,
    })
}

/// The request an idempotent retry or a duplicate submission refers to, answered.
async fn existing(
    state: &Retention,
    submission: &Submission,
) -> Result<Option<Submitted>, ServiceError> {
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let mut duplicate = false;
    let mut found = None;
    if let Some(key) = &submission.idempotency_key {
        found = store::find_by_idempotency_key(&mut tx, submission.tenant, key).await?;
        if let Some(row) = &found
            && (row.subject_ref != submission.subject_ref
                || row.request_type != submission.request_type)
        {
            return Err(ServiceError::invalid(
                "idempotency_key",
                "was already used for a different request",
            ));
        }
    }
    if found.is_none() {
        found = store::find_open(
            &mut tx,
            submission.tenant,
            &submission.subject_ref,
            submission.request_type,
        )
        .await?;
        duplicate = found.is_some();
    }
    let Some(row) = found else {
        return Ok(None);
    };
    if row.state == RequestState::AwaitingInput
        && row.request_type == RequestType::Rectification
        && !submission.corrections.is_empty()
    {
        // The vault calls happen outside the transaction; the state is checked again.
        drop(tx);
        let mut supplied = supply_corrections(state, submission, row.request_id).await?;
        supplied.duplicate = duplicate;
        return Ok(Some(supplied));
    }
    if row.state != RequestState::Received {
        tx.commit().await?;
        return Ok(Some(Submitted {
            held_by: row
                .hold_id
                .clone()
                .filter(|_| row.state == RequestState::OnHold),
            row,
            challenge: None,
            duplicate,
        }));
    }
    if submission.identity_asserted {
        let verified = store::transition_by(
            &mut tx,
            state,
            &row,
            RequestState::Verified,
            "identity_asserted",
            None,
            submission.actor.clone(),
        )
        .await?;
        let (next, how) = execute::start(&mut tx, state, &verified).await?;
        tx.commit().await?;
        let (row, held_by) = after_commit(state, next, Some(how)).await;
        return Ok(Some(Submitted {
            row,
            challenge: None,
            duplicate,
            held_by,
        }));
    }
    let issued = issue(state, row.tenant, row.request_id);
    sqlx::query(
        "UPDATE requests SET code_hash = $3, code_expires_at = $4, updated_at = now() \
         WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(row.tenant.as_uuid())
    .bind(row.request_id)
    .bind(&issued.hash)
    .bind(issued.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let challenge = deliver(state, &row, issued).await;
    Ok(Some(Submitted {
        row,
        challenge: Some(challenge),
        duplicate,
        held_by: None,
    }))
}

/// Gives a rectification that awaits its values the corrections of a new submission
/// and runs it.
async fn supply_corrections(
    state: &Retention,
    submission: &Submission,
    request_id: Uuid,
) -> Result<Submitted, ServiceError> {
    let prepared = prepare(state, submission).await?;
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let row = store::load_for_update(&mut tx, submission.tenant, request_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("request".into()))?;
    if row.state != RequestState::AwaitingInput {
        return Err(ServiceError::FailedPrecondition(format!(
            "request {request_id} no longer awaits corrections"
        )));
    }
    sqlx::query(
        "UPDATE requests SET correction_fields = $3, correction_tokens = $4, updated_at = now() \
         WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(row.tenant.as_uuid())
    .bind(request_id)
    .bind(&prepared.correction_fields)
    .bind(&prepared.correction_tokens)
    .execute(&mut *tx)
    .await?;
    let next = store::transition_by(
        &mut tx,
        state,
        &row,
        RequestState::InProgress,
        "corrections_received",
        Some(""),
        submission.actor.clone(),
    )
    .await?;
    tx.commit().await?;
    let (row, held_by) = after_commit(state, next, Some(Started::Direct)).await;
    Ok(Submitted {
        row,
        challenge: None,
        duplicate: true,
        held_by,
    })
}

fn issue(state: &Retention, tenant: TenantId, request_id: Uuid) -> Issued {
    let ttl = Duration::seconds(
        i64::try_from(state.settings.verification_code_ttl_secs).unwrap_or(i64::MAX / 2),
    );
    verification::issue(
        &state.subjects,
        &tenant,
        request_id,
        OffsetDateTime::now_utc(),
        ttl,
    )
}

/// Hands the code to the notifier and builds the challenge the response carries.
async fn deliver(state: &Retention, row: &RequestRow, issued: Issued) -> VerificationChallenge {
    let delivery = CodeDelivery {
        tenant: row.tenant,
        request_id: row.request_id,
        subject_ref: &row.subject_ref,
        locale: &row.locale,
        code: &issued.code,
        expires_at: issued.expires_at,
    };
    if let Err(error) = state.notifier.deliver(&delivery).await {
        tracing::warn!(
            request_id = %row.request_id,
            error = %ErrorChain(&error),
            "verification code delivery failed; the caller must deliver it"
        );
    }
    VerificationChallenge {
        code: issued.code,
        expires_at: Some(timestamp(issued.expires_at)),
        max_attempts: row.code_max_attempts,
    }
}

/// After the commit of a start: wakes the relay and the saga, runs direct requests.
/// Returns the request as it stands and the hold blocking it, if any.
pub async fn after_commit(
    state: &Retention,
    row: RequestRow,
    started: Option<Started>,
) -> (RequestRow, Option<String>) {
    state.notify_relay();
    match started {
        Some(Started::Held { hold_id }) => (row, Some(hold_id)),
        Some(Started::Saga) => {
            state.saga_wake.notify_waiters();
            (row, None)
        }
        Some(Started::Direct) => {
            match execute::run_direct(state, row.tenant, row.request_id).await {
                Ok(done) => (done, None),
                Err(error) => {
                    // The request stays IN_PROGRESS; the retry task takes it from here.
                    tracing::warn!(
                        request_id = %row.request_id,
                        error = %ErrorChain(&error),
                        "request execution failed; retried later"
                    );
                    (row, None)
                }
            }
        }
        Some(Started::AwaitingInput) | None => (row, None),
    }
}

/// What intake keeps of the personal data in a submission: vault tokens only.
#[derive(Default)]
struct Prepared {
    subject_token: Option<String>,
    correction_fields: Vec<String>,
    correction_tokens: Vec<String>,
}

/// Puts the subject id (for consent calls) or the corrected values into the vault.
async fn prepare(state: &Retention, submission: &Submission) -> Result<Prepared, ServiceError> {
    let mut prepared = Prepared::default();
    match submission.request_type {
        RequestType::Objection | RequestType::OptOutSaleShare | RequestType::LimitSensitive => {
            let tokens = tokenize(
                state,
                submission.tenant,
                vec![TokenizeItem {
                    subject_id: submission.subject_id.clone(),
                    entity_type: SUBJECT_ID_ENTITY.into(),
                    value: submission.subject_id.clone(),
                }],
            )
            .await?;
            prepared.subject_token = tokens.into_iter().next();
        }
        RequestType::Rectification if !submission.corrections.is_empty() => {
            let entity_types = correction_entity_types(state, submission).await?;
            let items = submission
                .corrections
                .iter()
                .zip(entity_types)
                .map(|((_, value), entity_type)| TokenizeItem {
                    subject_id: submission.subject_id.clone(),
                    entity_type,
                    value: value.clone(),
                })
                .collect();
            prepared.correction_tokens = tokenize(state, submission.tenant, items).await?;
            prepared.correction_fields = submission
                .corrections
                .iter()
                .map(|(field, _)| field.clone())
                .collect();
        }
        _ => {}
    }
    Ok(prepared)
}

/// The entity type of each correction: a token's own type (after checking it belongs to
/// the subject), or the field name upper-cased (`contact.email` -> `CONTACT_EMAIL`).
async fn correction_entity_types(
    state: &Retention,
    submission: &Submission,
) -> Result<Vec<String>, ServiceError> {
    let tokens: Vec<String> = submission
        .corrections
        .iter()
        .filter(|(field, _)| is_token(field))
        .map(|(field, _)| field.clone())
        .collect();
    let mut token_types = Vec::new();
    if !tokens.is_empty() {
        let response = state
            .peers
            .vault(submission.tenant)
            .detokenize(DetokenizeRequest {
                tokens,
                purpose: RECTIFICATION_PURPOSE.into(),
                subject: Some(SubjectSelector {
                    subject: Some(Subject::SubjectRef(submission.subject_ref.to_string())),
                }),
            })
            .await
            .map_err(|s| vault_error("corrections", &s))?
            .into_inner();
        token_types = response.results;
    }
    let mut found = token_types.into_iter();
    let mut types = Vec::with_capacity(submission.corrections.len());
    for (i, (field, _)) in submission.corrections.iter().enumerate() {
        if is_token(field) {
            match found.next() {
                Some(result) if result.found => types.push(result.entity_type),
                _ => {
                    return Err(ServiceError::invalid(
                        format!("corrections[{i}].field"),
                        "is not a vault token of the subject",
                    ));
                }
            }
        } else {
            types.push(field_entity_type(field));
        }
    }
    Ok(types)
}

/// Whether a correction field names a vault token.
pub fn is_token(field: &str) -> bool {
    field.starts_with(veil_core::crypto::TOKEN_PREFIX)
}

/// The entity type of a named field: upper case, separators as underscores.
pub fn field_entity_type(field: &str) -> String {
    field
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

async fn tokenize(
    state: &Retention,
    tenant: TenantId,
    items: Vec<TokenizeItem>,
) -> Result<Vec<String>, ServiceError> {
    let response = state
        .peers
        .vault(tenant)
        .tokenize(TokenizeRequest {
            items,
            store_value: true,
            // When the vault receives it: the request was read just before.
            started_at: None,
        })
        .await
        .map_err(|s| vault_error("corrections", &s))?
        .into_inner();
    Ok(response.tokens.into_iter().map(|t| t.token).collect())
}

fn vault_error(field: &str, status: &tonic::Status) -> ServiceError {
    match status.code() {
        Code::InvalidArgument | Code::ResourceExhausted => {
            ServiceError::invalid(field, format!("refused by the vault: {}", status.message()))
        }
        code => ServiceError::Unavailable(format!("vault unavailable ({code:?})")),
    }
}

/// The channel's label in `request_received`.
pub fn channel_label(channel: RequestChannel) -> &'static str {
    match channel {
        RequestChannel::Unspecified => "unspecified",
        RequestChannel::Chat => "chat",
        RequestChannel::WebForm => "web_form",
        RequestChannel::Email => "email",
        RequestChannel::Api => "api",
        RequestChannel::Phone => "phone",
        RequestChannel::Postal => "postal",
    }
}

/// What VerifyRequest answers.
#[derive(Debug)]
pub struct Verified {
    pub row: RequestRow,
    pub verified: bool,
    pub attempts_remaining: i32,
    pub held_by: Option<String>,
}

/// Checks `code` against the request's one-time code. A wrong code uses up an attempt;
/// the last one rejects the request as unverifiable.
pub async fn verify(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
    code: &str,
    actor: Actor,
    only_submitted_by: Option<&str>,
) -> Result<Verified, ServiceError> {
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let row = store::load_for_update(&mut tx, tenant, request_id)
        .await?
        .filter(|r| only_submitted_by.is_none_or(|p| r.submitted_by.principal_id == p))
        .ok_or_else(|| ServiceError::NotFound("request".into()))?;
    let remaining = (row.code_max_attempts - row.code_attempts).max(0);
    match row.state {
        RequestState::Received => {}
        RequestState::Rejected | RequestState::Cancelled => {
            return Err(ServiceError::FailedPrecondition(format!(
                "request {request_id} is closed"
            )));
        }
        // Verified already (a retried call): nothing to do.
        _ => {
            return Ok(Verified {
                held_by: row
                    .hold_id
                    .clone()
                    .filter(|_| row.state == RequestState::OnHold),
                row,
                verified: true,
                attempts_remaining: remaining,
            });
        }
    }
    let (Some(hash), Some(expires_at)) = (&row.code_hash, row.code_expires_at) else {
        return Err(ServiceError::FailedPrecondition(format!(
            "request {request_id} has no code to verify"
        )));
    };
    if expires_at <= OffsetDateTime::now_utc() {
        return Err(ServiceError::FailedPrecondition(format!(
            "the code of request {request_id} expired; submit the request again for a new one"
        )));
    }
    if verification::matches(&state.subjects, &tenant, request_id, code, hash) {
        let verified = store::transition_by(
            &mut tx,
            state,
            &row,
            RequestState::Verified,
            "code_verified",
            None,
            actor,
        )
        .await?;
        let (next, how) = execute::start(&mut tx, state, &verified).await?;
        tx.commit().await?;
        let (row, held_by) = after_commit(state, next, Some(how)).await;
        return Ok(Verified {
            row,
            verified: true,
            attempts_remaining: remaining,
            held_by,
        });
    }
    let attempts_remaining = remaining - 1;
    sqlx::query(
        "UPDATE requests SET code_attempts = code_attempts + 1, updated_at = now() \
         WHERE tenant_id = $1 AND request_id = $2",
    )
    .bind(tenant.as_uuid())
    .bind(request_id)
    .execute(&mut *tx)
    .await?;
    let row = if attempts_remaining <= 0 {
        store::transition_by(
            &mut tx,
            state,
            &row,
            RequestState::Rejected,
            "verification_failed",
            Some("identity could not be verified: too many wrong codes"),
            actor,
        )
        .await?
    } else {
        row
    };
    tx.commit().await?;
    state.notify_relay();
    Ok(Verified {
        row,
        verified: false,
        attempts_remaining: attempts_remaining.max(0),
        held_by: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_fields_become_entity_types() {
        assert_eq!(field_entity_type("contact.email"), "CONTACT_EMAIL");
        assert_eq!(field_entity_type("address-line-1"), "ADDRESS_LINE_1");
        assert!(is_token("tok_AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_token("contact.email"));
    }
}
