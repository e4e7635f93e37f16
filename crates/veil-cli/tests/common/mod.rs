//! Shared by the command-line tests that run the real `veil` binary against the whole
//! stack: the stack's settings on a test environment, the running stack, and the binary
//! pointed at its gateway.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use veil_cli::stack::{Stack, StackSettings};
use veil_testkit::{Running, TestEnv, spawn};

/// Settings of all five services on `env`, with `bootstrap` as the platform-admin key.
pub fn stack_settings(env: &TestEnv, bootstrap: &str) -> StackSettings {
    StackSettings {
        gateway: env.settings("gateway"),
        consent: env.settings("consent"),
        vault: env.settings("vault"),
        retention: env.settings("retention"),
        audit: env.settings("audit"),
    }
    .with_throwaway_keys(bootstrap)
}

/// The five services running, and the binary pointed at their gateway.
pub struct RunningStack {
    pub services: Vec<(&'static str, Running)>,
    pub cli: Cli,
}

impl RunningStack {
    /// Builds and starts the stack of `settings`; returns once the gateway answers.
    pub async fn start(settings: StackSettings) -> anyhow::Result<Self> {
        let stack = Stack::build(settings).await?;
        let services: Vec<_> = stack
            .services
            .into_iter()
            .map(|(name, service)| (name, spawn(service)))
            .collect();
        let gateway = &services.iter().find(|(n, _)| *n == "gateway").unwrap().1;
        veil_testkit::probe::connect(&gateway.url(), Duration::from_secs(10)).await?;
        let cli = Cli { url: gateway.url() };
        Ok(Self { services, cli })
    }

    /// Stops the services, gateway first.
    pub async fn stop(self) -> anyhow::Result<()> {
        for (_, service) in self.services.into_iter().rev() {
            service.stop().await?;
        }
        Ok(())
    }

    /// A tenant created with the bootstrap key, and a privacy officer's API key in it,
    /// both through the binary.
    pub async fn officer(&self, bootstrap: &str, name: &str, slug: &str) -> String {
        let created = self
            .cli
            .json(
                bootstrap,
                &[
                    "admin",
                    "tenant",
                    "create",
                    "--name",
                    name,
                    "--slug",
                    slug,
                    "--with-admin-key",
                ],
            )
            .await;
        let admin = created["admin_key"]["secret"].as_str().unwrap().to_string();
        let officer = self
            .cli
            .json(
                &admin,
                &[
                    "admin",
                    "key",
                    "create",
                    "--name",
                    "dpo",
                    "--role",
                    "privacy_officer",
                ],
            )
            .await;
        officer["secret"].as_str().unwrap().to_string()
    }
}

/// The `veil` binary, talking to one gateway.
pub struct Cli {
    pub url: String,
}

impl Cli {
    /// Runs `veil <args>` with `token`.
    pub async fn run(&self, token: &str, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veil"));
        command
            .args(args)
            .env("VEIL_GATEWAY", &self.url)
            .env("VEIL_TOKEN", token);
        tokio::task::spawn_blocking(move || command.output().expect("veil runs"))
            .await
            .unwrap()
    }

    /// Runs `veil <args> --json`, which must succeed, and parses what it printed.
    pub async fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(token, &all).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("json output")
    }
}

/// What a run printed to stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
