//! Running a verified request.
//!
//! [`start`] runs inside the caller's transaction and decides: ERASURE, ACCESS and
//! PORTABILITY first ask [`crate::holds::blocking_hold`]; a held request goes ON_HOLD
//! (closing_reason and hold_id name the hold), otherwise [`crate::saga::begin`] takes
//! it. Every other type moves to IN_PROGRESS and, after the commit, [`run_direct`] makes
//! the peer calls and completes it:
//!
//! - RESTRICTION: gateway `RestrictSubject(true)`;
//! - OBJECTION: consent `WithdrawConsent` for the request's purposes (empty: every
//!   consent-based purpose);
//! - OPT_OUT_SALE_SHARE: consent `SetPreferenceSignal` DO_NOT_SELL and DO_NOT_SHARE;
//! - LIMIT_SENSITIVE: consent `SetPreferenceSignal` LIMIT_SENSITIVE;
//! - RECTIFICATION: the corrected values went to the vault at intake; corrections of an
//!   existing vault token re-point the gateway's pseudonym maps (`RectifySubject`).
//!
//! Consent takes only external subject ids, which retention never keeps: intake puts the
//! id into the vault as a token of the subject (`subject_token`) and execution reads it
//! back for the call. Every call is idempotent, so a failed attempt leaves the request
//! IN_PROGRESS and [`super::tasks`] tries again; a refusal that a retry cannot fix
//! (invalid or unknown input) moves it to AWAITING_INPUT with the reason.
//! Rectification and restriction are passed on to every recipient registered in
//! consent (GDPR Art. 19) as `retention.recipient_notification` events.

use sqlx::PgConnection;
use tonic::Code;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{
    CollectionMethod, PageRequest, PreferenceSignalType, RequestState, RequestType, SubjectSelector,
};
use veil_proto::consent::v1::{
    ListRecipientsRequest, SetPreferenceSignalRequest, WithdrawConsentRequest,
};
use veil_proto::events::v1::RetentionRecipientNotification;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::{RectifySubjectRequest, RestrictSubjectRequest, TokenReplacement};
use veil_proto::vault::v1::DetokenizeRequest;

use super::store::{self, RequestRow};
use crate::state::Retention;

/// Purpose stated to the vault when retention reads a subject id back for a peer call.
pub const EXECUTION_PURPOSE: &str = "dsr_execution";
/// Why a rectification without corrections waits.
pub const AWAITING_CORRECTIONS: &str =
    "waiting for the corrected values: submit the request again with corrections";
/// Recipients read per page from consent.
const RECIPIENT_PAGE: i32 = 500;

/// What [`start`] did with a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A legal hold blocks it; it is ON_HOLD.
    Held { hold_id: String },
    /// The erasure or export saga took it; wake `saga_wake` after the commit.
    Saga,
    /// IN_PROGRESS; call [`run_direct`] after the commit.
    Direct,
    /// AWAITING_INPUT: a rectification without corrections waits for the subject's values
    /// (a new submission of the same request type supplies them).
    AwaitingInput,
}

/// Whether a request type runs through the saga (and is blocked by legal holds).
pub fn uses_saga(request_type: RequestType) -> bool {
    matches!(
        request_type,
        RequestType::Erasure | RequestType::Access | RequestType::Portability
    )
}

/// Starts a VERIFIED (or resumes an ON_HOLD) request inside the caller's transaction.
pub async fn start(
    conn: &mut PgConnection,
    state: &Retention,
    row: &RequestRow,
) -> Result<(RequestRow, Started), ServiceError> {
    if uses_saga(row.request_type) {
        if let Some(hold) = crate::holds::blocking_hold(conn, row.tenant, &row.subject_ref).await? {
            let reason = format!("blocked by legal hold {}", hold.hold_id);
            let held = if row.state == RequestState::OnHold {
                row.clone()
            } else {
                store::transition(
                    conn,
                    state,
                    row,
                    RequestState::OnHold,
                    "legal_hold",
                    Some(&reason),
                )
                .await?
            };
            store::set_hold(conn, &held, &hold.hold_id, &reason).await?;
            return Ok((
                held,
                Started::Held {
                    hold_id: hold.hold_id,
                },
            ));
        }
        crate::saga::begin(conn, state, row).await?;
        let started = store::load(conn, row.tenant, row.request_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("request".into()))?;
        return Ok((started, Started::Saga));
    }
    if row.request_type == RequestType::Rectification && row.correction_tokens.is_empty() {
        let waiting = store::transition(
            conn,
            state,
            row,
            RequestState::AwaitingInput,
            "awaiting_corrections",
            Some(AWAITING_CORRECTIONS),
        )
        .await?;
        return Ok((waiting, Started::AwaitingInput));
    }
    let started = store::transition(
        conn,
        state,
        row,
        RequestState::InProgress,
        "executing",
        None,
    )
    .await?;
    Ok((started, Started::Direct))
}

