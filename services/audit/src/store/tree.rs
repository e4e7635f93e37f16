//! SQL of the Merkle tree: perfect-subtree nodes, the tree size and signed heads.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor};
use veil_core::merkle::{Appender, Hash, NewNode, NodeAddr};

use crate::error::AuditError;

/// Nodes fetched for a proof, a root or a frontier, usable as a `NodeSource`.
pub type Nodes = HashMap<NodeAddr, Hash>;

/// Number of leaves covered by stored nodes.
pub async fn size(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let size: i64 = sqlx::query_scalar("SELECT size FROM tree_state")
        .fetch_one(db)
        .await?;
    Ok(u64::try_from(size).unwrap_or_default())
}

/// Records the new tree size (inside the writer's transaction).
pub async fn set_size(conn: &mut PgConnection, size: u64) -> sqlx::Result<()> {
    sqlx::query("UPDATE tree_state SET size = $1")
        .bind(to_i64(size))
        .execute(conn)
        .await?;
    Ok(())
}

/// Fetches `addrs` in one round trip: level 0 from the entries' leaf hashes, the rest
/// from `nodes`. A node that is absent is simply missing from the map.
pub async fn fetch(
    db: impl PgExecutor<'_>,
    addrs: impl IntoIterator<Item = NodeAddr>,
) -> Result<Nodes, AuditError> {
    let mut leaves = Vec::new();
    let mut levels = Vec::new();
    let mut indexes = Vec::new();
    for addr in addrs {
        if addr.level == 0 {
            leaves.push(to_i64(addr.index));
        } else {
            levels.push(i16::try_from(addr.level).unwrap_or(i16::MAX));
            indexes.push(to_i64(addr.index));
        }
    }
    let rows: Vec<(i16, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT 0::smallint, idx, leaf_hash FROM entries WHERE idx = ANY($1)
         UNION ALL
         SELECT n.level, n.idx, n.hash
         FROM nodes n JOIN UNNEST($2::smallint[], $3::bigint[]) AS w(level, idx)
           ON n.level = w.level AND n.idx = w.idx",
    )
    .bind(&leaves)
    .bind(&levels)
    .bind(&indexes)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(node_of).collect()
}

/// The leaf hashes of entries `[from, to)`, in index order.
pub async fn leaf_range(
    db: impl PgExecutor<'_>,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, AuditError> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT idx, leaf_hash FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
    )
    .bind(to_i64(from))
    .bind(to_i64(to))
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .enumerate()
        .map(|(i, (idx, hash))| {
            if u64::try_from(idx).ok() != Some(from + i as u64) {
                return Err(AuditError::Inconsistent(format!(
                    "entry {idx} found where index {} was expected",
                    from + i as u64
                )));
            }
            hash.as_slice().try_into().map_err(|_| {
                AuditError::Inconsistent(format!("leaf hash of entry {idx} is not 32 bytes"))
            })
        })
        .collect()
}

/// [`node_ranges`]' statement (public for the plan test, tests/plans.rs).
/// Each range is its own subquery: the LIMIT (each range holds exactly `hi - lo` nodes)
/// keeps Postgres from folding it into a join, which past about a million nodes it ran as
/// a hash join over a scan of the whole table, once per chunk the proof cache loads.
pub const NODE_RANGES_SQL: &str = "SELECT n.level, n.idx, n.hash
     FROM UNNEST($1::smallint[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)
     CROSS JOIN LATERAL (
         SELECT n.level, n.idx, n.hash FROM nodes n
         WHERE n.level = r.level AND n.idx >= r.lo AND n.idx < r.hi
         ORDER BY n.idx LIMIT r.hi - r.lo) n
     ORDER BY n.level, n.idx";

/// The stored nodes of levels `min_level` and up that leaves `[from, to)` complete,
/// ordered by level, then index.
pub async fn node_ranges(
    db: impl PgExecutor<'_>,
    from: u64,
    to: u64,
    min_level: u32,
) -> Result<Vec<(NodeAddr, Hash)>, AuditError> {
    let (mut levels, mut lows, mut highs) = (Vec::new(), Vec::new(), Vec::new());
    for level in min_level.max(1)..64 {
        let (low, high) = (from >> level, to >> level);
        if high > low {
            levels.push(i16::try_from(level).unwrap_or(i16::MAX));
            lows.push(to_i64(low));
            highs.push(to_i64(high));
        }
    }
    if levels.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i16, i64, Vec<u8>)> = sqlx::query_as(NODE_RANGES_SQL)
        .bind(&levels)
        .bind(&lows)
        .bind(&highs)
        .fetch_all(db)
        .await?;
    let expected: i64 = lows.iter().zip(&highs).map(|(low, high)| high - low).sum();
    if i64::try_from(rows.len()).ok() != Some(expected) {
        return Err(AuditError::Inconsistent(format!(
            "{} of {expected} nodes stored for leaves {from}..{to}",
            rows.len()
        )));
    }
    rows.into_iter().map(node_of).collect()
}

