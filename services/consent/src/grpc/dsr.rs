//! Data-subject rights and proof: `History`, `VerifyReceipt`, `ExportSubject`,
//! `EraseSubject`.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::crypto::jws::JwsError;
use veil_core::error::{ServiceError, ServiceResult};
use veil_proto::common::v1::{ExportChunk, PageResponse};
use veil_proto::consent::v1::*;

use super::convert::{self, json_to_struct};
use super::{Caller, ConsentApi, page_cursor, page_size, page_token};
use crate::cache::subject_key;
use crate::domain::validate_key;
use crate::invalidation::Scope;
use crate::receipts::{
    basis_label, event_type_label, jurisdiction_label, method_label, record_ids, rfc3339,
    sha256_hex, state_label,
};
use crate::store;
use crate::store::records::RecordRow;

/// Largest export chunk, in bytes of JSON Lines.
const CHUNK_BYTES: usize = 64 * 1024;

fn failure(reason: &str, key_id: String) -> VerifyReceiptResponse {
    VerifyReceiptResponse {
        valid: false,
        failure_reason: reason.to_string(),
        key_id,
        ..Default::default()
    }
}

/// The `kid` of a compact JWS header, if readable.
fn header_kid(token: &str) -> String {
    token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("kid").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// Whether the stored record says what the receipt says about it.
fn matches_payload(record: &RecordRow, payload: &Value) -> bool {
    let id = record.id.to_string();
    let find = |section: &str| {
        payload
            .pointer(section)
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i.get("recordId").and_then(Value::as_str) == Some(&id))
            })
            .cloned()
    };
    let (Some(purpose), Some(event)) = (find("/piiProcessing/purposes"), find("/event")) else {
        return false;
    };
    purpose.get("purpose").and_then(Value::as_str) == Some(&record.purpose_key)
        && event.get("eventType").and_then(Value::as_str)
            == Some(&event_type_label(record.event_type))
        && event.get("eventState").and_then(Value::as_str) == Some(&state_label(record.state))
        && event.get("eventTime").and_then(Value::as_str) == Some(&rfc3339(record.event_time))
}

/// One record as a line of the subject's export.
fn record_line(r: &RecordRow) -> Value {
    json!({
        "record_id": r.id.to_string(),
        "purpose": r.purpose_key,
        "purpose_version": r.purpose_version,
        "lawful_basis": basis_label(r.legal_basis),
        "pii_categories": r.pii_categories,
        "recipients": r.recipient_keys,
        "event_type": event_type_label(r.event_type),
        "state": state_label(r.state),
        "event_time": rfc3339(r.event_time),
        "valid_from": rfc3339(r.valid_from),
        "expires_at": r.expires_at.map(rfc3339),
        "notice_id": r.notice_id.map(|id| id.to_string()),
        "notice_version": r.notice_version,
        "notice_sha256": r.notice_sha256,
        "language": r.language,
        "collection_method": method_label(r.collection_method),
        "jurisdiction": jurisdiction_label(r.jurisdiction),
        "withdrawal_method": r.withdrawal_method,
        "receipt_id": r.receipt_id.map(|id| id.to_string()),
        "preference_conflict": r.preference_conflict,
        "evidence": r.evidence.as_ref().map(|e| e.0.clone()),
    })
}

