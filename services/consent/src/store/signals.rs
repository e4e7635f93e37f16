//! Preference signals (GPC, do-not-sell/share, ...), kept as an append-only history.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// One observation of a signal.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SignalRow {
    pub id: Uuid,
    pub signal: i32,
    pub enabled: bool,
    pub source: i32,
    pub observed_at: OffsetDateTime,
}

/// Appends an observation.
pub async fn insert(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
    s: &SignalRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO preference_signals (id, tenant_id, subject_ref, signal, enabled, source,
             observed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.id)
    .bind(tenant)
    .bind(subject_ref)
    .bind(s.signal)
    .bind(s.enabled)
    .bind(s.source)
    .bind(s.observed_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The subject's signals: with `latest_only` the newest observation per signal,
/// otherwise the whole history (oldest first).
pub async fn of_subject(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    subject_ref: &str,
    latest_only: bool,
) -> sqlx::Result<Vec<SignalRow>> {
    sqlx::query_as(
        "SELECT id, signal, enabled, source, observed_at FROM (
             SELECT DISTINCT ON (CASE WHEN $3 THEN signal::text ELSE id::text END)
                    id, signal, enabled, source, observed_at, seq
             FROM preference_signals WHERE tenant_id = $1 AND subject_ref = $2
             ORDER BY (CASE WHEN $3 THEN signal::text ELSE id::text END),
                      observed_at DESC, seq DESC) s
         ORDER BY observed_at, seq",
    )
    .bind(tenant)
    .bind(subject_ref)
    .bind(latest_only)
    .fetch_all(db)
    .await
}
