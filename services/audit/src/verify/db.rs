//! Verifying the log in Postgres: entries, stored nodes, tree state and heads.

use futures::TryStreamExt;
use sqlx::PgPool;

use super::{Columns, LeafRecord, Report, Verifier};
use crate::error::AuditError;
use crate::store::tree;
use crate::tree_head::{PresentedHead, millis};

/// How far a long run has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// "entries" or "nodes".
    pub phase: &'static str,
    /// Items done in this phase.
    pub done: u64,
    /// Items in this phase.
    pub total: u64,
}

/// Reports progress every this many items.
const PROGRESS_EVERY: u64 = 10_000;

#[derive(sqlx::FromRow)]
struct Row {
    idx: i64,
    envelope: Vec<u8>,
    leaf_hash: Vec<u8>,
    event_id: uuid::Uuid,
    event_type: String,
    tenant_id: Option<uuid::Uuid>,
    subject_ref: Option<String>,
}

/// The stored heads as a verifier takes them.
pub async fn heads(pool: &PgPool) -> Result<Vec<PresentedHead>, AuditError> {
    Ok(tree::all_heads(pool)
        .await?
        .into_iter()
        .map(|row| PresentedHead {
            tree_size: u64::try_from(row.tree_size).unwrap_or_default(),
            root_hash: row.root_hash,
            signed_at_ms: millis(row.signed_at),
            signed_payload: row.signed_payload,
            signature: row.signature,
            key_id: row.key_id,
            public_key: row.public_key,
        })
        .collect())
}

/// Recomputes and checks everything in the database `pool` points at.
pub async fn verify_database(
    pool: &PgPool,
    verifier: Verifier,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Report, AuditError> {
    let mut verifier = verifier;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
        .fetch_one(pool)
        .await?;
    let total = u64::try_from(total).unwrap_or_default();
    let heads = heads(pool).await?;
    let stored_size = tree::size(pool).await?;
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT idx, envelope, leaf_hash, event_id, event_type, tenant_id, subject_ref
         FROM entries ORDER BY idx",
    )
    .fetch(pool);
    let mut done = 0u64;
    progress(Progress {
        phase: "entries",
        done,
        total,
    });
    while let Some(row) = rows.try_next().await? {
        verifier.push(LeafRecord {
            index: u64::try_from(row.idx).unwrap_or_default(),
            leaf_data: row.envelope,
            stored_leaf_hash: Some(row.leaf_hash),
            columns: Some(Columns {
                event_id: row.event_id.to_string(),
                event_type: row.event_type,
                tenant_id: row.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
                subject_ref: row.subject_ref.unwrap_or_default(),
            }),
        });
        done += 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            progress(Progress {
                phase: "entries",
                done,
                total,
            });
        }
    }
    drop(rows);
    progress(Progress {
        phase: "entries",
        done,
        total,
    });
    let mut rebuilt = verifier.rebuild();
    let node_total: i64 = sqlx::query_scalar("SELECT count(*) FROM nodes")
        .fetch_one(pool)
        .await?;
    let node_total = u64::try_from(node_total).unwrap_or_default();
    let mut nodes =
        sqlx::query_as::<_, (i16, i64, Vec<u8>)>("SELECT level, idx, hash FROM nodes").fetch(pool);
    let mut done = 0u64;
    while let Some((level, index, hash)) = nodes.try_next().await? {
        rebuilt.check_node(
            u32::try_from(level).unwrap_or_default(),
            u64::try_from(index).unwrap_or_default(),
            &hash,
        );
        done += 1;
        if done.is_multiple_of(PROGRESS_EVERY * 10) {
            progress(Progress {
                phase: "nodes",
                done,
                total: node_total,
            });
        }
    }
    progress(Progress {
        phase: "nodes",
        done,
        total: node_total,
    });
    Ok(rebuilt.finish(heads, Some(stored_size)))
}