/// A stored node row (level, index, hash) as an address and a hash; a hash that is not
/// 32 bytes means the table was changed behind the writer's back.
fn node_of((level, index, hash): (i16, i64, Vec<u8>)) -> Result<(NodeAddr, Hash), AuditError> {
    let hash: Hash = hash
        .as_slice()
        .try_into()
        .map_err(|_| AuditError::Inconsistent(format!("node {level}/{index} is not 32 bytes")))?;
    let addr = NodeAddr::new(
        u32::try_from(level).unwrap_or_default(),
        u64::try_from(index).unwrap_or_default(),
    );
    Ok((addr, hash))
}

/// The appender of a tree of `size`, from its O(log n) frontier nodes.
pub async fn appender(db: impl PgExecutor<'_>, size: u64) -> Result<Appender, AuditError> {
    let nodes = fetch(db, Appender::frontier_nodes(size)).await?;
    Ok(Appender::from_source(&nodes, size)?)
}

/// The root of the tree of `size` (nodes must exist up to it).
pub async fn root(db: impl PgExecutor<'_>, size: u64) -> Result<Hash, AuditError> {
    let nodes = fetch(db, veil_core::merkle::root_plan(size)).await?;
    Ok(veil_core::merkle::root_at(&nodes, size)?)
}

/// Stores interior nodes created by appends (level 0 lives in `entries`).
pub async fn insert_nodes(conn: &mut PgConnection, nodes: &[NewNode]) -> sqlx::Result<()> {
    let interior = nodes.iter().filter(|node| node.addr.level > 0);
    let (mut levels, mut indexes, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for node in interior {
        levels.push(i16::try_from(node.addr.level).unwrap_or(i16::MAX));
        indexes.push(to_i64(node.addr.index));
        hashes.push(node.hash.to_vec());
    }
    if levels.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO nodes (level, idx, hash)
         SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])",
    )
    .bind(&levels)
    .bind(&indexes)
    .bind(&hashes)
    .execute(conn)
    .await?;
    Ok(())
}

/// A signed tree head as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeadRow {
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    pub signed_at: time::OffsetDateTime,
    pub signed_payload: Vec<u8>,
    pub signature: Vec<u8>,
    pub key_id: String,
    pub public_key: Vec<u8>,
}

const HEAD_COLUMNS: &str =
    "tree_size, root_hash, signed_at, signed_payload, signature, key_id, public_key";

/// Stores a head; false when one for that size exists already.
pub async fn insert_head(conn: &mut PgConnection, head: &HeadRow) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO tree_heads (tree_size, root_hash, signed_at, signed_payload, signature,
                                 key_id, public_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(head.tree_size)
    .bind(&head.root_hash)
    .bind(head.signed_at)
    .bind(&head.signed_payload)
    .bind(&head.signature)
    .bind(&head.key_id)
    .bind(&head.public_key)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The head of the largest signed size.
pub async fn latest_head(db: impl PgExecutor<'_>) -> sqlx::Result<Option<HeadRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HEAD_COLUMNS} FROM tree_heads ORDER BY tree_size DESC LIMIT 1"
    )))
    .fetch_optional(db)
    .await
}

/// The head signed for exactly `size`.
pub async fn head_at(db: impl PgExecutor<'_>, size: u64) -> sqlx::Result<Option<HeadRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HEAD_COLUMNS} FROM tree_heads WHERE tree_size = $1"
    )))
    .bind(to_i64(size))
    .fetch_optional(db)
    .await
}

/// Every head, smallest size first.
pub async fn all_heads(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<HeadRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HEAD_COLUMNS} FROM tree_heads ORDER BY tree_size"
    )))
    .fetch_all(db)
    .await
}

/// Sizes are stored as bigint; a log never gets near 2^63 entries.
pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
