//! `veil retention` end to end: the real binary against the whole stack running in the
//! test, through the gateway with a privacy officer's API key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{RunningStack, stack_settings};
use veil_testkit::TestEnv;

const BOOTSTRAP: &str = "cli-retention-test-bootstrap-key-0123456789abcdef";

#[tokio::test(flavor = "multi_thread")]
async fn policies_holds_and_sweeps_from_the_command_line() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let settings = stack_settings(&env, BOOTSTRAP);
    let stack = RunningStack::start(settings).await?;
    let cli = &stack.cli;
    let officer = stack.officer(BOOTSTRAP, "Keep Co", "keep-co").await;

    let set = cli
        .json(
            &officer,
            &[
                "retention",
                "policy",
                "set",
                "--category",
                "transcript",
                "--period",
                "30d",
                "--action",
                "delete",
            ],
        )
        .await;
    assert_eq!(set["created"], true);
    assert_eq!(set["period_secs"], 30 * 86_400);
    assert_eq!(set["category"], "transcript");
    let listed = cli.json(&officer, &["retention", "policy", "list"]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["action"], "delete");

    let hold = cli
        .json(
            &officer,
            &[
                "retention",
                "hold",
                "place",
                "--subject",
                "customer-9",
                "--reason",
                "litigation",
                "--case-reference",
                "CASE-9",
            ],
        )
        .await;
    let hold_id = hold["hold_id"].as_str().unwrap().to_string();
    assert_eq!(hold["tenant_wide"], false);
    assert_eq!(hold["subject_ref"].as_str().map(str::len), Some(64));
    let holds = cli.json(&officer, &["retention", "hold", "list"]).await;
    assert_eq!(holds.as_array().map(Vec::len), Some(1));

    let dry = cli
        .json(&officer, &["retention", "sweep", "--dry-run"])
        .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["results"][0]["service"], "gateway");
    assert_eq!(dry["results"][0]["error"], "");
    let text = cli.run(&officer, &["retention", "sweep"]).await;
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(String::from_utf8_lossy(&text.stdout).contains("gateway"));

    let released = cli
        .json(
            &officer,
            &[
                "retention",
                "hold",
                "release",
                &hold_id,
                "--reason",
                "settled",
            ],
        )
        .await;
    assert_eq!(released["release_reason"], "settled");
    let in_force = cli.json(&officer, &["retention", "hold", "list"]).await;
    assert_eq!(in_force.as_array().map(Vec::len), Some(0));
    let deleted = cli
        .json(
            &officer,
            &[
                "retention",
                "policy",
                "delete",
                listed[0]["policy_id"].as_str().unwrap(),
            ],
        )
        .await;
    assert_eq!(deleted["category"], "transcript");

    // Bad usage exits 2 before any call; a refusal by the service exits 1.
    let bad = cli
        .run(
            &officer,
            &[
                "retention",
                "policy",
                "set",
                "--category",
                "transcript",
                "--period",
                "30y",
                "--action",
                "delete",
            ],
        )
        .await;
    assert_eq!(bad.status.code(), Some(2));
    let refused = cli
        .run(
            &officer,
            &[
                "retention",
                "policy",
                "set",
                "--category",
                "transcript",
                "--period",
                "30m",
                "--action",
                "delete",
            ],
        )
        .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("policy.period"));
    stack.stop().await
}
