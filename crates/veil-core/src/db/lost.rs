//! Connections the server ended: a restart or failover, a crash, a terminated backend.
//!
//! Pooled connections are pinged only after [`super::PING_AFTER_IDLE`] of idleness, so
//! after a server restart under load every busy connection of a pool is dead without
//! the pool knowing, and each would fail its next statement. Postgres says so before it
//! hangs up (SQLSTATE 57P01, 57P02, 57P05), between statements or by aborting the one
//! running, so such a statement did not take effect. (The rare exception, a commit done
//! just before the shutdown reached its reply, leaves no duplicate for the retried
//! writes of the message path: they are keyed by message or event id.) When any
//! statement finds its connection lost, every connection opened before that is pinged
//! when next handed out, for [`RECHECK_FOR`], and [`retry_if_lost`] runs the statement
//! once more.

use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after a lost connection older connections are pinged before use. Long
/// enough for a restarting server to come back; a connection that survived is pinged
/// meanwhile, a round trip per statement.
pub const RECHECK_FOR: Duration = Duration::from_secs(5);

/// The reference point of [`LOST_AT`].
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// When a connection was last found lost, in microseconds after [`EPOCH`] plus one;
/// zero for never. One for the process: in `veil up` every pool reaches the same server.
static LOST_AT: AtomicU64 = AtomicU64::new(0);

/// Whether the server ended the statement's connection before the statement took
/// effect (administrator or crash shutdown, idle-session timeout).
pub fn is_lost(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("57P01" | "57P02" | "57P05"))
    )
}

/// Notes a failed statement: a lost or broken connection makes every pool check its
/// older connections before use for a while. Returns whether the connection was lost
/// before the statement took effect (see [`is_lost`]).
pub fn note_failure(error: &sqlx::Error) -> bool {
    let lost = is_lost(error);
    if lost || matches!(error, sqlx::Error::Io(_)) {
        let micros = u64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        LOST_AT.store(micros + 1, Ordering::Relaxed);
    }
    lost
}

/// Whether a pooled connection of this age was opened before a connection was found
/// lost, less than [`RECHECK_FOR`] ago.
pub(super) fn opened_before_recent_loss(age: Duration) -> bool {
    let at = LOST_AT.load(Ordering::Relaxed);
    if at == 0 {
        return false;
    }
    let since = EPOCH
        .elapsed()
        .saturating_sub(Duration::from_micros(at - 1));
    since < RECHECK_FOR && age > since
}

/// Runs a statement (or a transaction, as one closure), and once more when the first
/// try found its connection lost: the retry gets a checked connection. For the calls on
/// the message path, so that a server restart costs callers no error once the server
/// answers again.
pub async fn retry_if_lost<T, F, Fut>(mut run: F) -> sqlx::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sqlx::Result<T>>,
{
    match run().await {
        Err(error) if note_failure(&error) => {
            tracing::warn!("database connection lost; running the statement again");
            run().await
        }
        other => other,
    }
}

/// Begins a transaction, on another connection when the first was found lost. `BEGIN`
/// is a transaction's first statement, so every transaction rides through a restart.
pub async fn begin(
    pool: &sqlx::PgPool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    retry_if_lost(|| pool.begin()).await
}
