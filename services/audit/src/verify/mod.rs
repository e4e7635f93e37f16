//! Full verification of the log, from the database or an export file: every leaf hash
//! is recomputed from the stored event bytes, the tree is rebuilt with the shared
//! Merkle code, every signed tree head is checked (signature, payload, root) and so is
//! the consistency between successive heads; stored interior nodes are compared with
//! the rebuilt ones. The first entry that was changed, removed or reordered is named.
//!
//! The [`Verifier`] is fed leaves in stored order and then finished with the heads (and
//! the stored nodes, when there are any); [`db`] and [`file`] are the two feeders.

pub mod db;
pub mod file;
mod locate;

use std::fmt;

use ed25519_dalek::VerifyingKey;
use prost::Message;
use veil_core::merkle::{Hash, leaf_hash};
use veil_proto::events::v1::Event;

pub use locate::Rebuilt;

/// What kind of tampering (or damage) a finding shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// An entry's content differs from what was appended.
    Changed,
    /// An entry is missing.
    Removed,
    /// An entry holds the content of another position.
    Reordered,
    /// A signed tree head is invalid or does not match the log.
    Head,
    /// A stored interior node differs from the rebuilt tree (or is missing).
    Node,
}

impl FindingKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Removed => "removed",
            Self::Reordered => "reordered",
            Self::Head => "bad tree head",
            Self::Node => "bad tree node",
        }
    }
}

/// One piece of evidence of tampering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What happened.
    pub kind: FindingKind,
    /// First entry affected, when known.
    pub index: Option<u64>,
    /// One past the last entry that may be affected; `index + 1` when exact.
    pub end: Option<u64>,
    /// Why, in words (never event content).
    pub detail: String,
}

impl Finding {
    fn exact(kind: FindingKind, index: u64, detail: impl Into<String>) -> Self {
        Self {
            kind,
            index: Some(index),
            end: Some(index.saturating_add(1)),
            detail: detail.into(),
        }
    }

    /// Whether the finding names a single entry.
    pub fn is_exact(&self) -> bool {
        matches!((self.index, self.end), (Some(i), Some(e)) if e == i.saturating_add(1))
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, self.end) {
            (Some(i), Some(e)) if e == i + 1 => {
                write!(f, "entry {i} {}: {}", self.kind.as_str(), self.detail)
            }
            (Some(i), Some(e)) => write!(
                f,
                "entry {i} {} (somewhere in entries {i}..{}): {}",
                self.kind.as_str(),
                e - 1,
                self.detail
            ),
            (Some(i), None) => write!(f, "entry {i} {}: {}", self.kind.as_str(), self.detail),
            _ => write!(f, "{}: {}", self.kind.as_str(), self.detail),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Signed heads checked.
    pub heads: usize,
    /// Heads whose signature and root verified.
    pub heads_verified: usize,
    /// Successive head pairs whose consistency proof verified.
    pub consistent_pairs: usize,
    /// Stored interior nodes compared.
    pub nodes_checked: u64,
    /// Evidence of tampering, the first tampered entry first.
    pub findings: Vec<Finding>,
    /// Things worth knowing that are not tampering (entries after the last head).
    pub notes: Vec<String>,
}

impl Report {
    /// True when nothing was found.
    pub fn intact(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first tampered entry (or the first finding when none names an entry).
    pub fn first(&self) -> Option<&Finding> {
        self.findings.first()
    }
}

/// Columns stored beside the event bytes, checked against the hashed event, since
/// queries read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    pub event_id: String,
    pub event_type: String,
    pub tenant_id: String,
    pub subject_ref: String,
}

/// One stored entry.
#[derive(Debug, Clone, Default)]
pub struct LeafRecord {
    /// Stored leaf index.
    pub index: u64,
    /// The hashed bytes.
    pub leaf_data: Vec<u8>,
    /// The stored leaf hash, if the source has one.
    pub stored_leaf_hash: Option<Vec<u8>>,
    /// Stored columns, if the source has them.
    pub columns: Option<Columns>,
}

/// Accumulates leaves in stored order.
#[derive(Debug)]
pub struct Verifier {
    trusted: Vec<VerifyingKey>,
    /// Leaves before the first one fed (a partial export's checkpoint).
    base: u64,
    base_frontier: Vec<Hash>,
    leaves: Vec<Hash>,
    /// Stored leaf hashes by position, when the source has them.
    stored: Vec<Option<Hash>>,
    expected: u64,
    findings: Vec<Finding>,
}

impl Verifier {
    /// A verifier that trusts tree heads signed by `trusted` (empty: the keys shipped
    /// with the heads, which proves integrity but not origin).
    pub fn new(trusted: Vec<VerifyingKey>) -> Self {
        Self {
            trusted,
            base: 0,
            base_frontier: Vec::new(),
            leaves: Vec::new(),
            stored: Vec::new(),
            expected: 0,
            findings: Vec::new(),
        }
    }

