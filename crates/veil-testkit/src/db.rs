//! A fresh Postgres database per test, dropped when the test ends.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// Server used when `VEIL_TEST_DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Test databases are named `{DB_PREFIX}{uuid v7 simple}`.
pub const DB_PREFIX: &str = "veil_t_";
/// Leftover test databases older than this are dropped when a new one is created.
const STALE_AFTER: Duration = Duration::from_secs(3 * 3600);

/// A database of its own for one test: `veil_t_<uuid>`, dropped (forcibly) on drop.
///
/// Set `VEIL_TEST_KEEP_DB=1` to keep it for inspection.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin: PgConnectOptions,
    options: PgConnectOptions,
}

impl TestDb {
    /// Creates the database on the server from `VEIL_TEST_DATABASE_URL`.
    pub async fn create() -> anyhow::Result<Self> {
        let url = std::env::var("VEIL_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let admin = PgConnectOptions::from_str(&url).context("VEIL_TEST_DATABASE_URL")?;
        let id = Uuid::now_v7();
        let name = format!("{DB_PREFIX}{}", id.simple());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .context("connect to the test postgres server")?;
        drop_stale_databases(&mut conn).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("create database {name}"))?;
        let _ = conn.close().await;
        let options = admin.clone().database(&name);
        Ok(Self {
            url: with_database(&url, &name),
            name,
            admin,
            options,
        })
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for the database (what a service's `database.url` takes).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Connection options for the database.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// Ends every server process connected to this database, as a server restart does
    /// (SQLSTATE 57P01 to each), and returns how many; each is gone when this returns.
    /// Other databases of the shared server are untouched.
    pub async fn terminate_connections(&self) -> anyhow::Result<usize> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        let ended: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.name)
        .fetch_all(&mut conn)
        .await?;
        // Signalled at once, as a restart does (waiting for each in turn takes ~100 ms).
        // Only the listed processes: a filter's order of evaluation is the planner's.
        sqlx::query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid")
            .bind(&ended)
            .execute(&mut conn)
            .await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&ended)
                    .fetch_one(&mut conn)
                    .await?;
            if left == 0 {
                break;
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "{left} server processes outlived their termination"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = conn.close().await;
        Ok(ended.len())
    }

    /// A pool whose every connection has `search_path` = `schema`; creates the schema.
    pub async fn pool(&self, schema: &str) -> anyhow::Result<PgPool> {
        anyhow::ensure!(
            !schema.is_empty()
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "schema must be a lowercase identifier"
        );
        let mut conn = PgConnection::connect_with(&self.options).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await?;
        let _ = conn.close().await;
        let options = self.options.clone().options([("search_path", schema)]);
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(pool)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var_os("VEIL_TEST_KEEP_DB").is_some() {
            return;
        }
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime (which must not block on itself) or outside one,
        // so the cleanup gets a thread and a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let _ = drop_database(&mut conn, &name).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// Drops test databases left behind by killed test runs. The UUIDv7 in the name carries
/// its creation time. Best effort: another run may be dropping the same ones.
async fn drop_stale_databases(conn: &mut PgConnection) {
    let names: Vec<String> = match sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'veil\\_t\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    {
        Ok(names) => names,
        Err(_) => return,
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for name in names {
        let Some(created_ms) = created_at_ms(&name) else {
            continue;
        };
        if now_ms.saturating_sub(created_ms) > STALE_AFTER.as_millis() as u64 {
            let _ = drop_database(conn, &name).await;
        }
    }
}

/// `url` with its database path replaced by `database` (user, password, host and query
/// parameters are kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Creation time (Unix ms) of a test database, from the UUIDv7 in its name.
fn created_at_ms(name: &str) -> Option<u64> {
    let id = Uuid::try_parse(name.strip_prefix(DB_PREFIX)?).ok()?;
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs * 1000 + u64::from(nanos) / 1_000_000)
}

/// Waits until a session of `pool`'s database waits for a lock of `kind`
/// (`pg_stat_activity.wait_event`: "advisory", "transactionid", ...): how a test knows a
/// concurrent statement has reached the lock it holds. Fails after 10 s.
pub async fn until_a_session_waits_for(pool: &PgPool, kind: &str) -> anyhow::Result<()> {
    crate::eventually(Duration::from_secs(10), || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND wait_event_type = 'Lock' AND wait_event = $1",
        )
        .bind(kind)
        .fetch_one(pool)
        .await
        .ok()?;
        (waiting > 0).then_some(())
    })
    .await
    .with_context(|| format!("no session waited for a {kind} lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_database_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "veil_t_1"),
            "postgres://postgres@127.0.0.1:5432/veil_t_1"
        );
        assert_eq!(
            with_database("postgres://u:p%2F@h/db?sslmode=disable", "x"),
            "postgres://u:p%2F@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }

    #[test]
    fn reads_creation_time_from_the_name() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let name = format!("{DB_PREFIX}{}", Uuid::now_v7().simple());
        let created = created_at_ms(&name).unwrap_or_default();
        assert!(created >= before.saturating_sub(1) && created <= before + 1000);
        assert_eq!(created_at_ms("veil_t_notauuid"), None);
        assert_eq!(created_at_ms("other_db"), None);
        let v4 = format!("{DB_PREFIX}{}", Uuid::new_v4().simple());
        assert_eq!(created_at_ms(&v4), None);
    }
}
