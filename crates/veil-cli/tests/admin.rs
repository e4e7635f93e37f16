//! `veil admin` end to end: the real binary against a gateway running in the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;
use veil_testkit::TestEnv;

const BOOTSTRAP: &str = "cli-admin-test-bootstrap-key-0123456789abcdef";

struct Cli {
    url: String,
}

impl Cli {
    /// Runs `veil admin <args>` with `token` in VEIL_TOKEN.
    async fn run(&self, token: &str, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veil"));
        command
            .arg("admin")
            .args(["--gateway", &self.url])
            .args(args)
            .env_remove("VEIL_GATEWAY")
            .env("VEIL_TOKEN", token);
        tokio::task::spawn_blocking(move || command.output().expect("veil runs"))
            .await
            .unwrap()
    }

    async fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(token, &all).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json output")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_keys_and_policies_from_the_command_line() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut settings = env.settings::<veil_gateway::GatewaySettings>("gateway");
    settings.service.bootstrap_admin_key = veil_core::types::Personal::new(BOOTSTRAP.into());
    let gateway = veil_testkit::spawn(veil_gateway::build(settings).await?);
    veil_testkit::probe::connect(&gateway.url(), std::time::Duration::from_secs(10)).await?;
    let cli = Cli { url: gateway.url() };

    let created = cli
        .json(
            BOOTSTRAP,
            &[
                "tenant",
                "create",
                "--name",
                "CLI Co",
                "--slug",
                "cli-co",
                "--jurisdiction",
                "eu_gdpr",
                "--with-admin-key",
            ],
        )
        .await;
    assert_eq!(created["tenant"]["slug"], "cli-co");
    assert_eq!(created["tenant"]["default_jurisdiction"], "eu_gdpr");
    let admin = created["admin_key"]["secret"].as_str().unwrap().to_string();
    assert!(admin.starts_with("veil_"));

    let got = cli.json(&admin, &["tenant", "get"]).await;
    assert_eq!(got["tenant_id"], created["tenant"]["tenant_id"]);

    // The secret is printed once, on creation; listings never show it.
    let out = cli
        .run(&admin, &["key", "create", "--name", "bot", "--role", "bot"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout)?;
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret (shown once, store it now): "))
        .unwrap()
        .to_string();
    let out = cli.run(&admin, &["key", "list"]).await;
    let listing = String::from_utf8(out.stdout)?;
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(!listing.contains(&secret));
    let prefix: String = secret.split('_').take(2).collect::<Vec<_>>().join("_");
    assert!(listing.contains(&prefix), "{listing}");

    let revoked = cli
        .json(&admin, &["key", "revoke", &prefix, "--reason", "cli test"])
        .await;
    assert!(!revoked["revoked_at"].as_str().unwrap().is_empty());
    let out = cli.run(&secret, &["tenant", "get"]).await;
    assert_eq!(out.status.code(), Some(1));

    // Policies round-trip through a JSON file.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("policy.json");
    std::fs::write(
        &file,
        r#"{"entity_rules": [{"entity_type": "EMAIL_ADDRESS", "operator": "mask"}],
            "default_operator": "redact", "score_threshold": 0.7}"#,
    )?;
    let file = file.display().to_string();
    let stored = cli.json(&admin, &["policy", "set", "--file", &file]).await;
    assert_eq!(stored["version"], 1);
    let current = cli.json(&admin, &["policy", "get"]).await;
    assert_eq!(current["policy"]["entity_rules"][0]["operator"], "mask");
    assert_eq!(current["policy"]["default_operator"], "redact");
    // `get --json` output is itself a valid input.
    let again = dir.path().join("again.json");
    std::fs::write(&again, current.to_string())?;
    let again = again.display().to_string();
    let stale = cli
        .run(
            &admin,
            &["policy", "set", "--file", &again, "--expected-version", "7"],
        )
        .await;
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("aborted"), "{}", stderr(&stale));

    // Refusals: one line on stderr, exit 1 from the gateway, exit 2 for bad usage.
    let unknown = "0190f0a0-0000-7000-8000-00000000abcd";
    let out = cli
        .run(BOOTSTRAP, &["tenant", "get", "--tenant", unknown])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
    let out = cli
        .run(
            &admin,
            &["key", "create", "--name", "x", "--role", "wizard"],
        )
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // Flags clap refuses are one line too; an expiry beyond the calendar is refused
    // before any date is computed from it.
    let expiring = |days: &'static str| -> Vec<&'static str> {
        let key = ["key", "create", "--name", "x", "--role", "bot"];
        [&key[..], &["--expires-in-days", days]].concat()
    };
    for flags in [
        expiring("4000000"),
        expiring("0"),
        vec!["key", "create", "--no-such-flag"],
    ] {
        let out = cli.run(&admin, &flags).await;
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        assert!(stderr(&out).starts_with("veil: "), "{}", stderr(&out));
    }
    let out = cli.run("", &["tenant", "get"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("VEIL_TOKEN"), "{}", stderr(&out));
    let out = cli
        .run(&admin, &["policy", "set", "--file", "/nonexistent.json"])
        .await;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}
