//! `PutRecord`, `GetRecord`, `DeleteRecord` and `ListRecords`.

use std::collections::{BTreeMap, HashMap};

use tonic::Request;
use uuid::Uuid;
use veil_core::convert::{from_timestamp, timestamp};
use veil_core::crypto::{Aad, DataCipher, SEAL_OVERHEAD};
use veil_core::error::ServiceError;
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::PageResponse;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{RevealKind, VaultRecordDeleted, VaultRecordStored, VaultRevealed};
use veil_proto::vault::v1::{
    DeleteRecordRequest, DeleteRecordResponse, GetRecordRequest, GetRecordResponse,
    ListRecordsRequest, ListRecordsResponse, PutRecordRequest, PutRecordResponse, Record,
};

use super::validate::{self as check, MAX_LIST_ITEMS};
use crate::error::{VaultError, VaultResult, invalid, not_found};
use crate::hierarchy::parse_ref;
use crate::state::{Vault, event_context};
use crate::store::keys::{self as key_sql, SubjectKeyRow};
use crate::store::records::{self as sql, ListFilter, RecordMeta, RecordWrite};

/// The associated data of a record value: tenant | subject | record id | field.
pub fn record_aad(tenant: &TenantId, subject: &SubjectRef, record_id: Uuid, field: &str) -> Aad {
    Aad::record(tenant, subject, &record_id.to_string(), field)
}

fn to_proto(meta: RecordMeta) -> Record {
    Record {
        record_id: meta.record_id.to_string(),
        subject_ref: meta.subject_ref,
        category: meta.category,
        field: meta.field,
        content_type: meta.content_type,
        size_bytes: meta.size_bytes,
        purpose_keys: meta.purpose_keys,
        labels: meta.labels.0.into_iter().collect::<HashMap<_, _>>(),
        tenant_key_version: meta.kek_version.unwrap_or(0),
        created_at: Some(timestamp(meta.created_at)),
        updated_at: Some(timestamp(meta.updated_at)),
        expires_at: meta.expires_at.map(timestamp),
    }
}

fn check_put(vault: &Vault, request: &PutRecordRequest) -> VaultResult<()> {
    check::key_name("category", &request.category)?;
    check::key_name("field", &request.field)?;
    check::content_type("content_type", &request.content_type)?;
    check::value_size(
        "value",
        request.value.len(),
        vault.settings.max_record_bytes,
    )?;
    if request.purpose_keys.len() > MAX_LIST_ITEMS {
        return Err(invalid(
            "purpose_keys",
            format!("at most {MAX_LIST_ITEMS} purposes"),
        ));
    }
    for (i, key) in request.purpose_keys.iter().enumerate() {
        check::key_name(&format!("purpose_keys[{i}]"), key)?;
    }
    if request.labels.len() > MAX_LIST_ITEMS {
        return Err(invalid(
            "labels",
            format!("at most {MAX_LIST_ITEMS} labels"),
        ));
    }
    for (key, value) in &request.labels {
        check::key_name("labels", key)?;
        check::note(&format!("labels[{key}]"), value)?;
    }
    Ok(())
}

