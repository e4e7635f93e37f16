//! Running a service binary as a child process, configured like an operator would
//! (environment variables), to test what `main` really does.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::TestEnv;

/// A service process; killed on drop if still running.
pub struct ServiceProcess {
    child: Child,
    /// gRPC URL.
    pub url: String,
}

/// Lowest port handed out by this helper: ports between it and the kernel's ephemeral
/// range are only ever used by explicit binds.
const LOWEST_PORT: u16 = 10_000;

/// A free loopback port for a child process to listen on. The port is released before
/// the child binds it, so it is picked below the kernel's ephemeral range (where
/// port-0 listeners and outgoing connections of the other tests take theirs; a port
/// from that range was once taken in between) at random, and checked free.
pub fn free_port() -> anyhow::Result<u16> {
    use rand::Rng as _;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > LOWEST_PORT + 1_000 {
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let port = rng.gen_range(LOWEST_PORT..ephemeral_low);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The environment that points a service binary at the test's database, NATS namespace
/// and keys, on the given ports.
pub fn service_env(env: &TestEnv, grpc_port: u16, metrics_port: u16) -> Vec<(String, String)> {
    let events = env.events();
    vec![
        ("VEIL_CONFIG_DIR".into(), "/nonexistent".into()),
        (
            "VEIL_SERVER__GRPC_ADDR".into(),
            format!("127.0.0.1:{grpc_port}"),
        ),
        (
            "VEIL_SERVER__METRICS_ADDR".into(),
            format!("127.0.0.1:{metrics_port}"),
        ),
        ("VEIL_DATABASE__URL".into(), env.db.url()),
        ("VEIL_NATS__URL".into(), env.nats.url().to_string()),
        ("VEIL_EVENTS__STREAM".into(), events.stream),
        ("VEIL_EVENTS__SUBJECT_PREFIX".into(), events.subject_prefix),
        ("VEIL_AUTH__SIGNING_KEY".into(), env.signing_key.clone()),
        ("VEIL_AUTH__KEY_ID".into(), "test".into()),
        ("VEIL_PRIVACY__SUBJECT_KEY".into(), env.subject_key.clone()),
        ("VEIL_TELEMETRY__LOG_LEVEL".into(), "warn".into()),
    ]
}

impl ServiceProcess {
    /// Starts `binary` with `env` (and nothing inherited that starts with `VEIL_`).
    pub fn start(binary: &str, env: &[(String, String)], grpc_port: u16) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("VEIL_")) {
            command.env_remove(key);
        }
        command
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Ok(Self {
            child: command.spawn()?,
            url: format!("http://127.0.0.1:{grpc_port}"),
        })
    }

    /// Sends SIGTERM and waits (with a deadline) for the exit status.
    pub async fn terminate(mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("service did not exit within {timeout:?} after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `binary` to completion with `env` and returns (exit status, stderr).
pub fn run_to_exit(binary: &str, env: &[(&str, &str)]) -> anyhow::Result<(ExitStatus, String)> {
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("VEIL_")) {
        command.env_remove(key);
    }
    let output = command
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()?;
    Ok((
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Acceptance of every service binary: with a test environment it serves health SERVING
/// for `grpc_service`, lists it through reflection v1 and v1alpha, and exits cleanly on
/// SIGTERM.
pub async fn check_binary(binary: &str, grpc_service: &str) -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let grpc_port = free_port()?;
    let process = ServiceProcess::start(
        binary,
        &service_env(&env, grpc_port, free_port()?),
        grpc_port,
    )?;
    let channel = crate::probe::connect(&process.url, Duration::from_secs(30)).await?;
    let status = crate::eventually(Duration::from_secs(30), || {
        let channel = channel.clone();
        async move {
            crate::probe::health(channel, grpc_service)
                .await
                .ok()
                .filter(|s| *s == tonic_health::pb::health_check_response::ServingStatus::Serving)
        }
    })
    .await?;
    anyhow::ensure!(status == tonic_health::pb::health_check_response::ServingStatus::Serving);
    let v1 = crate::probe::list_services_v1(channel.clone()).await?;
    anyhow::ensure!(v1.iter().any(|s| s == grpc_service), "v1 lists {v1:?}");
    anyhow::ensure!(
        v1.iter().any(|s| s == "grpc.health.v1.Health"),
        "v1 lists {v1:?}"
    );
    let v1alpha = crate::probe::list_services_v1alpha(channel).await?;
    anyhow::ensure!(
        v1alpha.iter().any(|s| s == grpc_service),
        "v1alpha lists {v1alpha:?}"
    );
    let exit = process.terminate(Duration::from_secs(30)).await?;
    anyhow::ensure!(exit.success(), "exit after SIGTERM: {exit}");
    Ok(())
}

/// Acceptance of every service binary: a bad setting exits non-zero (2) with a single
/// line that names the key and does not echo the value.
pub fn check_bad_setting(binary: &str) -> anyhow::Result<()> {
    let (status, stderr) = run_to_exit(
        binary,
        &[
            ("VEIL_CONFIG_DIR", "/nonexistent"),
            ("VEIL_DATABASE__URL", "nonsense"),
        ],
    )?;
    anyhow::ensure!(
        status.code() == Some(2),
        "exit status {status}, stderr {stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    anyhow::ensure!(lines.len() == 1, "expected one line, got {stderr:?}");
    anyhow::ensure!(
        lines[0].contains("database.url"),
        "line does not name the key: {stderr:?}"
    );
    anyhow::ensure!(
        !lines[0].contains("nonsense"),
        "line echoes the value: {stderr:?}"
    );
    Ok(())
}
