//! `ShredSubject` (crypto-shredding) and `ExportSubject` (streamed decrypted export).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tokio::sync::mpsc;
use tonic::{Request, Status};
use veil_core::crypto::DataCipher;
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::ExportChunk;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{RevealKind, VaultRevealed};
use veil_proto::vault::v1::{
    ExportSubjectRequest, ExportSubjectResponse, ShredSubjectRequest, ShredSubjectResponse,
};

use super::records::open_record;
use super::tokens::{token_aad, token_string};
use super::validate as check;
use crate::erasure;
use crate::error::{VaultError, VaultResult, not_found};
use crate::state::{Vault, event_context};
use crate::store::keys as key_sql;
use crate::store::records as record_sql;
use crate::store::tokens as token_sql;

/// Target size of one export chunk's JSON Lines.
const CHUNK_BYTES: usize = 64 * 1024;
/// Rows read per query while exporting.
const EXPORT_PAGE: i64 = 200;
/// Purpose recorded for export reveals.
const EXPORT_PURPOSE: &str = "subject_export";

/// Destroys a subject's data key and tokens in one transaction (see
/// [`crate::erasure::shred_in`]).
pub async fn shred(
    vault: &Vault,
    request: Request<ShredSubjectRequest>,
) -> VaultResult<ShredSubjectResponse> {
    let (principal, tenant) =
        check::tenant_caller(&request, &[Role::PrivacyOfficer, Role::Service])?;
    let request = request.into_inner();
    let subject = check::subject_ref(
        &vault.subjects,
        &tenant,
        "subject",
        request.subject.as_ref(),
    )?;
    check::note("request_id", &request.request_id)?;
    check::note("reason", &request.reason)?;
    let context = event_context(&principal, Some(tenant), Some(&subject));
    let mut tx = veil_core::db::begin(&vault.pool).await?;
    let shredded = erasure::shred_in(
        vault,
        &mut tx,
        tenant,
        &subject,
        &request.request_id,
        &context,
    )
    .await?;
    tx.commit().await?;
    erasure::after_commit(vault, &shredded);
    Ok(ShredSubjectResponse {
        subject_ref: subject.as_str().to_string(),
        outcome: Some(shredded.outcome()),
    })
}

/// Items sent on an export stream.
pub type ExportItem = Result<ExportSubjectResponse, Status>;

/// Checks the request and starts streaming the subject's records and tokens.
pub async fn export(
    vault: Arc<Vault>,
    request: Request<ExportSubjectRequest>,
) -> VaultResult<mpsc::Receiver<ExportItem>> {
    let (principal, tenant) = check::tenant_caller(&request, &[Role::Service])?;
    let request = request.into_inner();
    let subject = check::subject_ref(
        &vault.subjects,
        &tenant,
        "subject",
        request.subject.as_ref(),
    )?;
    check::note("request_id", &request.request_id)?;
    let key = key_sql::subject_key(&vault.pool, tenant.as_uuid(), subject.as_str()).await?;
    if key.is_none()
        && !record_sql::subject_has_records(&vault.pool, tenant.as_uuid(), subject.as_str()).await?
    {
        return Err(not_found("subject"));
    }
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut writer = ChunkWriter::new(sender.clone());
        let result = stream_subject(&vault, tenant, &subject, key, &mut writer).await;
        let outcome = match result {
            Ok(counts) => {
                let context = event_context(&principal, Some(tenant), Some(&subject));
                emit_export(&vault, &context, counts).await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => writer.finish().await,
            Err(error) => {
                let _ = sender.send(Err(error.into())).await;
            }
        }
    });
    Ok(receiver)
}

async fn emit_export(
    vault: &Vault,
    context: &veil_core::emit::EventContext,
    counts: HashMap<String, i64>,
) -> VaultResult<()> {
    let payload = Payload::VaultRevealed(VaultRevealed {
        kind: RevealKind::Export as i32,
        purpose: EXPORT_PURPOSE.into(),
        counts,
        record_ids: Vec::new(),
        not_found: 0,
    });
    vault.emit_alone(context, payload).await?;
    Ok(())
}