    /// Starts after `size` leaves whose perfect-subtree hashes are `frontier`.
    pub fn with_checkpoint(mut self, size: u64, frontier: Vec<Hash>) -> Self {
        self.base = size;
        self.base_frontier = frontier;
        self.expected = size;
        self
    }

    /// Leaves fed so far (plus the checkpoint).
    pub fn size(&self) -> u64 {
        self.base + self.leaves.len() as u64
    }

    /// Feeds the next stored entry.
    pub fn push(&mut self, record: LeafRecord) {
        let position = self.size();
        if record.index > self.expected {
            self.findings.push(Finding::exact(
                FindingKind::Removed,
                self.expected,
                format!(
                    "index {} is missing (the next stored entry has index {})",
                    self.expected, record.index
                ),
            ));
        } else if record.index < self.expected {
            self.findings.push(Finding::exact(
                FindingKind::Reordered,
                record.index,
                format!(
                    "index {} appears again after index {}",
                    record.index,
                    self.expected - 1
                ),
            ));
        }
        // An export file may name any index: saturate rather than overflow.
        self.expected = record.index.max(self.expected).saturating_add(1);
        let leaf = leaf_hash(&record.leaf_data);
        let stored = record
            .stored_leaf_hash
            .as_deref()
            .map(|bytes| Hash::try_from(bytes).unwrap_or([0; 32]));
        if let Some(columns) = &record.columns
            && let Some(reason) = column_mismatch(&record.leaf_data, columns)
        {
            self.findings
                .push(Finding::exact(FindingKind::Changed, record.index, reason));
        }
        if stored.is_some_and(|stored| stored != leaf) {
            // Classified once every stored hash is known (it may be another entry's).
            self.findings.push(Finding::exact(
                FindingKind::Changed,
                position,
                "event bytes do not match the stored leaf hash",
            ));
        }
        self.leaves.push(leaf);
        self.stored.push(stored);
    }
}

/// Why the stored columns disagree with the hashed event, if they do.
fn column_mismatch(leaf_data: &[u8], columns: &Columns) -> Option<String> {
    let Ok(event) = Event::decode(leaf_data) else {
        return Some("event bytes do not decode".into());
    };
    let event_type = event
        .payload
        .as_ref()
        .map(|p| {
            let (service, kind) = veil_core::emit::kind_of(p);
            format!("{service}.{kind}")
        })
        .unwrap_or_default();
    let checks = [
        (
            "event_id",
            event.event_id.as_str(),
            columns.event_id.as_str(),
        ),
        (
            "event_type",
            event_type.as_str(),
            columns.event_type.as_str(),
        ),
        (
            "tenant_id",
            event.tenant_id.as_str(),
            columns.tenant_id.as_str(),
        ),
        (
            "subject_ref",
            event.subject_ref.as_str(),
            columns.subject_ref.as_str(),
        ),
    ];
    checks
        .into_iter()
        .find(|(_, hashed, stored)| hashed != stored)
        .map(|(name, _, _)| format!("column {name} does not match the hashed event"))
}

#[cfg(test)]
mod tests;
