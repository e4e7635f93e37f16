//! `RecordConsent` and `WithdrawConsent`: append records, sign one receipt per call,
//! emit the event, all in one transaction; then make every replica forget the subject.

use prost::Message as _;
use sqlx::PgConnection;
use veil_core::error::{ServiceError, ServiceResult};
use veil_proto::common::v1::Jurisdiction;
use veil_proto::consent::v1::*;
use veil_proto::events::v1::ConsentChanged;
use veil_proto::events::v1::event::Payload;

use super::convert::{self, instant};
use super::notices::notice_id;
use super::writes::{
    Started, Write, actor_json, base_record, check_notice, fingerprint, idempotency_key, language,
    load_purposes, method,
};
use super::{Caller, ConsentApi};
use crate::domain::{requires_opt_in, validate_keys};
use crate::store::records as store;

impl ConsentApi {
    pub(super) async fn record_consent_impl(
        &self,
        caller: &Caller,
        request: RecordConsentRequest,
    ) -> ServiceResult<RecordConsentResponse> {
        let subject = self.subject_of_id(&caller.tenant, "subject_id", &request.subject_id)?;
        if request.purpose_keys.is_empty() {
            return Err(ServiceError::invalid(
                "purpose_keys",
                "must name at least one purpose",
            ));
        }
        validate_keys("purpose_keys", &request.purpose_keys, 64)?;
        let choice = ConsentChoice::try_from(request.choice)
            .ok()
            .filter(|c| *c != ConsentChoice::Unspecified)
            .ok_or_else(|| ServiceError::invalid("choice", "is required"))?;
        let grant = choice == ConsentChoice::Grant;
        let language = language(&request.language)?;
        let method = method(request.collection_method)?;
        Jurisdiction::try_from(request.jurisdiction)
            .map_err(|_| ServiceError::invalid("jurisdiction", "is not a jurisdiction"))?;
        let now = crate::domain::now();
        let expires_at = instant(request.expires_at.as_ref(), "expires_at")?;
        if let Some(at) = expires_at {
            if !grant {
                return Err(ServiceError::invalid("expires_at", "only grants expire"));
            }
            if at <= now {
                return Err(ServiceError::invalid("expires_at", "is already past"));
            }
        }
        let evidence = convert::evidence(request.evidence.as_ref(), "evidence")?;
        let idempotency = idempotency_key(&request.idempotency_key)?;
        let notice_id = if request.notice_id.is_empty() {
            None
        } else {
            Some(notice_id(&request.notice_id, "notice_id")?)
        };
        let request_sha256 = fingerprint("record", &subject, {
            let mut r = request.clone();
            r.subject_id.clear();
            r.idempotency_key.clear();
            r.encode_to_vec()
        });
        let tenant = caller.tenant.as_uuid();
        let actor = actor_json(caller)?;
        let keys = request.purpose_keys.clone();
        let requested_jurisdiction = request.jurisdiction;
        let (mut tx, controller) = match self
            .begin_write(caller, &subject, idempotency.as_deref(), &request_sha256)
            .await?
        {
            Started::Replayed((records, receipt)) => {
                return Ok(RecordConsentResponse {
                    records,
                    receipt: Some(receipt),
                });
            }
            Started::Open(tx, controller) => (tx, controller),
        };
        let db: &mut PgConnection = &mut tx;
        let controller = &controller;
        {
            let jurisdiction = if requested_jurisdiction == Jurisdiction::Unspecified as i32 {
                controller.default_jurisdiction
            } else {
                requested_jurisdiction
            };
            let notice = match notice_id {
                Some(id) => Some(
                    crate::store::notices::by_id(&mut *db, tenant, id)
                        .await?
                        .ok_or_else(|| ServiceError::NotFound("notice".into()))?,
                ),
                None if grant && requires_opt_in(jurisdiction) => {
                    return Err(ServiceError::invalid(
                        "notice_id",
                        "is required for consent under this jurisdiction",
                    ));
                }
                None => None,
            };
            let purposes = load_purposes(db, tenant, &keys).await?;
            check_notice(notice.as_ref(), &purposes, now)?;
            let state = store::subject_state(db, tenant, subject.as_str()).await?;
            let mut records = Vec::with_capacity(purposes.len());
            for purpose in &purposes {
                if !purpose.consent_required {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "purpose {} does not rest on consent",
                        purpose.key
                    )));
                }
                if grant && purpose.archived {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "purpose {} is archived and accepts no new grants",
                        purpose.key
                    )));
                }
                let current = state.record(&purpose.key);
                let mut r = base_record(&subject, purpose, controller, &actor, now);
                r.supersedes_record_id = current.map(|c| c.record_id);
                r.language = language.clone();
                r.collection_method = method;
                r.jurisdiction = jurisdiction;
                r.evidence = evidence.clone().map(sqlx::types::Json);
                if let Some(n) = &notice {
                    r.notice_id = Some(n.id);
                    r.notice_version = n.version;
                    r.notice_sha256 = n.content_sha256.clone();
                }
                if grant {
                    let reaffirmed = current.is_some_and(|c| c.grants_at(now));
                    r.event_type = if reaffirmed {
                        ConsentEventType::Reaffirmed
                    } else {
                        ConsentEventType::Granted
                    } as i32;
                    r.state = ConsentState::Granted as i32;
                    r.expires_at = expires_at.or_else(|| {
                        purpose
                            .consent_validity_secs
                            .and_then(|secs| now.checked_add(time::Duration::seconds(secs)))
                    });
                    r.preference_conflict = state.opted_out_since(&purpose.opted_out_by).is_some();
                } else {
                    r.event_type = ConsentEventType::Denied as i32;
                    r.state = ConsentState::Denied as i32;
                }
                records.push(r);
            }
            let event: fn(ConsentChanged) -> Payload = if grant {
                Payload::ConsentGranted
            } else {
                Payload::ConsentDenied
            };
            let write = Write {
                subject: subject.clone(),
                records,
                event,
                idempotency_key: idempotency,
                request_sha256,
            };
            let (records, receipt) = self.finish_write(tx, caller, controller, write).await?;
            Ok(RecordConsentResponse {
                records,
                receipt: Some(receipt),
            })
        }
    }

    pub(super) async fn withdraw_consent_impl(
        &self,
        caller: &Caller,
        request: WithdrawConsentRequest,
    ) -> ServiceResult<WithdrawConsentResponse> {
        let subject = self.subject_of_id(&caller.tenant, "subject_id", &request.subject_id)?;
        validate_keys("purpose_keys", &request.purpose_keys, 64)?;
        let language = language(&request.language)?;
        let method = method(request.collection_method)?;
        let evidence = convert::evidence(request.evidence.as_ref(), "evidence")?;
        let idempotency = idempotency_key(&request.idempotency_key)?;
        let request_sha256 = fingerprint("withdraw", &subject, {
            let mut r = request.clone();
            r.subject_id.clear();
            r.idempotency_key.clear();
            r.encode_to_vec()
        });
        let tenant = caller.tenant.as_uuid();
        let actor = actor_json(caller)?;
        let now = crate::domain::now();
        let requested = request.purpose_keys.clone();
        let (mut tx, controller) = match self
            .begin_write(caller, &subject, idempotency.as_deref(), &request_sha256)
            .await?
        {
            Started::Replayed((records, receipt)) => {
                return Ok(WithdrawConsentResponse {
                    records,
                    receipt: Some(receipt),
                });
            }
            Started::Open(tx, controller) => (tx, controller),
        };
        let db: &mut PgConnection = &mut tx;
        let controller = &controller;
        {
            let state = store::subject_state(db, tenant, subject.as_str()).await?;
            let keys: Vec<String> = if requested.is_empty() {
                let mut granted: Vec<String> = state
                    .records
                    .iter()
                    .filter(|r| r.grants_at(now))
                    .map(|r| r.purpose_key.clone())
                    .collect();
                granted.sort();
                if granted.is_empty() {
                    return Err(ServiceError::FailedPrecondition(
                        "nothing to withdraw: no consent is granted".into(),
                    ));
                }
                granted
            } else {
                requested
            };
            let purposes = load_purposes(db, tenant, &keys).await?;
            let mut records = Vec::with_capacity(purposes.len());
            for purpose in &purposes {
                let current = state
                    .record(&purpose.key)
                    .filter(|r| r.grants_at(now))
                    .ok_or_else(|| {
                        ServiceError::FailedPrecondition(format!(
                            "purpose {}: no consent is granted to withdraw",
                            purpose.key
                        ))
                    })?;
                let previous = store::by_ids(&mut *db, tenant, &[current.record_id])
                    .await?
                    .into_iter()
                    .next()
                    .map(|(row, _)| row);
                let mut r = base_record(&subject, purpose, controller, &actor, now);
                r.supersedes_record_id = Some(current.record_id);
                r.event_type = ConsentEventType::Withdrawn as i32;
                r.state = ConsentState::Withdrawn as i32;
                r.language = language.clone();
                r.collection_method = method;
                r.evidence = evidence.clone().map(sqlx::types::Json);
                if let Some(previous) = previous {
                    // The withdrawal answers the consent given under that notice.
                    r.notice_id = previous.notice_id;
                    r.notice_version = previous.notice_version;
                    r.notice_sha256 = previous.notice_sha256;
                    r.jurisdiction = previous.jurisdiction;
                    if r.language.is_empty() {
                        r.language = previous.language;
                    }
                }
                records.push(r);
            }
            let event: fn(ConsentChanged) -> Payload = Payload::ConsentWithdrawn;
            let write = Write {
                subject: subject.clone(),
                records,
                event,
                idempotency_key: idempotency,
                request_sha256,
            };
            let (records, receipt) = self.finish_write(tx, caller, controller, write).await?;
            Ok(WithdrawConsentResponse {
                records,
                receipt: Some(receipt),
            })
        }
    }
}