/// Cuts sections of JSON lines into chunks of complete lines.
fn chunks(sections: Vec<(&str, Vec<Value>)>) -> Vec<ExportSubjectResponse> {
    let mut out: Vec<ExportChunk> = Vec::new();
    for (section, lines) in sections {
        let mut buffer = Vec::new();
        for line in lines {
            let mut encoded = line.to_string().into_bytes();
            encoded.push(b'\n');
            if !buffer.is_empty() && buffer.len() + encoded.len() > CHUNK_BYTES {
                out.push(ExportChunk {
                    section: section.to_string(),
                    json_lines: std::mem::take(&mut buffer),
                    ..Default::default()
                });
            }
            buffer.extend(encoded);
        }
        if !buffer.is_empty() {
            out.push(ExportChunk {
                section: section.to_string(),
                json_lines: buffer,
                ..Default::default()
            });
        }
    }
    if out.is_empty() {
        out.push(ExportChunk {
            section: "consent_records".into(),
            ..Default::default()
        });
    }
    let total = out.len();
    out.into_iter()
        .enumerate()
        .map(|(i, mut chunk)| {
            chunk.sequence = i64::try_from(i).unwrap_or(i64::MAX);
            chunk.last = i + 1 == total;
            ExportSubjectResponse { chunk: Some(chunk) }
        })
        .collect()
}

