//! `RecordConsent` and `WithdrawConsent`: append records, sign one receipt per call,
//! emit the event, all in one transaction; then make every replica forget the subject.

use std::collections::BTreeSet;
use std::time::Instant;

use prost::Message as _;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::{ServiceError, ServiceResult};
use veil_core::types::SubjectRef;
use veil_proto::common::v1::{CollectionMethod, Jurisdiction, NoticeKind};
use veil_proto::consent::v1::*;
use veil_proto::events::v1::ConsentChanged;
use veil_proto::events::v1::event::Payload;

use super::convert::{self, ActorJson, instant};
use super::notices::notice_id;
use super::{Caller, ConsentApi};
use crate::cache::subject_key;
use crate::domain::{MODEL_TRAINING, PurposeDef, requires_opt_in, validate_keys, validate_locale};
use crate::invalidation::Scope;
use crate::receipts::{ReceiptContent, sha256_hex};
use crate::store::notices::NoticeRow;
use crate::store::purposes::{self as purposes_store, ControllerRow};
use crate::store::records::{self as store, ReceiptRow, RecordRow};

/// A consent write ready to be stored: its records and how to announce them.
struct Write {
    subject: SubjectRef,
    records: Vec<RecordRow>,
    event: fn(ConsentChanged) -> Payload,
    idempotency_key: Option<String>,
    request_sha256: String,
}

/// A consent write after [`ConsentApi::begin_write`].
enum Started {
    /// A retry: the first call's records and receipt.
    Replayed((Vec<ConsentRecord>, ConsentReceipt)),
    /// A new write: its transaction and the controller settings.
    Open(sqlx::Transaction<'static, sqlx::Postgres>, ControllerRow),
}

/// Checks an optional idempotency key: at most 128 printable ASCII characters.
fn idempotency_key(key: &str) -> ServiceResult<Option<String>> {
    if key.is_empty() {
        return Ok(None);
    }
    if key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::invalid(
            "idempotency_key",
            "must be 1 to 128 printable ascii characters",
        ));
    }
    Ok(Some(key.to_string()))
}

fn method(value: i32) -> ServiceResult<i32> {
    CollectionMethod::try_from(value)
        .ok()
        .filter(|m| *m != CollectionMethod::Unspecified)
        .map(|m| m as i32)
        .ok_or_else(|| ServiceError::invalid("collection_method", "is required"))
}

fn language(value: &str) -> ServiceResult<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    validate_locale(value).map_err(|reason| ServiceError::invalid("language", reason))
}

/// The purposes named by `keys` as stored now (the built-in one written on first use);
/// NOT_FOUND names the first unknown key.
async fn load_purposes(
    db: &mut PgConnection,
    tenant: Uuid,
    keys: &[String],
) -> ServiceResult<Vec<PurposeDef>> {
    if keys.iter().any(|k| k == MODEL_TRAINING) {
        purposes_store::ensure_builtin(&mut *db, tenant).await?;
    }
    let stored = purposes_store::purposes_by_key(&mut *db, tenant, keys).await?;
    keys.iter()
        .map(|key| {
            stored
                .iter()
                .find(|p| &p.key == key)
                .cloned()
                .ok_or_else(|| ServiceError::NotFound(format!("purpose {key}")))
        })
        .collect()
}

/// A record with the purpose's ISO/IEC TS 27560 fields filled in.
fn base_record(
    subject: &SubjectRef,
    purpose: &PurposeDef,
    controller: &ControllerRow,
    actor: &serde_json::Value,
    now: OffsetDateTime,
) -> RecordRow {
    RecordRow {
        id: Uuid::now_v7(),
        subject_ref: subject.as_str().to_string(),
        purpose_key: purpose.key.clone(),
        state: 0,
        event_type: 0,
        purpose_version: purpose.version,
        legal_basis: purpose.legal_basis,
        pii_categories: purpose.data_categories.clone(),
        recipient_keys: purpose.recipient_keys.clone(),
        notice_id: None,
        notice_version: 0,
        notice_sha256: String::new(),
        language: String::new(),
        collection_method: 0,
        retention_secs: purpose.retention_secs,
        jurisdiction: 0,
        withdrawal_method: purpose.withdrawal_method.clone(),
        event_time: now,
        valid_from: now,
        expires_at: None,
        receipt_id: None,
        supersedes_record_id: None,
        recorded_by: Some(sqlx::types::Json(actor.clone())),
        evidence: None,
        controller_name: controller.name.clone(),
        controller_contact: controller.contact.clone(),
        preference_conflict: false,
        erased_at: None,
        seq: 0,
    }
}