/// Makes the peer calls of an IN_PROGRESS request without a saga and completes it.
/// Failures are logged and leave the request for the retry task; the returned row is
/// the request as it stands afterwards.
pub async fn run_direct(
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<RequestRow, ServiceError> {
    let mut conn = state.pool.acquire().await?;
    let row = store::load(&mut conn, tenant, request_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("request".into()))?;
    drop(conn);
    if row.state != RequestState::InProgress || uses_saga(row.request_type) {
        return Ok(row);
    }
    let outcome = perform(state, &row).await;
    let mut tx = veil_core::db::begin(&state.pool).await?;
    let Some(current) = store::load_for_update(&mut tx, tenant, request_id).await? else {
        return Err(ServiceError::NotFound("request".into()));
    };
    if current.state != RequestState::InProgress {
        // Someone else finished or rejected it meanwhile.
        return Ok(current);
    }
    let finished = match outcome {
        Ok(()) => {
            if matches!(
                row.request_type,
                RequestType::Rectification | RequestType::Restriction
            ) {
                notify_recipients(&mut tx, state, &current).await?;
            }
            store::transition(
                &mut tx,
                state,
                &current,
                RequestState::Completed,
                "executed",
                None,
            )
            .await?
        }
        Err(failure) if failure.permanent => {
            store::transition(
                &mut tx,
                state,
                &current,
                RequestState::AwaitingInput,
                "peer_refused",
                Some(&failure.reason),
            )
            .await?
        }
        Err(failure) => {
            tracing::warn!(
                request_id = %request_id,
                reason = %failure.reason,
                "request execution failed; retried later"
            );
            touch(&mut tx, &current).await?;
            current
        }
    };
    tx.commit().await?;
    state.notify_relay();
    Ok(finished)
}

/// Records an attempt so the retry task waits `saga_retry_secs` before the next.
async fn touch(conn: &mut PgConnection, row: &RequestRow) -> Result<(), ServiceError> {
    sqlx::query("UPDATE requests SET updated_at = now() WHERE tenant_id = $1 AND request_id = $2")
        .bind(row.tenant.as_uuid())
        .bind(row.request_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Why a peer call failed; never carries personal data.
#[derive(Debug)]
struct Failure {
    reason: String,
    /// A retry cannot help (the peer refused the input itself).
    permanent: bool,
}

impl Failure {
    fn from_status(step: &str, status: &tonic::Status) -> Self {
        let permanent = matches!(
            status.code(),
            Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition | Code::OutOfRange
        );
        // The peer's message names fields, never values (every service's rule), so it
        // is safe to keep; the code alone would not tell an officer what to fix.
        Self {
            reason: format!(
                "{step}: {:?}: {}",
                status.code(),
                status.message().chars().take(200).collect::<String>()
            ),
            permanent,
        }
    }
}

fn selector(row: &RequestRow) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(Subject::SubjectRef(row.subject_ref.to_string())),
    })
}

