//! Postgres pool and per-service schema.
//!
//! Each service owns one schema. Every pooled connection gets `search_path` set to it,
//! so service SQL uses unqualified table names and two services can share one database.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseSettings;

mod lost;

pub use lost::{RECHECK_FOR, begin, is_lost, note_failure, retry_if_lost};

/// Errors while connecting or migrating.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL did not parse (the URL itself is never printed: it may hold a password).
    #[error("invalid setting database.url: not a valid postgres URL")]
    Url,
    /// Connecting failed.
    #[error("cannot connect to postgres: {0}")]
    Connect(#[source] sqlx::Error),
    /// The schema could not be created.
    #[error("cannot create schema {schema}: {source}")]
    Schema {
        /// Schema name.
        schema: String,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Connection options for the settings, with `search_path` pinned to the service schema,
/// generic plans when the service asks for them and, unless the URL names one, `application_name` set to `veil-<schema>`, so that
/// `pg_stat_activity` and the server's logs tell which service a connection serves.
pub fn connect_options(settings: &DatabaseSettings) -> Result<PgConnectOptions, DbError> {
    let mut options: PgConnectOptions = settings.url.expose().parse().map_err(|_| DbError::Url)?;
    if options.get_application_name().is_none() {
        options = options.application_name(&format!("veil-{}", settings.schema));
    }
    options = options.options([("search_path", settings.schema.as_str())]);
    if settings.generic_plans {
        options = options.options([("plan_cache_mode", "force_generic_plan")]);
    }
    Ok(options)
}

/// A pooled connection idle at least this long is pinged before it is handed out; one
/// reused sooner is not (HikariCP's "alive bypass window", 500 ms). sqlx pings on every
/// acquire by default: under load, where connections come back within milliseconds, that
/// is a second round trip for every statement. Connections that broke while in use (a
/// server restart under load) are found as the first of them fails: see [`lost`].
pub const PING_AFTER_IDLE: Duration = Duration::from_millis(500);

/// Creates the schema if needed and returns a pool whose connections use it.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let options = connect_options(settings)?;
    let timeout = Duration::from_secs(settings.connect_timeout_secs.max(1));
    let pool_options = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE || lost::opened_before_recent_loss(meta.age) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        });
    let pool = match pool_options.clone().connect_with(options.clone()).await {
        Ok(pool) => pool,
        Err(error) if is_missing_database(&error) => {
            create_database(&options).await?;
            pool_options
                .connect_with(options)
                .await
                .map_err(DbError::Connect)?
        }
        Err(error) => return Err(DbError::Connect(error)),
    };
    // The schema name was validated as an identifier at configuration time.
    let ddl = format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", settings.schema);
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&pool)
        .await
        .map_err(|source| DbError::Schema {
            schema: settings.schema.clone(),
            source,
        })?;
    Ok(pool)
}

fn is_missing_database(error: &sqlx::Error) -> bool {
    // 3D000: invalid_catalog_name (the database does not exist).
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000"))
}

/// Creates the configured database through the `postgres` maintenance database, so a
/// fresh server needs no manual step. Losing a race with another service is fine.
async fn create_database(options: &PgConnectOptions) -> Result<(), DbError> {
    use sqlx::Connection;
    let name = options.get_database().unwrap_or("veil").to_string();
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(DbError::Url);
    }
    let mut conn = sqlx::PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .map_err(DbError::Connect)?;
    let ddl = format!("CREATE DATABASE \"{name}\"");
    match sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&mut conn)
        .await
    {
        Ok(_) => Ok(()),
        // 42P04: duplicate_database — another service created it first.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => Ok(()),
        Err(error) => Err(DbError::Connect(error)),
    }
}

/// Connects and runs the service's migrations when `settings.migrate` is set.
pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
    migrator: &Migrator,
) -> Result<PgPool, DbError> {
    let pool = connect(settings).await?;
    if settings.migrate {
        migrator.run(&pool).await?;
    }
    Ok(pool)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::Personal;

    fn settings(url: &str, generic_plans: bool) -> DatabaseSettings {
        DatabaseSettings {
            url: Personal::new(url.to_string()),
            schema: "vault".into(),
            generic_plans,
            ..DatabaseSettings::default()
        }
    }

    #[test]
    fn connections_name_their_service_and_plan_generically_when_asked() {
        let plain = connect_options(&settings("postgres://u@h/db", false)).unwrap();
        assert_eq!(plain.get_application_name(), Some("veil-vault"));
        assert_eq!(plain.get_options(), Some("-c search_path=vault"));

        let generic = connect_options(&settings("postgres://u@h/db", true)).unwrap();
        assert_eq!(
            generic.get_options(),
            Some("-c search_path=vault -c plan_cache_mode=force_generic_plan")
        );

        let named =
            connect_options(&settings("postgres://u@h/db?application_name=ops", false)).unwrap();
        assert_eq!(named.get_application_name(), Some("ops"));
    }
}