impl ConsentApi {
    pub(super) async fn history_impl(
        &self,
        caller: &Caller,
        request: HistoryRequest,
    ) -> ServiceResult<HistoryResponse> {
        let subject = self.subject_of_id(&caller.tenant, "subject_id", &request.subject_id)?;
        if !request.purpose_key.is_empty() {
            validate_key("purpose_key", &request.purpose_key)?;
        }
        let limit = page_size(request.page.as_ref())?;
        let before = page_cursor(request.page.as_ref())?
            .map(|c| c.parse::<i64>())
            .transpose()
            .map_err(|_| {
                ServiceError::invalid("page.page_token", "is not a token from this api")
            })?;
        let purpose = Some(request.purpose_key.as_str()).filter(|k| !k.is_empty());
        let tenant = caller.tenant.as_uuid();
        let mut rows = store::records::history(
            &self.pool,
            tenant,
            subject.as_str(),
            purpose,
            before,
            limit + 1,
        )
        .await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some(last) if more => page_token(&last.seq.to_string()),
            _ => String::new(),
        };
        let tenant_text = caller.tenant.to_string();
        Ok(HistoryResponse {
            records: rows
                .iter()
                .map(|r| convert::record(r, &tenant_text))
                .collect(),
            page: Some(PageResponse {
                next_page_token: next,
            }),
        })
    }

    pub(super) async fn verify_receipt_impl(
        &self,
        caller: &Caller,
        request: VerifyReceiptRequest,
    ) -> ServiceResult<VerifyReceiptResponse> {
        if request.jws.is_empty() {
            return Err(ServiceError::invalid("jws", "must not be empty"));
        }
        let kid = header_kid(&request.jws);
        let payload = match self.receipts.verify(&request.jws) {
            Ok(payload) => payload,
            Err(error) => {
                let reason = match error {
                    JwsError::UnknownKey => "unknown key id",
                    JwsError::Signature => "bad signature",
                    JwsError::Type => "not a consent receipt",
                    JwsError::Algorithm => "unsupported algorithm",
                    JwsError::Payload => "payload is not json",
                    _ => "malformed receipt",
                };
                return Ok(failure(reason, kid));
            }
        };
        let ids = record_ids(&payload);
        let receipt_id = payload
            .get("receiptId")
            .and_then(Value::as_str)
            .and_then(|id| Uuid::parse_str(id).ok());
        let parsed: Option<Vec<Uuid>> = ids.iter().map(|id| Uuid::parse_str(id).ok()).collect();
        let (Some(receipt_id), Some(parsed)) = (receipt_id, parsed.filter(|p| !p.is_empty()))
        else {
            return Ok(failure("payload names no receipt or records", kid));
        };
        let tenant = caller.tenant.as_uuid();
        // Receipts of other tenants are unknown here, like any other id.
        let Some(stored) = store::records::receipt_by_id(&self.pool, tenant, receipt_id).await?
        else {
            return Ok(failure("unknown receipt", kid));
        };
        if stored.jws_sha256 != sha256_hex(request.jws.as_bytes()) {
            return Ok(failure("receipt differs from the one issued", kid));
        }
        let records = store::records::by_ids(&self.pool, tenant, &parsed).await?;
        if records.len() != parsed.len()
            || records
                .iter()
                .any(|(r, _)| r.receipt_id != Some(receipt_id))
        {
            return Ok(failure("records of the receipt are missing", kid));
        }
        if records.iter().any(|(r, _)| !matches_payload(r, &payload)) {
            return Ok(failure("records do not match the receipt", kid));
        }
        let now = OffsetDateTime::now_utc();
        let erased = records.iter().any(|(r, _)| r.erased_at.is_some());
        let current = !erased
            && records
                .iter()
                .all(|(r, latest)| *latest && r.expires_at.is_none_or(|at| at > now));
        Ok(VerifyReceiptResponse {
            valid: true,
            failure_reason: String::new(),
            key_id: kid,
            payload: Some(json_to_struct(&payload)),
            record_ids: ids,
            current,
            subject_erased: erased,
        })
    }

    pub(super) async fn export_impl(
        &self,
        caller: &Caller,
        request: ExportSubjectRequest,
    ) -> ServiceResult<Vec<ExportSubjectResponse>> {
        let subject = self.subject_of(&caller.tenant, request.subject.as_ref())?;
        let tenant = caller.tenant.as_uuid();
        let mut records =
            store::records::history(&self.pool, tenant, subject.as_str(), None, None, i64::MAX)
                .await?;
        records.reverse();
        let receipts = store::records::receipts_of(&self.pool, tenant, subject.as_str()).await?;
        let signals =
            store::signals::of_subject(&self.pool, tenant, subject.as_str(), false).await?;
        let served = store::notices::served_to(&self.pool, tenant, subject.as_str(), false).await?;
        Ok(chunks(vec![
            ("consent_records", records.iter().map(record_line).collect()),
            (
                "consent_receipts",
                receipts
                    .iter()
                    .map(|r| {
                        json!({"receipt_id": r.id.to_string(), "issued_at": rfc3339(r.issued_at),
                               "key_id": r.key_id, "jws": r.jws})
                    })
                    .collect(),
            ),
            (
                "preference_signals",
                signals
                    .iter()
                    .map(|s| {
                        json!({"signal": s.signal, "enabled": s.enabled,
                               "source": method_label(s.source),
                               "observed_at": rfc3339(s.observed_at)})
                    })
                    .collect(),
            ),
            (
                "notices_served",
                served
                    .iter()
                    .map(|s| {
                        json!({"notice_id": s.notice_id.to_string(), "kind": s.kind,
                               "locale": s.locale, "version": s.version,
                               "channel": method_label(s.channel),
                               "conversation_id": s.conversation_id,
                               "served_at": rfc3339(s.served_at)})
                    })
                    .collect(),
            ),
        ]))
    }

    pub(super) async fn erase_impl(
        &self,
        caller: &Caller,
        request: EraseSubjectRequest,
    ) -> ServiceResult<EraseSubjectResponse> {
        let subject = self.subject_of(&caller.tenant, request.subject.as_ref())?;
        if request.request_id.len() > 128 {
            return Err(ServiceError::invalid(
                "request_id",
                "must be at most 128 bytes",
            ));
        }
        let tenant = caller.tenant.as_uuid();
        let mut tx = veil_core::db::begin(&self.pool).await?;
        let outcome = crate::erasure::erase(
            &mut tx,
            &self.events,
            &caller.context(Some(&subject)),
            tenant,
            &subject,
            &request.request_id,
        )
        .await
        .map_err(ServiceError::Internal)?;
        tx.commit().await?;
        let committed = Instant::now();
        self.relay.notify();
        if let Some(key) = subject_key(tenant, subject.as_str()) {
            self.invalidator
                .after_commit(Scope::Subject(key), committed)
                .await;
        }
        Ok(EraseSubjectResponse {
            outcome: Some(outcome),
        })
    }
}
