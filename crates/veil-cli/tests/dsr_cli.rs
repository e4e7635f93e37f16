//! `veil dsr` end to end: the real binary against the whole stack running in the test,
//! through the gateway with a privacy officer's API key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use veil_cli::stack::{Stack, StackSettings};
use veil_testkit::{TestEnv, eventually, spawn};

const BOOTSTRAP: &str = "cli-dsr-test-bootstrap-key-0123456789abcdef";

fn settings(env: &TestEnv) -> StackSettings {
    let mut gateway = env.settings::<veil_gateway::GatewaySettings>("gateway");
    gateway.service.bootstrap_admin_key = veil_core::types::Personal::new(BOOTSTRAP.into());
    let mut vault = env.settings::<veil_vault::VaultSettings>("vault");
    vault.service.master_keys.insert(
        "1".into(),
        veil_core::types::Personal::new(
            veil_core::crypto::KeyBytes::generate()
                .to_base64()
                .to_string(),
        ),
    );
    let mut retention = env.settings::<veil_retention::RetentionSettings>("retention");
    retention.service.saga_retry_secs = 1;
    StackSettings {
        gateway,
        consent: env.settings("consent"),
        vault,
        retention,
        audit: env.settings("audit"),
    }
}

struct Cli {
    url: String,
}

impl Cli {
    async fn run(&self, token: &str, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veil"));
        command
            .args(args)
            .env_remove("VEIL_GATEWAY")
            .env("VEIL_GATEWAY", &self.url)
            .env("VEIL_TOKEN", token);
        tokio::task::spawn_blocking(move || command.output().expect("veil runs"))
            .await
            .unwrap()
    }

    async fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
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
async fn submit_status_list_extend_and_export_from_the_command_line() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = Stack::build(settings(&env)).await?;
    let running: Vec<_> = stack
        .services
        .into_iter()
        .map(|(name, service)| (name, spawn(service)))
        .collect();
    let gateway = &running.iter().find(|(n, _)| *n == "gateway").unwrap().1;
    veil_testkit::probe::connect(&gateway.url(), Duration::from_secs(10)).await?;
    let cli = Cli { url: gateway.url() };

    let created = cli
        .json(
            BOOTSTRAP,
            &[
                "admin",
                "tenant",
                "create",
                "--name",
                "DSR Co",
                "--slug",
                "dsr-co",
                "--with-admin-key",
            ],
        )
        .await;
    let admin = created["admin_key"]["secret"].as_str().unwrap().to_string();
    let officer = cli
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
    let officer = officer["secret"].as_str().unwrap().to_string();

    // The subject has a vault record, so every service has something to export.
    let channel = veil_testkit::probe::connect(&gateway.url(), Duration::from_secs(10)).await?;
    let mut put = tonic::Request::new(veil_proto::vault::v1::PutRecordRequest {
        subject_id: "customer-7".into(),
        category: "contact".into(),
        field: "email".into(),
        value: b"c7@example.org".to_vec(),
        content_type: "text/plain".into(),
        ..Default::default()
    });
    veil_core::auth::attach_bearer(&mut put, &officer)?;
    veil_proto::vault::v1::vault_service_client::VaultServiceClient::new(channel)
        .put_record(put)
        .await?;

    // An access request the officer vouches for runs at once; its export downloads.
    let access = cli
        .json(
            &officer,
            &[
                "dsr",
                "submit",
                "--subject",
                "customer-7",
                "--type",
                "access",
                "--identity-verified",
            ],
        )
        .await;
    let access_id = access["request_id"].as_str().unwrap().to_string();
    assert!(access.get("challenge").is_none());
    let ready = eventually(Duration::from_secs(30), || {
        let (cli, officer, id) = (&cli, officer.clone(), access_id.clone());
        async move {
            let status = cli.json(&officer, &["dsr", "status", &id]).await;
            (status["export_ready"] == true).then_some(())
        }
    })
    .await;
    if ready.is_err() {
        let status = cli.json(&officer, &["dsr", "status", &access_id]).await;
        let pool = sqlx::PgPool::connect(&env.db.url()).await?;
        let jobs: Vec<(String, i32)> =
            sqlx::query_as("SELECT error, attempts FROM retention.export_jobs")
                .fetch_all(&pool)
                .await?;
        panic!("export never ready: {status} jobs {jobs:?}");
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("export.json");
    let file_arg = file.display().to_string();
    let exported = cli
        .json(&officer, &["dsr", "export", &access_id, "--out", &file_arg])
        .await;
    let bytes = std::fs::read(&file)?;
    assert_eq!(
        exported["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&bytes))
    );
    assert_eq!(exported["bytes"].as_u64(), Some(bytes.len() as u64));
    let _: Value = serde_json::from_slice(&bytes)?;
    assert!(!dir.path().join("export.json.part").exists());

    // Without --identity-verified the officer gets a code to deliver.
    let erasure = cli
        .json(
            &officer,
            &[
                "dsr",
                "submit",
                "--subject",
                "customer-8",
                "--type",
                "erasure",
                "--jurisdiction",
                "us-ca-ccpa",
            ],
        )
        .await;
    let erasure_id = erasure["request_id"].as_str().unwrap().to_string();
    assert_eq!(erasure["challenge"]["code"].as_str().unwrap().len(), 8);
    assert_eq!(erasure["state"], "received");

    let extended = cli
        .json(
            &officer,
            &[
                "dsr",
                "extend",
                &erasure_id,
                "--days",
                "45",
                "--reason",
                "complex",
            ],
        )
        .await;
    assert_eq!(extended["extensions"][0]["extended_by_days"], 45);
    // CCPA allows 90 days in all: one more day is refused, on one line, exit 1.
    let out = cli
        .run(
            &officer,
            &[
                "dsr",
                "extend",
                &erasure_id,
                "--days",
                "1",
                "--reason",
                "more",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("veil dsr: failed_precondition"));
    assert_eq!(stderr(&out).trim_end().lines().count(), 1);

    let listed = cli.json(&officer, &["dsr", "list"]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    let received = cli
        .json(&officer, &["dsr", "list", "--state", "received"])
        .await;
    assert_eq!(received[0]["request_id"], erasure_id.as_str());

    // Usage errors exit 2.
    let out = cli
        .run(
            &officer,
            &["dsr", "extend", &erasure_id, "--days", "0", "--reason", "x"],
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = cli.run("", &["dsr", "status", &erasure_id]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // No certificate for a request that is not a completed erasure.
    let out = cli.run(&officer, &["dsr", "certificate", &access_id]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    for (_, service) in running.into_iter().rev() {
        service.stop().await?;
    }
    Ok(())
}
