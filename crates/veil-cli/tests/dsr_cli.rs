//! `veil dsr` end to end: the real binary against the whole stack running in the test,
//! through the gateway with a privacy officer's API key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{RunningStack, stack_settings, stderr};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;
use veil_testkit::{TestEnv, eventually};

const BOOTSTRAP: &str = "cli-dsr-test-bootstrap-key-0123456789abcdef";

#[tokio::test(flavor = "multi_thread")]
async fn submit_status_list_extend_and_export_from_the_command_line() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut settings = stack_settings(&env, BOOTSTRAP);
    settings.retention.service.saga_retry_secs = 1;
    let stack = RunningStack::start(settings).await?;
    let cli = &stack.cli;
    let officer = stack.officer(BOOTSTRAP, "DSR Co", "dsr-co").await;

    // The subject has a vault record, so every service has something to export.
    let channel = veil_testkit::probe::connect(&cli.url, Duration::from_secs(10)).await?;
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

    stack.stop().await
}
