//! The `veil-vault` binary as an operator runs it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use veil_testkit::TestEnv;
use veil_testkit::binary::{ServiceProcess, free_port, run_to_exit, service_env};

const BINARY: &str = env!("CARGO_BIN_EXE_veil-vault");
const SERVICE: &str = "veil.vault.v1.VaultService";

#[tokio::test(flavor = "multi_thread")]
async fn serves_health_and_reflection_and_stops_on_sigterm() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let grpc_port = free_port()?;
    let mut vars = service_env(&env, grpc_port, free_port()?);
    vars.push((
        "VEIL_SERVICE__MASTER_KEYS__1".into(),
        veil_core::crypto::KeyBytes::generate()
            .to_base64()
            .to_string(),
    ));
    let process = ServiceProcess::start(BINARY, &vars, grpc_port)?;
    let channel = veil_testkit::probe::connect(&process.url, Duration::from_secs(30)).await?;
    // grpc.health.v1 SERVING is 1.
    veil_testkit::eventually(Duration::from_secs(30), || {
        let channel = channel.clone();
        async move {
            veil_testkit::probe::health(channel, SERVICE)
                .await
                .ok()
                .filter(|s| *s as i32 == 1)
        }
    })
    .await?;
    let listed = veil_testkit::probe::list_services_v1(channel.clone()).await?;
    assert!(listed.iter().any(|s| s == SERVICE), "{listed:?}");
    let listed = veil_testkit::probe::list_services_v1alpha(channel).await?;
    assert!(listed.iter().any(|s| s == SERVICE), "{listed:?}");
    let exit = process.terminate(Duration::from_secs(30)).await?;
    assert!(exit.success(), "exit after SIGTERM: {exit}");
    Ok(())
}

#[test]
fn bad_setting_exits_with_one_line_naming_the_key() -> anyhow::Result<()> {
    veil_testkit::binary::check_bad_setting(BINARY)
}

#[test]
fn refuses_to_start_without_a_master_key() -> anyhow::Result<()> {
    let (status, stderr) = run_to_exit(BINARY, &[("VEIL_CONFIG_DIR", "/nonexistent")])?;
    assert_eq!(status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("service.master_keys"), "{stderr}");
    let (status, stderr) = run_to_exit(
        BINARY,
        &[
            ("VEIL_CONFIG_DIR", "/nonexistent"),
            ("VEIL_SERVICE__MASTER_KEYS__1", "c2VjcmV0LXRvby1zaG9ydA=="),
        ],
    )?;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("service.master_keys.1"), "{stderr}");
    assert!(!stderr.contains("c2VjcmV0"), "{stderr}");
    Ok(())
}