/// Encrypts and stores (or replaces) a record.
pub async fn put(
    vault: &Vault,
    request: Request<PutRecordRequest>,
) -> VaultResult<PutRecordResponse> {
    let (principal, tenant) =
        check::tenant_caller(&request, &[Role::PrivacyOfficer, Role::Service])?;
    let request = request.into_inner();
    let subject =
        check::subject_from_id(&vault.subjects, &tenant, "subject_id", &request.subject_id)?;
    check_put(vault, &request)?;
    let expires_at = match &request.expires_at {
        Some(ts) => {
            Some(from_timestamp(ts).ok_or_else(|| invalid("expires_at", "is out of range"))?)
        }
        None => None,
    };
    let replace = match request.record_id.as_str() {
        "" => None,
        id => Some(check::record_id("record_id", id)?),
    };
    let content_type = match request.content_type.as_str() {
        "" => "application/octet-stream",
        other => other,
    };
    vault.keys.ensure_tenant(&vault.pool, tenant).await?;
    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let (record_id, replaced_key) = match replace {
        Some(id) => {
            let (owner, key_id, _) = sql::lock_record(&mut tx, tenant.as_uuid(), id)
                .await?
                .ok_or_else(|| not_found("record"))?;
            if owner != subject.as_str() {
                return Err(not_found("record of this subject"));
            }
            (id, Some(key_id))
        }
        None => (Uuid::now_v7(), None),
    };
    let key_row =
        match key_sql::bump_subject_key(&mut tx, tenant.as_uuid(), subject.as_str(), replaced_key)
            .await?
        {
            Some(row) => row,
            None => {
                vault
                    .keys
                    // Begun now: refused only within the clock skew after a shred.
                    .create_subject_keys(
                        &mut tx,
                        tenant,
                        &[&subject],
                        0,
                        time::OffsetDateTime::now_utc() - vault.settings.clock_skew(),
                    )
                    .await?;
                key_sql::bump_subject_key(&mut tx, tenant.as_uuid(), subject.as_str(), replaced_key)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::internal(anyhow::anyhow!("subject key vanished"))
                    })?
            }
        };
    let data_key = vault.keys.data_key(tenant, &key_row).await?;
    let sealed = DataCipher::new(&data_key)
        .seal(
            &record_aad(&tenant, &subject, record_id, &request.field),
            &request.value,
        )
        .map_err(ServiceError::internal)?;
    let labels: BTreeMap<String, String> = request.labels.into_iter().collect();
    let size_bytes = request.value.len() as i64;
    let (created_at, updated_at) = sql::upsert_record(
        &mut tx,
        tenant.as_uuid(),
        &RecordWrite {
            record_id,
            subject_ref: subject.as_str(),
            key_id: key_row.key_id,
            category: &request.category,
            field: &request.field,
            content_type,
            size_bytes,
            purpose_keys: &request.purpose_keys,
            labels: &labels,
            sealed: &sealed,
            expires_at,
        },
    )
    .await?;
    let context = event_context(&principal, Some(tenant), Some(&subject));
    let payload = Payload::VaultRecordStored(VaultRecordStored {
        record_id: record_id.to_string(),
        category: request.category.clone(),
        field: request.field.clone(),
        tenant_key_version: key_row.kek_version,
        size_bytes,
        replaced: replace.is_some(),
    });
    vault.emit(&mut tx, &context, payload).await?;
    tx.commit().await?;
    vault.notify_relay();
    Ok(PutRecordResponse {
        record: Some(to_proto(RecordMeta {
            record_id,
            subject_ref: subject.as_str().to_string(),
            category: request.category,
            field: request.field,
            content_type: content_type.to_string(),
            size_bytes,
            purpose_keys: request.purpose_keys,
            labels: sqlx::types::Json(labels),
            kek_version: Some(key_row.kek_version),
            created_at,
            updated_at,
            expires_at,
        })),
        created: replace.is_none(),
    })
}

/// Decrypts one record for a stated purpose; the reveal is in the outbox before the
/// value leaves.
pub async fn get(
    vault: &Vault,
    request: Request<GetRecordRequest>,
) -> VaultResult<GetRecordResponse> {
    let (principal, tenant) = check::tenant_caller(&request, &[Role::PrivacyOfficer])?;
    let request = request.into_inner();
    let record_id = check::record_id("record_id", &request.record_id)?;
    check::purpose("purpose", &request.purpose)?;
    let row = sql::sealed_record(&vault.pool, tenant.as_uuid(), record_id)
        .await?
        .ok_or_else(|| not_found("record"))?;
    let (Some(wrapped), Some(kek_version), Some(kek_master_version), Some(kek_wrapped)) = (
        row.wrapped,
        row.meta.kek_version,
        row.kek_master_version,
        row.kek_wrapped,
    ) else {
        return Err(ServiceError::FailedPrecondition(
            "record is unreadable: its subject's data key was destroyed".into(),
        )
        .into());
    };
    let subject = parse_ref(&row.meta.subject_ref)?;
    let key_row = SubjectKeyRow {
        subject_ref: row.meta.subject_ref.clone(),
        key_id: row.key_id,
        kek_version,
        wrapped,
        kek_master_version,
        kek_wrapped,
    };
    let value = open_record(
        vault,
        tenant,
        &subject,
        &key_row,
        record_id,
        &row.meta.field,
        &row.sealed,
    )
    .await?;
    let context = event_context(&principal, Some(tenant), Some(&subject));
    let payload = Payload::VaultRevealed(VaultRevealed {
        kind: RevealKind::GetRecord as i32,
        purpose: request.purpose,
        counts: HashMap::from([(row.meta.field.clone(), 1)]),
        record_ids: vec![record_id.to_string()],
        not_found: 0,
    });
    vault.emit_alone(&context, payload).await?;
    Ok(GetRecordResponse {
        record: Some(to_proto(row.meta)),
        value,
    })
}

