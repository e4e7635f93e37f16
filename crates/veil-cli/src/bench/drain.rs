//! How long the audit log takes to hold every event of a run. A message is answered
//! once its turn and event are committed; relaying the event to JetStream and
//! appending it to the audit log follow. A closed loop that outruns them would report
//! a rate the stack cannot keep, so the run waits for them and reports both.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// The schemas whose outbox feeds the audit log (every service's, audit's own too).
const SERVICES: [&str; 5] = ["gateway", "consent", "vault", "retention", "audit"];

/// How often the log is looked at.
const POLL: Duration = Duration::from_millis(20);

/// Waits until the audit log has appended every event written so far and none is left
/// queued; returns how long that took, or an error after `deadline`.
pub async fn wait(db: &PgConnectOptions, deadline: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut conn = PgConnection::connect_with(db)
        .await
        .context("connect to the benchmark database")?;
    let sum = |filter: &str| {
        SERVICES
            .iter()
            .map(|schema| format!("(SELECT count(*) FROM \"{schema}\".outbox{filter})"))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    // Events of the audit log's own (incidents) may be written meanwhile: the sum is
    // read again with the log's size each time. The unsent ones tell, when the log
    // falls behind, whether the relays or the audit service are stuck.
    let query = format!(
        "SELECT {}, {}, (SELECT count(*) FROM audit.entries),
                (SELECT count(*) FROM audit.pending)",
        sum(""),
        sum(" WHERE sent_at IS NULL"),
    );
    loop {
        let (written, unsent, appended, queued): (i64, i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(query.as_str()))
                .fetch_one(&mut conn)
                .await
                .context("count the events")?;
        if appended >= written && queued == 0 {
            let _ = conn.close().await;
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "the audit log has {appended} of {written} events after {} s \
             ({unsent} not yet published, {queued} received and not yet appended)",
            deadline.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
}
