//! The log as JSON Lines, for SIEMs and for offline verification.
//!
//! Entry lines are `veil.audit.v1.AuditEntry` in the canonical protobuf JSON mapping
//! (lowerCamelCase names, 64-bit integers as strings, bytes as base64, default values
//! left out, so `leafIndex` is absent for leaf 0). The operator export (`veil audit
//! export`) adds lines `{"signedTreeHead": {...}}` (a `SignedTreeHead` in the same
//! mapping) and, when it starts after leaf 0, one first line
//! `{"checkpoint": {"treeSize": "N", "frontier": ["<base64>", ...]}}`: the hashes of
//! the perfect subtrees covering the leaves before the first exported one, which lets a
//! verifier recompute roots from there (they are only trusted once a signed head
//! confirms the root they lead to).

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::{Value, json};
use veil_core::merkle::Hash;
use veil_proto::audit::v1::{AuditEntry, SignedTreeHead};

/// Why a line could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The compiled descriptors lack a message (a build problem).
    #[error("descriptor of {0} is missing")]
    Descriptor(&'static str),
    /// JSON encoding or decoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing failed.
    #[error("write: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not an entry, a head or a checkpoint, or a field is malformed.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Encodes messages in the canonical protobuf JSON mapping.
#[derive(Debug, Clone)]
pub struct JsonLines {
    entry: MessageDescriptor,
    head: MessageDescriptor,
}

impl JsonLines {
    /// Loads the descriptors compiled into `veil-proto`.
    pub fn new() -> Result<Self, ExportError> {
        let pool = DescriptorPool::decode(veil_proto::FILE_DESCRIPTOR_SET)
            .map_err(|_| ExportError::Descriptor("veil protos"))?;
        Ok(Self {
            entry: pool
                .get_message_by_name("veil.audit.v1.AuditEntry")
                .ok_or(ExportError::Descriptor("veil.audit.v1.AuditEntry"))?,
            head: pool
                .get_message_by_name("veil.audit.v1.SignedTreeHead")
                .ok_or(ExportError::Descriptor("veil.audit.v1.SignedTreeHead"))?,
        })
    }

    fn json(descriptor: &MessageDescriptor, bytes: &[u8]) -> Result<Value, ExportError> {
        let message = DynamicMessage::decode(descriptor.clone(), bytes)
            .map_err(|_| ExportError::Descriptor("a decodable message"))?;
        Ok(serde_json::to_value(&message)?)
    }

    /// Appends one entry line (with its newline) to `out`.
    pub fn write_entry(&self, out: &mut impl Write, entry: &AuditEntry) -> Result<(), ExportError> {
        let value = Self::json(&self.entry, &entry.encode_to_vec())?;
        serde_json::to_writer(&mut *out, &value)?;
        out.write_all(b"\n")?;
        Ok(())
    }

    /// Appends one signed-tree-head line.
    pub fn write_head(
        &self,
        out: &mut impl Write,
        head: &SignedTreeHead,
    ) -> Result<(), ExportError> {
        let value = Self::json(&self.head, &head.encode_to_vec())?;
        serde_json::to_writer(&mut *out, &json!({ "signedTreeHead": value }))?;
        out.write_all(b"\n")?;
        Ok(())
    }

    /// Appends the checkpoint line of a partial export.
    pub fn write_checkpoint(
        &self,
        out: &mut impl Write,
        tree_size: u64,
        frontier: &[Hash],
    ) -> Result<(), ExportError> {
        let hashes: Vec<String> = frontier.iter().map(|h| STANDARD.encode(h)).collect();
        serde_json::to_writer(
            &mut *out,
            &json!({"checkpoint": {"treeSize": tree_size.to_string(), "frontier": hashes}}),
        )?;
        out.write_all(b"\n")?;
        Ok(())
    }
}

/// One parsed line of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportItem {
    /// An entry: the fields a verifier needs.
    Entry(ExportedEntry),
    /// A signed tree head.
    Head(crate::tree_head::PresentedHead),
    /// The frontier before the first exported leaf.
    Checkpoint {
        /// Leaves before the first exported one.
        tree_size: u64,
        /// Perfect-subtree hashes covering them, largest first.
        frontier: Vec<Hash>,
    },
}

