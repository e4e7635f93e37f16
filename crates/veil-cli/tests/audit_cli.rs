//! `veil audit verify` and `veil audit export` as an operator runs them, against a log
//! the audit service wrote, then tampered with directly in Postgres.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::Duration;

use veil_core::emit::{EventContext, emit};
use veil_core::types::{Role, TenantId};
use veil_proto::events::v1::VaultRecordStored;
use veil_proto::events::v1::event::Payload;
use veil_testkit::TestEnv;

fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .env_remove("VEIL_DATABASE__URL")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A log of 30 events with a signed head, written by the real service, which is then
/// stopped.
async fn written_log(env: &TestEnv) -> anyhow::Result<sqlx::PgPool> {
    let mut settings = env.settings::<veil_audit::AuditSettings>("audit");
    settings.service.append_idle_ms = 10;
    let running = veil_testkit::spawn(veil_audit::build(settings).await?);
    let pool = env.db.pool("audit").await?;
    let tenant = TenantId::generate();
    for i in 0..30 {
        // Through the service's own outbox, as any service publishes.
        let payload = Payload::VaultRecordStored(VaultRecordStored {
            record_id: format!("r{i}"),
            ..VaultRecordStored::default()
        });
        let context = EventContext {
            tenant: Some(tenant),
            ..EventContext::default()
        };
        emit(&pool, &env.events(), &context, payload).await?;
    }
    let count = || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM entries")
                .fetch_one(&pool)
                .await
                .ok()?;
            (n >= 30).then_some(())
        }
    };
    veil_testkit::eventually(Duration::from_secs(30), count).await?;
    let channel = veil_testkit::probe::connect(&running.url(), Duration::from_secs(10)).await?;
    let mut client = veil_proto::audit::v1::audit_service_client::AuditServiceClient::new(channel);
    let request = env.request(
        "audit",
        "auditor",
        Some(tenant),
        &[Role::Auditor],
        veil_proto::audit::v1::GetSignedTreeHeadRequest {
            tree_size: 0,
            sign_now: true,
        },
    )?;
    client.get_signed_tree_head(request).await?;
    running.stop().await?;
    Ok(pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_and_export_detect_tampering_with_exit_codes() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let pool = written_log(&env).await?;
    let url = env.db.url();
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("audit.jsonl");
    let export = export.to_str().unwrap();

    let intact = veil(&[
        "audit",
        "verify",
        "--database-url",
        &url,
        "--schema",
        "audit",
    ]);
    assert_eq!(intact.status.code(), Some(0), "{}", text(&intact));
    assert!(text(&intact).contains("intact"), "{}", text(&intact));

    let exported = veil(&["audit", "export", "--database-url", &url, "--out", export]);
    assert_eq!(exported.status.code(), Some(0), "{}", text(&exported));
    let offline = veil(&["audit", "verify", "--file", export]);
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline));

    // A partial export verifies from its checkpoint.
    let partial = dir.path().join("partial.jsonl");
    let partial = partial.to_str().unwrap();
    let exported = veil(&[
        "audit",
        "export",
        "--database-url",
        &url,
        "--from",
        "11",
        "--out",
        partial,
    ]);
    assert_eq!(exported.status.code(), Some(0), "{}", text(&exported));
    let offline = veil(&["audit", "verify", "--file", partial, "--json"]);
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline));

    // An edited line of the export is caught offline.
    let lines: Vec<String> = std::fs::read_to_string(export)?
        .lines()
        .map(str::to_owned)
        .collect();
    let mut edited = lines.clone();
    edited.swap(4, 9);
    std::fs::write(export, edited.join("\n"))?;
    let offline = veil(&["audit", "verify", "--file", export]);
    assert_eq!(offline.status.code(), Some(1), "{}", text(&offline));
    assert!(text(&offline).contains("TAMPERED"), "{}", text(&offline));

    // An UPDATE in Postgres is named by index.
    sqlx::query("UPDATE entries SET envelope = envelope || '\\x00'::bytea WHERE idx = 5")
        .execute(&pool)
        .await?;
    let tampered = veil(&[
        "audit",
        "verify",
        "--database-url",
        &url,
        "--schema",
        "audit",
    ]);
    assert_eq!(tampered.status.code(), Some(1), "{}", text(&tampered));
    assert!(
        text(&tampered).contains("entry 5 changed"),
        "{}",
        text(&tampered)
    );

    // Bad usage.
    let usage = veil(&["audit", "verify"]);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
    let usage = veil(&["audit", "verify", "--file", "/nonexistent/export.jsonl"]);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
    Ok(())
}
