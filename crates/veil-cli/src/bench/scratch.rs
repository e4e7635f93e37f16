//! A throwaway environment for one benchmark run: a fresh database and a NATS stream
//! with its own subject prefix, both removed afterwards, and settings for all five
//! services on them (port 0, quiet logs, no per-key rate limit).

use std::str::FromStr;

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use veil_core::config::Settings;
use veil_core::events::EventsConfig;
use veil_core::types::Personal;

use veil_cli::stack::StackSettings;

/// Database and stream names of one run.
pub struct Scratch {
    admin: PgConnectOptions,
    /// Options of the fresh database.
    pub db: PgConnectOptions,
    db_name: String,
    db_url: String,
    nats_url: String,
    events: EventsConfig,
    signing_key: String,
    subject_key: String,
    /// Platform bootstrap key of the gateway of this run.
    pub bootstrap_key: String,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

impl Scratch {
    /// Creates `veil_bench_<random>` on the server of `database_url`.
    pub async fn create(database_url: &str, nats_url: &str) -> anyhow::Result<Self> {
        let admin = PgConnectOptions::from_str(database_url)
            .map_err(|_| anyhow::anyhow!("--database-url is not a valid postgres URL"))?;
        let id = hex::encode(random_bytes::<6>());
        let db_name = format!("veil_bench_{id}");
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .context("connect to postgres")?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{db_name}\""
        )))
        .execute(&mut conn)
        .await
        .context("create the benchmark database")?;
        let _ = conn.close().await;
        Ok(Self {
            db: admin.clone().database(&db_name),
            db_url: with_database(database_url, &db_name),
            admin,
            db_name,
            nats_url: nats_url.to_owned(),
            events: EventsConfig {
                stream: format!("BENCH_{}", id.to_uppercase()),
                subject_prefix: format!("bench{id}.veil.events"),
                ..EventsConfig::default()
            },
            signing_key: STANDARD.encode(random_bytes::<32>()),
            subject_key: STANDARD.encode(random_bytes::<32>()),
            bootstrap_key: format!("veil_bench_{}", hex::encode(random_bytes::<24>())),
        })
    }

    /// Settings for `service` on this run's database and stream; `pool` connections.
    fn settings<S: Default>(&self, service: &str, pool: u32) -> Settings<S> {
        let mut settings = Settings::<S>::default();
        settings.server.grpc_addr = "127.0.0.1:0".into();
        settings.server.metrics_addr = "127.0.0.1:0".into();
        settings.server.drain_timeout_secs = 5;
        settings.database.url = Personal::new(self.db_url.clone());
        settings.database.schema = service.to_owned();
        settings.database.max_connections = pool;
        settings.nats.url = self.nats_url.clone();
        settings.events = self.events.clone();
        settings.telemetry.log_level = "error".into();
        settings.auth.signing_key = Personal::new(self.signing_key.clone());
        settings.auth.key_id = "bench".into();
        settings.privacy.subject_key = Personal::new(self.subject_key.clone());
        settings
    }

    /// Settings of the whole stack. Pools stay small enough that the stack and the
    /// baseline fit under a default `max_connections = 100` shared with other users.
    pub fn stack_settings(&self) -> StackSettings {
        let mut gateway = self.settings::<veil_gateway::GatewaySettings>("gateway", 16);
        // The benchmark measures the pipeline, not the per-key limiter.
        gateway.service.rate_limit_per_second = 0;
        // Receipts and certificates get keys of their own, as in production (without, the
        // services warn that they sign with the internal-token key).
        let mut consent = self.settings::<veil_consent::ConsentSettings>("consent", 8);
        consent.service.receipt_signing_key = Personal::new(STANDARD.encode(random_bytes::<32>()));
        let mut retention = self.settings::<veil_retention::RetentionSettings>("retention", 4);
        retention.service.certificate_signing_key =
            Personal::new(STANDARD.encode(random_bytes::<32>()));
        StackSettings {
            gateway,
            consent,
            vault: self.settings("vault", 12),
            retention,
            audit: self.settings("audit", 6),
        }
        .with_throwaway_keys(&self.bootstrap_key)
    }

    /// Drops the database and deletes the stream; best effort, reports what failed.
    pub async fn remove(self) -> Vec<String> {
        let mut problems = Vec::new();
        match async_nats::connect(&self.nats_url).await {
            Ok(client) => {
                let jetstream = async_nats::jetstream::new(client.clone());
                if let Err(error) = jetstream.delete_stream(&self.events.stream).await {
                    problems.push(format!("delete stream {}: {error}", self.events.stream));
                }
                let _ = client.drain().await;
            }
            Err(error) => problems.push(format!("connect to nats: {error}")),
        }
        let dropped = async {
            let mut conn = PgConnection::connect_with(&self.admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db_name
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await
        };
        if let Err(error) = dropped.await {
            problems.push(format!("drop database {}: {error}", self.db_name));
        }
        problems
    }
}

/// `url` with its database path replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
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

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u@h:1?sslmode=disable", "b"),
            "postgres://u@h:1/b?sslmode=disable"
        );
    }
}
