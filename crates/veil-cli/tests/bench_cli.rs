//! `veil bench` and `veil demo` as a user runs them: bad flags, a small benchmark that
//! must clean up after itself, and the demo against a stack ending in a verified proof.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::stack_settings;
use veil_cli::demo::{DemoTarget, play};
use veil_cli::stack::Stack;
use veil_proto::common::v1::PrivacyCommandType;
use veil_testkit::{TestEnv, spawn};

fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

#[test]
fn bad_bench_flags_exit_2_with_one_line() {
    for args in [
        &["--concurrency", "0"][..],
        &["--messages", "lots"],
        &["--no-such-flag"],
    ] {
        let out = veil().arg("bench").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("veil bench: "), "{stderr}");
    }
    let help = veil().args(["bench", "--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(
        String::from_utf8(help.stdout)
            .unwrap()
            .contains("--concurrency")
    );
}

#[test]
fn a_small_bench_reports_json_and_leaves_no_database_behind() {
    let out = veil()
        .args([
            "bench",
            "--messages",
            "300",
            "--concurrency",
            "8",
            "--channels",
            "2",
            "--rate",
            "100",
            "--rate-seconds",
            "2",
            "--warmup",
            "50",
            "--baseline-seconds",
            "1",
            "--baseline-connections",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["throughput"]["ok"], 300, "{report}");
    assert_eq!(report["throughput"]["errors"], 0, "{report}");
    assert_eq!(report["at_rate"]["ok"], 200, "{report}");
    assert!(report["throughput"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert!(report["baseline"]["inserts_per_second"].as_f64().unwrap() > 0.0);
    assert!(report["messages_per_insert"].as_f64().unwrap() > 0.0);
    // Every event reached the audit log, so the end-to-end rate is at most the answers'.
    assert!(
        report["audit_drain_seconds"].as_f64().unwrap() >= 0.0,
        "{report}"
    );
    let sustained = report["sustained_messages_per_second"].as_f64().unwrap();
    let answered = report["throughput"]["messages_per_second"]
        .as_f64()
        .unwrap();
    assert!(sustained > 0.0 && sustained <= answered, "{report}");
    assert!(!stderr.contains("cleanup"), "{stderr}");
}

#[test]
fn a_stream_bench_with_restores_answers_every_message() {
    let out = veil()
        .args([
            "bench",
            "--stream-chunk",
            "5",
            "--restore",
            "--messages",
            "120",
            "--concurrency",
            "8",
            "--rate",
            "0",
            "--warmup",
            "20",
            "--baseline-seconds",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["config"]["stream_chunk"], 5, "{report}");
    assert_eq!(report["config"]["restore"], true, "{report}");
    assert_eq!(report["throughput"]["ok"], 120, "{report}");
    assert_eq!(report["throughput"]["errors"], 0, "{report}");
    assert!(report["at_rate"].is_null(), "{report}");
    assert!(report["messages_per_insert"].is_null(), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_through_a_stack_and_verifies_a_proof() {
    let env = TestEnv::new().await.unwrap();
    let bootstrap = "demo-bootstrap-key-0123456789abcdef0123456789";
    let stack = Stack::build(stack_settings(&env, bootstrap)).await.unwrap();
    let gateway = stack.addr("gateway").unwrap();
    let running: Vec<_> = stack
        .services
        .into_iter()
        .map(|(_, service)| spawn(service))
        .collect();
    let outcome = play(DemoTarget {
        gateway_url: format!("http://{gateway}"),
        bootstrap_key: bootstrap.into(),
    })
    .await
    .unwrap();
    // Replies written with placeholders reach the user with the real values.
    assert!(
        outcome.restored[0].contains("anna.keller@example.org"),
        "{outcome:?}"
    );
    assert!(
        outcome.restored[1].contains("DE89 3704 0044 0532 0130 00"),
        "{outcome:?}"
    );
    assert!(
        outcome
            .restored
            .iter()
            .all(|r| !r.contains("<EMAIL_ADDRESS_")),
        "{outcome:?}"
    );
    assert_eq!(
        outcome.commands,
        vec![
            PrivacyCommandType::WithdrawConsent as i32,
            PrivacyCommandType::Erase as i32
        ],
        "{outcome:?}"
    );
    assert!(outcome.audit_entries >= 5, "{outcome:?}");
    assert!(outcome.proof_verified, "{outcome:?}");
    assert!(outcome.erasure_certified, "{outcome:?}");
    // Every turn of the conversation is gone, the one that asked for the erasure too.
    assert_eq!(outcome.erased_turns, 5, "{outcome:?}");
    for service in running.into_iter().rev() {
        service.stop().await.unwrap();
    }
}