async fn perform(state: &Retention, row: &RequestRow) -> Result<(), Failure> {
    let request_id = row.request_id.to_string();
    match row.request_type {
        RequestType::Restriction => {
            state
                .peers
                .gateway(row.tenant)
                .restrict_subject(RestrictSubjectRequest {
                    subject: selector(row),
                    request_id,
                    restricted: true,
                })
                .await
                .map_err(|s| Failure::from_status("gateway restrict", &s))?;
        }
        RequestType::Objection => {
            let subject_id = subject_id(state, row).await?;
            state
                .peers
                .consent(row.tenant)
                .withdraw_consent(WithdrawConsentRequest {
                    subject_id,
                    purpose_keys: row.purpose_keys.clone(),
                    collection_method: CollectionMethod::Api as i32,
                    language: row.locale.clone(),
                    evidence: None,
                    idempotency_key: format!("dsr:{request_id}"),
                })
                .await
                .map_err(|s| Failure::from_status("consent withdraw", &s))?;
        }
        RequestType::OptOutSaleShare | RequestType::LimitSensitive => {
            let subject_id = subject_id(state, row).await?;
            let signals: &[PreferenceSignalType] =
                if row.request_type == RequestType::LimitSensitive {
                    &[PreferenceSignalType::LimitSensitive]
                } else {
                    &[
                        PreferenceSignalType::DoNotSell,
                        PreferenceSignalType::DoNotShare,
                    ]
                };
            for signal in signals {
                state
                    .peers
                    .consent(row.tenant)
                    .set_preference_signal(SetPreferenceSignalRequest {
                        subject_id: subject_id.clone(),
                        signal: *signal as i32,
                        enabled: true,
                        source: CollectionMethod::Api as i32,
                        observed_at: Some(veil_core::convert::timestamp(row.received_at)),
                    })
                    .await
                    .map_err(|s| Failure::from_status("consent preference signal", &s))?;
            }
        }
        RequestType::Rectification => {
            let replacements: Vec<TokenReplacement> = row
                .correction_fields
                .iter()
                .zip(&row.correction_tokens)
                .filter(|(field, _)| field.starts_with(veil_core::crypto::TOKEN_PREFIX))
                .map(|(old, new)| TokenReplacement {
                    old_token: old.clone(),
                    new_token: new.clone(),
                })
                .collect();
            if !replacements.is_empty() {
                state
                    .peers
                    .gateway(row.tenant)
                    .rectify_subject(RectifySubjectRequest {
                        subject: selector(row),
                        request_id,
                        replacements,
                    })
                    .await
                    .map_err(|s| Failure::from_status("gateway rectify", &s))?;
            }
        }
        RequestType::Erasure
        | RequestType::Access
        | RequestType::Portability
        | RequestType::Unspecified => {}
    }
    Ok(())
}

/// The external subject id, read back from the vault token taken at intake.
async fn subject_id(state: &Retention, row: &RequestRow) -> Result<String, Failure> {
    let Some(token) = row.subject_token.clone() else {
        return Err(Failure {
            reason: "subject id was not kept at intake; submit the request again".into(),
            permanent: true,
        });
    };
    let response = state
        .peers
        .vault(row.tenant)
        .detokenize(DetokenizeRequest {
            tokens: vec![token],
            purpose: EXECUTION_PURPOSE.into(),
            subject: selector(row),
        })
        .await
        .map_err(|s| Failure::from_status("vault detokenize", &s))?
        .into_inner();
    match response.results.into_iter().next() {
        Some(result) if result.found => Ok(result.value),
        _ => Err(Failure {
            // The subject's key was shredded (erased meanwhile): nothing left to act on.
            reason: "subject id is no longer in the vault".into(),
            permanent: true,
        }),
    }
}

/// Emits one `recipient_notification` per recipient registered in consent.
async fn notify_recipients(
    conn: &mut PgConnection,
    state: &Retention,
    row: &RequestRow,
) -> Result<(), ServiceError> {
    let mut consent = state.peers.consent(row.tenant);
    let mut page_token = String::new();
    let context = row.context(Some(store::service_actor(row.tenant)));
    loop {
        let response = consent
            .list_recipients(ListRecipientsRequest {
                page: Some(PageRequest {
                    page_size: RECIPIENT_PAGE,
                    page_token: page_token.clone(),
                }),
            })
            .await
            .map_err(|s| {
                ServiceError::Unavailable(format!(
                    "consent recipients unavailable ({:?})",
                    s.code()
                ))
            })?
            .into_inner();
        for recipient in response.recipients {
            let payload = Payload::RetentionRecipientNotification(RetentionRecipientNotification {
                request_id: row.request_id.to_string(),
                request_type: row.request_type as i32,
                recipient_id: recipient.key,
                recipient_name: recipient.name,
            });
            state.emit(conn, &context, payload).await?;
        }
        page_token = response.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_erasure_access_and_portability_run_a_saga() {
        assert!(uses_saga(RequestType::Erasure));
        assert!(uses_saga(RequestType::Access));
        assert!(uses_saga(RequestType::Portability));
        for t in [
            RequestType::Rectification,
            RequestType::Restriction,
            RequestType::Objection,
            RequestType::OptOutSaleShare,
            RequestType::LimitSensitive,
        ] {
            assert!(!uses_saga(t), "{t:?}");
        }
    }

    #[test]
    fn input_refusals_are_permanent_and_outages_are_retried() {
        let refused = Failure::from_status("x", &tonic::Status::invalid_argument("purpose_keys"));
        assert!(refused.permanent);
        let down = Failure::from_status("x", &tonic::Status::unavailable("down"));
        assert!(!down.permanent);
        let denied = Failure::from_status("x", &tonic::Status::permission_denied("roles"));
        assert!(!denied.permanent);
    }
}