/// An exported entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedEntry {
    /// Leaf index.
    pub leaf_index: u64,
    /// The hashed bytes (the encoded event).
    pub leaf_data: Vec<u8>,
    /// The leaf hash as exported.
    pub leaf_hash: Vec<u8>,
    /// Event id, type, tenant and subject ref as exported, for cross-checks.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Subject ref.
    pub subject_ref: String,
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn number(value: &Value, key: &str, line: u64) -> Result<u64, ExportError> {
    match value.get(key) {
        None => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| bad(line, format!("{key} is not a number"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| bad(line, format!("{key} is not a number"))),
        Some(_) => Err(bad(line, format!("{key} is not a number"))),
    }
}

fn bytes(value: &Value, key: &str, line: u64) -> Result<Vec<u8>, ExportError> {
    STANDARD
        .decode(text(value, key))
        .map_err(|_| bad(line, format!("{key} is not base64")))
}

fn bad(line: u64, reason: String) -> ExportError {
    ExportError::Line { line, reason }
}

fn millis_of(value: &Value, key: &str, line: u64) -> Result<i64, ExportError> {
    let at = time::OffsetDateTime::parse(
        text(value, key),
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| bad(line, format!("{key} is not an RFC 3339 time")))?;
    Ok(crate::tree_head::millis(at))
}

/// Parses line number `line` (1-based) of an export.
pub fn parse_line(line: u64, text_line: &str) -> Result<ExportItem, ExportError> {
    let value: Value =
        serde_json::from_str(text_line).map_err(|e| bad(line, format!("not JSON: {e}")))?;
    if let Some(head) = value.get("signedTreeHead") {
        return Ok(ExportItem::Head(crate::tree_head::PresentedHead {
            tree_size: number(head, "treeSize", line)?,
            root_hash: bytes(head, "rootHash", line)?,
            signed_at_ms: millis_of(head, "signedAt", line)?,
            signed_payload: bytes(head, "signedPayload", line)?,
            signature: bytes(head, "signature", line)?,
            key_id: text(head, "keyId").to_owned(),
            public_key: bytes(head, "publicKey", line)?,
        }));
    }
    if let Some(checkpoint) = value.get("checkpoint") {
        let frontier = checkpoint
            .get("frontier")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|hash| {
                STANDARD
                    .decode(hash.as_str().unwrap_or_default())
                    .ok()
                    .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
                    .ok_or_else(|| bad(line, "frontier hash is malformed".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(ExportItem::Checkpoint {
            tree_size: number(checkpoint, "treeSize", line)?,
            frontier,
        });
    }
    if value.get("leafData").is_none() {
        return Err(bad(
            line,
            "neither an entry, a tree head nor a checkpoint".into(),
        ));
    }
    Ok(ExportItem::Entry(ExportedEntry {
        leaf_index: number(&value, "leafIndex", line)?,
        leaf_data: bytes(&value, "leafData", line)?,
        leaf_hash: bytes(&value, "leafHash", line)?,
        event_id: text(&value, "eventId").to_owned(),
        event_type: text(&value, "eventType").to_owned(),
        tenant_id: text(&value, "tenantId").to_owned(),
        subject_ref: text(&value, "subjectRef").to_owned(),
    }))
}

/// Writes the log from leaf `from` (at most `limit` entries, 0 for all) with the heads
/// that cover it, as an operator export; returns the entries written. `progress` is
/// called with the entries written so far.
pub async fn export_database(
    pool: &sqlx::PgPool,
    from: u64,
    limit: u64,
    out: &mut (impl Write + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64, crate::AuditError> {
    use futures::TryStreamExt;

    use crate::store::{EntryRow, tree};

    let lines = JsonLines::new()?;
    let size = tree::size(pool).await?;
    let from = from.min(size);
    if from > 0 {
        let appender = tree::appender(pool, from).await?;
        lines.write_checkpoint(out, from, appender.frontier())?;
    }
    let end = if limit == 0 {
        size
    } else {
        from.saturating_add(limit).min(size)
    };
    let mut rows = sqlx::query_as::<_, EntryRow>(
        "SELECT idx, event_id, tenant_id, subject_ref, event_type, occurred_at, appended_at,
                envelope, leaf_hash
         FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
    )
    .bind(tree::to_i64(from))
    .bind(tree::to_i64(end))
    .fetch(pool);
    let mut written = 0u64;
    while let Some(row) = rows.try_next().await? {
        lines.write_entry(out, &crate::grpc::entry_to_proto(row))?;
        written += 1;
        if written.is_multiple_of(10_000) {
            progress(written);
        }
    }
    drop(rows);
    for head in tree::all_heads(pool).await? {
        let size = u64::try_from(head.tree_size).unwrap_or_default();
        if size >= from && size <= end {
            lines.write_head(out, &crate::grpc::head_to_proto(head))?;
        }
    }
    progress(written);
    Ok(written)
}
