//! Verifying an export file (`veil audit export`) offline.

use std::io::BufRead;

use super::db::Progress;
use super::{Columns, LeafRecord, Report, Verifier};
use crate::export::{ExportError, ExportItem, parse_line};

/// Reads an export and checks it; `total_bytes` (the file size, if known) drives the
/// progress callback.
pub fn verify_export(
    reader: impl BufRead,
    verifier: Verifier,
    total_bytes: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, ExportError> {
    let mut verifier = verifier;
    let mut heads = Vec::new();
    let mut read = 0u64;
    let mut entries = 0u64;
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        read += line.len() as u64 + 1;
        let number = number as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(number, &line)? {
            ExportItem::Entry(entry) => {
                verifier.push(LeafRecord {
                    index: entry.leaf_index,
                    leaf_data: entry.leaf_data,
                    stored_leaf_hash: Some(entry.leaf_hash),
                    columns: Some(Columns {
                        event_id: entry.event_id,
                        event_type: entry.event_type,
                        tenant_id: entry.tenant_id,
                        subject_ref: entry.subject_ref,
                    }),
                });
                entries += 1;
                if entries.is_multiple_of(10_000) {
                    progress(Progress {
                        phase: "bytes",
                        done: read,
                        total: total_bytes,
                    });
                }
            }
            ExportItem::Head(head) => heads.push(head),
            ExportItem::Checkpoint {
                tree_size,
                frontier,
            } => {
                if entries > 0 {
                    return Err(ExportError::Line {
                        line: number,
                        reason: "a checkpoint must come before every entry".into(),
                    });
                }
                verifier = verifier.with_checkpoint(tree_size, frontier);
            }
        }
    }
    progress(Progress {
        phase: "bytes",
        done: read,
        total: total_bytes,
    });
    Ok(verifier.rebuild().finish(heads, None))
}
