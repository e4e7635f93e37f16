//! NATS for tests: a private namespace on the shared server, or a private server that a
//! test may stop and start.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use async_nats::jetstream;
use futures::StreamExt;
use tempfile::TempDir;
use tokio::time::Instant;
use uuid::Uuid;
use veil_core::events::{EventsConfig, ensure_stream};

/// Server used when `VEIL_TEST_NATS_URL` is not set.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// Test streams are named `{STREAM_PREFIX}{UUID v7 simple, upper case}`.
pub const STREAM_PREFIX: &str = "T_";
/// Leftover test streams older than this are deleted when a new namespace is made.
const STALE_AFTER: Duration = Duration::from_secs(3 * 3600);
/// How long a private server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// A namespace of its own on the shared NATS server: subject prefix
/// `t<uuid>.veil.events` and stream `T_<UUID>`. The stream is deleted on drop.
#[derive(Debug)]
pub struct TestNats {
    url: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: EventsConfig,
}

impl TestNats {
    /// Connects to the server from `VEIL_TEST_NATS_URL` and picks fresh names. The
    /// stream is not created yet: see [`TestNats::ensure_stream`].
    pub async fn new() -> anyhow::Result<Self> {
        let url =
            std::env::var("VEIL_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned());
        let client = async_nats::connect(&url)
            .await
            .with_context(|| format!("connect to test nats at {url}"))?;
        let jetstream = jetstream::new(client.clone());
        delete_stale_streams(&jetstream).await;
        let id = Uuid::now_v7();
        let config = EventsConfig {
            stream: format!("{STREAM_PREFIX}{}", id.simple().to_string().to_uppercase()),
            subject_prefix: format!("t{}.veil.events", id.simple()),
            ..EventsConfig::default()
        };
        Ok(Self {
            url,
            client,
            jetstream,
            config,
        })
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The events configuration naming this test's stream and prefix.
    pub fn config(&self) -> &EventsConfig {
        &self.config
    }

    /// Mutable configuration, to tune the stream before creating it.
    pub fn config_mut(&mut self) -> &mut EventsConfig {
        &mut self.config
    }

    /// A connected client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// A JetStream context on the client.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// Creates this test's stream (idempotent).
    pub async fn ensure_stream(&self) -> anyhow::Result<jetstream::stream::Info> {
        Ok(ensure_stream(&self.jetstream, &self.config).await?)
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let url = self.url.clone();
        let stream = self.config.stream.clone();
        run_detached(async move {
            if let Ok(client) = async_nats::connect(&url).await {
                let _ = jetstream::new(client.clone()).delete_stream(&stream).await;
                let _ = client.drain().await;
            }
        });
    }
}

/// Runs `work` to completion on a thread and runtime of its own, because `Drop` may be
/// called inside a runtime that must not block on itself.
fn run_detached(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let thread = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), work).await;
            });
        }
    });
    let _ = thread.join();
}

/// Deletes test streams left behind by killed runs (their name carries a UUIDv7).
async fn delete_stale_streams(js: &jetstream::Context) {
    let mut names = js.stream_names();
    let mut stale = Vec::new();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    while let Some(Ok(name)) = names.next().await {
        let created = name
            .strip_prefix(STREAM_PREFIX)
            .and_then(|id| Uuid::try_parse(id).ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                secs * 1000 + u64::from(nanos) / 1_000_000
            });
        if let Some(created) = created
            && now_ms.saturating_sub(created) > STALE_AFTER.as_millis() as u64
        {
            stale.push(name);
        }
    }
    for name in stale {
        let _ = js.delete_stream(&name).await;
    }
}

/// A nats-server of the test's own (JetStream, file store in a temp dir), for tests that
/// stop and restart the broker. Killed on drop.
#[derive(Debug)]
pub struct PrivateNats {
    binary: PathBuf,
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    /// Starts a server on a free port and waits until JetStream answers.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = nats_server_binary();
        let mut last_error = None;
        // A free port can be taken between probing and binding; try a few.
        for _ in 0..5 {
            let mut server = Self {
                binary: binary.clone(),
                port: free_port()?,
                store: tempfile::Builder::new()
                    .prefix("veil-nats-")
                    .tempdir()
                    .context("create nats store dir")?,
                child: None,
            };
            match server.resume().await {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nats-server did not start")))
    }

    /// `nats://127.0.0.1:<port>`; stays the same across stop and resume.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the server (like a crash) and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().context("wait for nats-server to exit")?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and store, and waits until JetStream
    /// answers. Does nothing if it is running.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let log_path = self.store.path().join("server.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .context("open nats-server log")?;
        let child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store.path().join("jetstream"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawn {}", self.binary.display()))?;
        self.child = Some(child);
        match self.wait_ready().await {
            Ok(()) => Ok(()),
            Err(error) => {
                let _ = self.stop();
                Err(error.context(log_tail(&log_path)))
            }
        }
    }

    /// Polls until JetStream answers an API request, or the deadline passes.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        let url = self.url();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!("nats-server exited at start with {status}");
            }
            let probe = async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_millis(500))
                    .connect(&url)
                    .await?;
                // A raw API request: any reply means JetStream is up (the typed account
                // query does not parse 2.9's answer); "no responders" means not yet.
                let ready = client.request("$JS.API.INFO", "".into()).await;
                let _ = client.drain().await;
                ready.map(|_| ()).map_err(anyhow::Error::from)
            };
            match tokio::time::timeout(Duration::from_secs(2), probe).await {
                Ok(Ok(())) => return Ok(()),
                _ if Instant::now() >= deadline => {
                    anyhow::bail!("nats-server on port {} not ready in time", self.port)
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// `NATS_SERVER_BIN`, else `nats-server` on `PATH`, else `/usr/sbin/nats-server`.
fn nats_server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("probe a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    format!("nats-server log tail:\n{tail}")
}
