//! The registry of replicas sharing one database, for cache invalidation.

use sqlx::PgExecutor;
use uuid::Uuid;

/// Marks `replica` alive now.
pub async fn heartbeat(db: impl PgExecutor<'_>, replica: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO cache_replicas (replica_id, seen_at) VALUES ($1, now())
         ON CONFLICT (replica_id) DO UPDATE SET seen_at = now()",
    )
    .bind(replica)
    .execute(db)
    .await?;
    Ok(())
}

/// Replicas seen within the last `window_ms` milliseconds; entries older than ten
/// windows (replicas long gone) are removed on the way.
pub async fn live(db: impl PgExecutor<'_>, window_ms: i64) -> sqlx::Result<Vec<Uuid>> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "WITH gone AS (
             DELETE FROM cache_replicas
             WHERE seen_at < now() - make_interval(secs => $1::float8 / 100.0)
         )
         SELECT replica_id FROM cache_replicas
         WHERE seen_at >= now() - make_interval(secs => $1::float8 / 1000.0)",
    )
    .bind(window_ms)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Removes `replica` (clean shutdown).
pub async fn leave(db: impl PgExecutor<'_>, replica: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM cache_replicas WHERE replica_id = $1")
        .bind(replica)
        .execute(db)
        .await?;
    Ok(())
}