impl ConsentApi {
    /// A retried call: the first result when the request matches, an error when the key
    /// was used for something else, `None` when the key is new.
    async fn replay(
        &self,
        caller: &Caller,
        key: Option<&str>,
        request_sha256: &str,
    ) -> ServiceResult<Option<(Vec<ConsentRecord>, ConsentReceipt)>> {
        let Some(key) = key else { return Ok(None) };
        let tenant = caller.tenant.as_uuid();
        let Some(receipt) = store::receipt_by_idempotency(&self.pool, tenant, key).await? else {
            return Ok(None);
        };
        if receipt.request_sha256.as_deref() != Some(request_sha256) {
            return Err(ServiceError::invalid(
                "idempotency_key",
                "was already used for a different request",
            ));
        }
        let records = store::by_receipt(&self.pool, tenant, receipt.id).await?;
        let tenant_text = caller.tenant.to_string();
        Ok(Some((
            records
                .iter()
                .map(|r| convert::record(r, &tenant_text, None))
                .collect(),
            receipt_to_proto(&receipt),
        )))
    }

    /// Signs the receipt and stores it, the records and the event in `tx`'s transaction.
    async fn store_write(
        &self,
        db: &mut PgConnection,
        caller: &Caller,
        controller: &ControllerRow,
        write: &mut Write,
    ) -> ServiceResult<ReceiptRow> {
        let tenant = caller.tenant.as_uuid();
        let receipt_id = Uuid::now_v7();
        for record in &mut write.records {
            record.receipt_id = Some(receipt_id);
        }
        let recipient_keys: Vec<String> = write
            .records
            .iter()
            .flat_map(|r| r.recipient_keys.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let recipients = if recipient_keys.is_empty() {
            Vec::new()
        } else {
            purposes_store::list_recipients(&mut *db, tenant, Some(&recipient_keys), "", 1000)
                .await?
        };
        let issued_at = crate::domain::now();
        let payload = crate::receipts::payload(&ReceiptContent {
            receipt_id,
            issued_at,
            tenant: caller.tenant,
            subject_ref: write.subject.as_str(),
            controller,
            records: &write.records,
            recipients: &recipients,
        });
        let jws = self
            .receipts
            .sign(&payload)
            .map_err(ServiceError::internal)?;
        let receipt = ReceiptRow {
            id: receipt_id,
            subject_ref: write.subject.as_str().to_string(),
            key_id: self.receipts.kid().to_string(),
            jws_sha256: sha256_hex(jws.as_bytes()),
            jws: Some(jws),
            issued_at,
            idempotency_key: write.idempotency_key.clone(),
            request_sha256: Some(write.request_sha256.clone()),
            erased_at: None,
        };
        store::insert_receipt(&mut *db, tenant, &receipt).await?;
        for record in &write.records {
            store::insert(&mut *db, tenant, record).await?;
        }
        let first = write.records.first();
        let event = ConsentChanged {
            record_ids: write.records.iter().map(|r| r.id.to_string()).collect(),
            purpose_keys: write
                .records
                .iter()
                .map(|r| r.purpose_key.clone())
                .collect(),
            notice_id: first
                .and_then(|r| r.notice_id)
                .map(|id| id.to_string())
                .unwrap_or_default(),
            collection_method: first.map(|r| r.collection_method).unwrap_or_default(),
            jurisdiction: first.map(|r| r.jurisdiction).unwrap_or_default(),
            receipt_id: receipt_id.to_string(),
            expires_at: write
                .records
                .iter()
                .filter_map(|r| r.expires_at)
                .min()
                .map(timestamp),
            preference_conflict_purpose_keys: write
                .records
                .iter()
                .filter(|r| r.preference_conflict)
                .map(|r| r.purpose_key.clone())
                .collect(),
        };
        self.emit(
            db,
            &caller.context(Some(&write.subject)),
            (write.event)(event),
        )
        .await?;
        Ok(receipt)
    }

    /// Starts a consent write: the earlier result of a retried call, or a transaction
    /// holding the subject's lock and the tenant's controller settings.
    async fn begin_write(
        &self,
        caller: &Caller,
        subject: &SubjectRef,
        idempotency: Option<&str>,
        request_sha256: &str,
    ) -> ServiceResult<Started> {
        if let Some(replayed) = self.replay(caller, idempotency, request_sha256).await? {
            return Ok(Started::Replayed(replayed));
        }
        let tenant = caller.tenant.as_uuid();
        let mut tx = self.pool.begin().await?;
        store::lock_subject(&mut tx, tenant, subject.as_str()).await?;
        let controller = purposes_store::controller(&mut *tx, tenant).await?;
        Ok(Started::Open(tx, controller))
    }

    /// Stores the records with their receipt and event, commits, then invalidates the
    /// subject's cached state everywhere.
    async fn finish_write(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        caller: &Caller,
        controller: &ControllerRow,
        mut write: Write,
    ) -> ServiceResult<(Vec<ConsentRecord>, ConsentReceipt)> {
        let tenant = caller.tenant.as_uuid();
        let receipt = match self
            .store_write(&mut tx, caller, controller, &mut write)
            .await
        {
            Err(ServiceError::Internal(error)) if is_unique_violation(&error) => {
                // A concurrent retry with the same idempotency key won; answer like it.
                drop(tx);
                return self
                    .replay(
                        caller,
                        write.idempotency_key.as_deref(),
                        &write.request_sha256,
                    )
                    .await?
                    .ok_or_else(|| ServiceError::Internal(error));
            }
            other => other?,
        };
        tx.commit().await?;
        let committed = Instant::now();
        self.relay.notify();
        if let Some(key) = subject_key(tenant, write.subject.as_str()) {
            self.invalidator
                .after_commit(Scope::Subject(key), committed)
                .await;
        }
        let tenant_text = caller.tenant.to_string();
        Ok((
            write
                .records
                .iter()
                .map(|r| convert::record(r, &tenant_text, None))
                .collect(),
            receipt_to_proto(&receipt),
        ))
    }

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
                            .map(|secs| now + time::Duration::seconds(secs))
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

/// A notice given with a grant must be a privacy notice in effect that covers every
/// purpose it lists.
fn check_notice(
    notice: Option<&NoticeRow>,
    purposes: &[PurposeDef],
    now: OffsetDateTime,
) -> ServiceResult<()> {
    let Some(notice) = notice else { return Ok(()) };
    if notice.kind != NoticeKind::PrivacyNotice as i32 {
        return Err(ServiceError::invalid(
            "notice_id",
            "is not a privacy notice",
        ));
    }
    if notice.effective_at > now {
        return Err(ServiceError::FailedPrecondition(
            "the notice is not in effect yet".into(),
        ));
    }
    if !notice.purpose_keys.is_empty()
        && let Some(p) = purposes
            .iter()
            .find(|p| !notice.purpose_keys.contains(&p.key))
    {
        return Err(ServiceError::FailedPrecondition(format!(
            "the notice does not cover purpose {}",
            p.key
        )));
    }
    Ok(())
}

fn actor_json(caller: &Caller) -> ServiceResult<serde_json::Value> {
    serde_json::to_value(ActorJson::from(&caller.actor())).map_err(ServiceError::internal)
}

/// What a retry must repeat: the operation, the subject and the request without its id
/// and key.
fn fingerprint(operation: &str, subject: &SubjectRef, encoded: Vec<u8>) -> String {
    let mut input = format!("{operation}\n{}\n", subject.as_str()).into_bytes();
    input.extend(encoded);
    sha256_hex(&input)
}

fn is_unique_violation(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<sqlx::Error>())
        .any(|e| matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505")))
}

/// The proto form of a receipt.
pub fn receipt_to_proto(r: &ReceiptRow) -> ConsentReceipt {
    ConsentReceipt {
        receipt_id: r.id.to_string(),
        jws: r.jws.clone().unwrap_or_default(),
        key_id: r.key_id.clone(),
        issued_at: Some(timestamp(r.issued_at)),
    }
}
