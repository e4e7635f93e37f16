//! The proof cache reads the tree's nodes a chunk of leaves at a time while it catches
//! up (when the service starts, and on every replica that does not write): each read
//! must find its ranges by index. A scan of the table per chunk made loading a log of N
//! entries cost N² / chunk rows read.
#![allow(clippy::unwrap_used)]

use veil_testkit::TestDb;
use veil_testkit::plans::{assert_reads_by, generic_plan};

/// Leaves of the grown tree, as a power of two: 2^21 leaves have 2,097,151 nodes above
/// them. The scan only wins the planner over past about a million nodes (a log of a
/// million entries), so a smaller tree would not show it.
const LEVELS: i32 = 21;

#[tokio::test(flavor = "multi_thread")]
async fn node_ranges_are_read_by_index_in_a_large_tree() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let pool = db.pool("audit").await?;
    veil_audit::MIGRATOR.run(&pool).await?;
    // Every node above the leaves of the tree.
    sqlx::query(
        "INSERT INTO nodes (level, idx, hash)
         SELECT l, i, sha256(int8send(i) || int2send(l::smallint))
         FROM generate_series(1, $1) AS l, generate_series(0, (1 << ($1 - l)) - 1) AS i",
    )
    .bind(LEVELS)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE nodes").execute(&pool).await?;
    let mut conn = pool.acquire().await?;
    let plan = generic_plan(&mut conn, veil_audit::NODE_RANGES_SQL).await?;
    assert_reads_by(&plan, "nodes", &["idx >="], "a tree of 2^21 leaves");
    Ok(())
}