/// Opens a stored record value; a length or authentication failure is data loss.
pub async fn open_record(
    vault: &Vault,
    tenant: TenantId,
    subject: &SubjectRef,
    key_row: &SubjectKeyRow,
    record_id: Uuid,
    field: &str,
    sealed: &[u8],
) -> VaultResult<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(VaultError::Corrupt {
            what: "record ciphertext",
        });
    }
    let data_key = vault.keys.data_key(tenant, key_row).await?;
    DataCipher::new(&data_key)
        .open(&record_aad(&tenant, subject, record_id, field), sealed)
        .map_err(|e| VaultError::from_crypto("record ciphertext", e))
}

/// Deletes a record (idempotent).
pub async fn delete(
    vault: &Vault,
    request: Request<DeleteRecordRequest>,
) -> VaultResult<DeleteRecordResponse> {
    let (principal, tenant) =
        check::tenant_caller(&request, &[Role::PrivacyOfficer, Role::Service])?;
    let request = request.into_inner();
    let record_id = check::record_id("record_id", &request.record_id)?;
    check::note("reason", &request.reason)?;
    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let Some((subject_ref, key_id, category)) =
        sql::delete_record(&mut tx, tenant.as_uuid(), record_id).await?
    else {
        return Ok(DeleteRecordResponse { deleted: false });
    };
    key_sql::release_record(&mut tx, tenant.as_uuid(), &subject_ref, key_id).await?;
    let subject = parse_ref(&subject_ref)?;
    let context = event_context(&principal, Some(tenant), Some(&subject));
    let payload = Payload::VaultRecordDeleted(VaultRecordDeleted {
        record_id: record_id.to_string(),
        category,
        reason: "request".into(),
    });
    vault.emit(&mut tx, &context, payload).await?;
    tx.commit().await?;
    vault.notify_relay();
    Ok(DeleteRecordResponse { deleted: true })
}

/// Record metadata, filtered and paged.
pub async fn list(
    vault: &Vault,
    request: Request<ListRecordsRequest>,
) -> VaultResult<ListRecordsResponse> {
    let (_, tenant) = check::tenant_caller(&request, &[Role::PrivacyOfficer, Role::Auditor])?;
    let request = request.into_inner();
    let subject = match &request.subject {
        Some(selector) if selector.subject.is_some() => Some(check::subject_ref(
            &vault.subjects,
            &tenant,
            "subject",
            Some(selector),
        )?),
        _ => None,
    };
    let category = (!request.category.is_empty()).then_some(request.category.as_str());
    if let Some(category) = category {
        check::key_name("category", category)?;
    }
    let field = (!request.field.is_empty()).then_some(request.field.as_str());
    if let Some(field) = field {
        check::key_name("field", field)?;
    }
    let page = request.page.unwrap_or_default();
    let size = match page.page_size {
        size if size <= 0 => 50,
        size => size.min(1000),
    };
    let after = match page.page_token.as_str() {
        "" => None,
        token => Some(
            Uuid::try_parse(token)
                .map_err(|_| invalid("page.page_token", "is not a token from this listing"))?,
        ),
    };
    let mut rows = sql::list_records(
        &vault.pool,
        tenant.as_uuid(),
        &ListFilter {
            subject_ref: subject.as_ref().map(SubjectRef::as_str),
            category,
            field,
            after,
            limit: i64::from(size) + 1,
        },
    )
    .await?;
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => last.record_id.to_string(),
        _ => String::new(),
    };
    Ok(ListRecordsResponse {
        records: rows.into_iter().map(to_proto).collect(),
        page: Some(PageResponse { next_page_token }),
    })
}
