//! The machinery shared by consent writes: idempotent replay, the subject lock, the
//! receipt, records and event stored in one transaction, then cache invalidation.

use std::collections::BTreeSet;
use std::time::Instant;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::error::{ServiceError, ServiceResult};
use veil_core::types::SubjectRef;
use veil_proto::common::v1::{CollectionMethod, NoticeKind};
use veil_proto::consent::v1::*;
use veil_proto::events::v1::ConsentChanged;
use veil_proto::events::v1::event::Payload;

use super::convert::{self, ActorJson};
use super::{Caller, ConsentApi};
use crate::cache::subject_key;
use crate::domain::{MODEL_TRAINING, PurposeDef, validate_locale};
use crate::invalidation::Scope;
use crate::receipts::{ReceiptContent, sha256_hex};
use crate::store::notices::NoticeRow;
use crate::store::purposes::{self as purposes_store, ControllerRow};
use crate::store::records::{self as store, ReceiptRow, RecordRow};

/// A consent write ready to be stored: its records and how to announce them.
pub(super) struct Write {
    pub(super) subject: SubjectRef,
    pub(super) records: Vec<RecordRow>,
    pub(super) event: fn(ConsentChanged) -> Payload,
    pub(super) idempotency_key: Option<String>,
    pub(super) request_sha256: String,
}

/// A consent write after [`ConsentApi::begin_write`].
pub(super) enum Started {
    /// A retry: the first call's records and receipt.
    Replayed((Vec<ConsentRecord>, ConsentReceipt)),
    /// A new write: its transaction and the controller settings.
    Open(sqlx::Transaction<'static, sqlx::Postgres>, ControllerRow),
}

/// Checks an optional idempotency key: at most 128 printable ASCII characters.
pub(super) fn idempotency_key(key: &str) -> ServiceResult<Option<String>> {
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

pub(super) fn method(value: i32) -> ServiceResult<i32> {
    CollectionMethod::try_from(value)
        .ok()
        .filter(|m| *m != CollectionMethod::Unspecified)
        .map(|m| m as i32)
        .ok_or_else(|| ServiceError::invalid("collection_method", "is required"))
}

pub(super) fn language(value: &str) -> ServiceResult<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    validate_locale(value).map_err(|reason| ServiceError::invalid("language", reason))
}

/// The purposes named by `keys` as stored now (the built-in one written on first use);
/// NOT_FOUND names the first unknown key.
pub(super) async fn load_purposes(
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
pub(super) fn base_record(
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
    pub(super) async fn replay(
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
                .map(|r| convert::record(r, &tenant_text))
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
    pub(super) async fn begin_write(
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
        let mut tx = veil_core::db::begin(&self.pool).await?;
        store::lock_subject(&mut tx, tenant, subject.as_str()).await?;
        let controller = purposes_store::controller(&mut *tx, tenant).await?;
        Ok(Started::Open(tx, controller))
    }

    /// Stores the records with their receipt and event, commits, then invalidates the
    /// subject's cached state everywhere.
    pub(super) async fn finish_write(
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
                .map(|r| convert::record(r, &tenant_text))
                .collect(),
            receipt_to_proto(&receipt),
        ))
    }
}

/// A notice given with a grant must be a privacy notice in effect that covers every
/// purpose it lists.
pub(super) fn check_notice(
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

pub(super) fn actor_json(caller: &Caller) -> ServiceResult<serde_json::Value> {
    serde_json::to_value(ActorJson::from(&caller.actor())).map_err(ServiceError::internal)
}

/// What a retry must repeat: the operation, the subject and the request without its id
/// and key.
pub(super) fn fingerprint(operation: &str, subject: &SubjectRef, encoded: Vec<u8>) -> String {
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