/// Streams the sections; returns what was revealed per section.
async fn stream_subject(
    vault: &Vault,
    tenant: TenantId,
    subject: &SubjectRef,
    key: Option<key_sql::SubjectKeyRow>,
    writer: &mut ChunkWriter,
) -> VaultResult<HashMap<String, i64>> {
    let mut counts = HashMap::new();
    // Records sealed under a destroyed key are unreadable and therefore not exported.
    let Some(key) = key else {
        return Ok(counts);
    };
    let mut after = None;
    let mut records = 0i64;
    loop {
        let page = record_sql::subject_page(
            &vault.pool,
            tenant.as_uuid(),
            subject.as_str(),
            key.key_id,
            after,
            EXPORT_PAGE,
        )
        .await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.record_id);
        for (meta, sealed) in page {
            let value = open_record(
                vault,
                tenant,
                subject,
                &key,
                meta.record_id,
                &meta.field,
                &sealed,
            )
            .await?;
            let created = meta
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let mut line = json!({
                "record_id": meta.record_id.to_string(),
                "category": meta.category,
                "field": meta.field,
                "content_type": meta.content_type,
                "created_at": created,
            });
            match String::from_utf8(value) {
                Ok(text) => line["value"] = json!(text),
                Err(bytes) => line["value_base64"] = json!(STANDARD.encode(bytes.into_bytes())),
            }
            writer.line("vault_records", &line).await?;
            records += 1;
        }
    }
    writer.end_section("vault_records").await?;
    counts.insert("records".to_string(), records);

    let cipher = DataCipher::new(&vault.keys.data_key(tenant, &key).await?);
    let subject_bytes = token_sql::subject_bytes(subject.as_str());
    let mut after: Option<Vec<u8>> = None;
    let mut tokens = 0i64;
    loop {
        let page = token_sql::subject_page(
            &vault.pool,
            tenant.as_uuid(),
            &subject_bytes,
            after.as_deref(),
            EXPORT_PAGE,
        )
        .await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        for (raw, entity_type, sealed) in page {
            let token = token_string(&raw);
            let mut line = json!({ "token": token, "entity_type": entity_type });
            match sealed {
                Some(sealed) => {
                    let aad = token_aad(&tenant, subject.as_str(), &token, &entity_type);
                    let plain = cipher
                        .open(&aad, &sealed)
                        .map_err(|e| VaultError::from_crypto("token value", e))?;
                    line["value"] = json!(String::from_utf8_lossy(&plain));
                }
                None => line["one_way"] = json!(true),
            }
            writer.line("vault_tokens", &line).await?;
            tokens += 1;
        }
    }
    writer.end_section("vault_tokens").await?;
    counts.insert("tokens".to_string(), tokens);
    Ok(counts)
}

/// Buffers JSON Lines into chunks of about [`CHUNK_BYTES`], holding the latest chunk
/// back so the final one can carry `last = true`.
struct ChunkWriter {
    sender: mpsc::Sender<ExportItem>,
    buffer: Vec<u8>,
    pending: Option<ExportChunk>,
    sequence: i64,
}

impl ChunkWriter {
    fn new(sender: mpsc::Sender<ExportItem>) -> Self {
        Self {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES + 1024),
            pending: None,
            sequence: 0,
        }
    }

    async fn line(&mut self, section: &str, value: &serde_json::Value) -> VaultResult<()> {
        serde_json::to_writer(&mut self.buffer, value)
            .map_err(veil_core::error::ServiceError::internal)?;
        self.buffer.push(b'\n');
        if self.buffer.len() >= CHUNK_BYTES {
            self.end_section(section).await?;
        }
        Ok(())
    }

    async fn end_section(&mut self, section: &str) -> VaultResult<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = ExportChunk {
            section: section.to_string(),
            sequence: self.sequence,
            json_lines: std::mem::take(&mut self.buffer),
            last: false,
        };
        self.sequence += 1;
        if let Some(previous) = self.pending.replace(chunk) {
            self.send(previous).await?;
        }
        Ok(())
    }

    async fn send(&self, chunk: ExportChunk) -> VaultResult<()> {
        self.sender
            .send(Ok(ExportSubjectResponse { chunk: Some(chunk) }))
            .await
            .map_err(|_| {
                veil_core::error::ServiceError::Unavailable(
                    "export stream closed by the client".into(),
                )
                .into()
            })
    }

    async fn finish(mut self) {
        let mut chunk = self.pending.take().unwrap_or(ExportChunk {
            section: "vault_records".into(),
            sequence: self.sequence,
            json_lines: Vec::new(),
            last: true,
        });
        chunk.last = true;
        let _ = self.send(chunk).await;
    }
}
