//! Key rotation: tenant KEK and master rotations rewrap in the background while reads
//! and writes keep working, old versions retire, and the old master key is no longer
//! needed afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{as_principal, client, code, config, payloads, random_key};
use tonic::Code;
use tonic::transport::Channel;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::SubjectSelector;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::events::v1::KeyLevel;
use veil_proto::events::v1::event::Payload;
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_proto::vault::v1::{
    DetokenizeRequest, GetRecordRequest, KeyState, KeyStatusRequest, KeyStatusResponse,
    PutRecordRequest, RotateMasterKeyRequest, RotateTenantKeyRequest, TokenizeItem,
    TokenizeRequest,
};
use veil_testkit::{TestEnv, eventually, spawn};

const ALL: &[Role] = &[Role::PrivacyOfficer, Role::Service, Role::PlatformAdmin];

fn put(subject: &str, value: &str) -> PutRecordRequest {
    PutRecordRequest {
        subject_id: subject.into(),
        category: "contact".into(),
        field: "email".into(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn get(record_id: &str) -> GetRecordRequest {
    GetRecordRequest {
        record_id: record_id.into(),
        purpose: "dsr_access".into(),
    }
}

async fn status(
    env: &TestEnv,
    client: &mut VaultServiceClient<Channel>,
    tenant: TenantId,
) -> KeyStatusResponse {
    client
        .key_status(as_principal(env, Some(tenant), ALL, KeyStatusRequest {}))
        .await
        .unwrap()
        .into_inner()
}

/// One round of reads and writes by one worker; any error is counted as a failure.
async fn load_round(
    env: &TestEnv,
    client: &mut VaultServiceClient<Channel>,
    tenant: TenantId,
    worker: usize,
    round: u64,
    seeded: &[(String, String)],
) -> Result<(), tonic::Status> {
    let (id, value) = &seeded[(round as usize * 7 + worker) % seeded.len()];
    let got = client
        .get_record(as_principal(env, Some(tenant), ALL, get(id)))
        .await?
        .into_inner();
    if got.value != value.as_bytes() {
        return Err(tonic::Status::internal("wrong value"));
    }
    // Writes to existing subjects and to brand-new ones (new data keys mid-rotation).
    let subject = format!("seed-{}", (round as usize + worker) % seeded.len());
    client
        .put_record(as_principal(
            env,
            Some(tenant),
            ALL,
            put(&subject, "during rotation"),
        ))
        .await?;
    let fresh = format!("new-{worker}-{round}");
    let stored = client
        .put_record(as_principal(env, Some(tenant), ALL, put(&fresh, &fresh)))
        .await?
        .into_inner()
        .record
        .unwrap();
    let back = client
        .get_record(as_principal(env, Some(tenant), ALL, get(&stored.record_id)))
        .await?
        .into_inner();
    if back.value != fresh.as_bytes() {
        return Err(tonic::Status::internal("wrong value"));
    }
    let token = client
        .tokenize(as_principal(
            env,
            Some(tenant),
            ALL,
            TokenizeRequest {
                items: vec![TokenizeItem {
                    subject_id: fresh.clone(),
                    entity_type: "PERSON".into(),
                    value: fresh.clone(),
                }],
                store_value: true,
                started_at: None,
            },
        ))
        .await?
        .into_inner()
        .tokens
        .remove(0)
        .token;
    let restored = client
        .detokenize(as_principal(
            env,
            Some(tenant),
            ALL,
            DetokenizeRequest {
                tokens: vec![token],
                purpose: "restore_to_subject".into(),
                subject: Some(SubjectSelector {
                    subject: Some(Subject::SubjectId(fresh.clone())),
                }),
            },
        ))
        .await?
        .into_inner();
    if restored.results[0].value != fresh {
        return Err(tonic::Status::internal("wrong original"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotations_under_concurrent_load_never_fail_a_call() -> anyhow::Result<()> {
    // Internal errors are logged with their cause; show them if a call fails.
    let _telemetry = veil_core::telemetry::init(
        "vault-test",
        &veil_core::config::TelemetrySettings {
            log_format: veil_core::config::LogFormat::Pretty,
            log_level: "error".into(),
            otlp_endpoint: None,
        },
    )?;
    let env = Arc::new(TestEnv::new().await?);
    let (old_master, new_master) = (random_key(), random_key());
    let mut settings = config(&env, &[(1, &old_master), (2, &new_master)]);
    settings.service.current_master_version = 1;
    settings.service.rewrap_batch_size = 10;
    let running = spawn(veil_vault::build(settings).await?);
    let mut admin = client(&running).await?;
    let tenant = TenantId::generate();

    let mut seeded = Vec::new();
    for i in 0..100 {
        let value = format!("seed value {i}");
        let record = admin
            .put_record(as_principal(
                &env,
                Some(tenant),
                ALL,
                put(&format!("seed-{i}"), &value),
            ))
            .await?
            .into_inner()
            .record
            .unwrap();
        seeded.push((record.record_id, value));
    }
    let seeded = Arc::new(seeded);

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (env, seeded, stop, done, failed) = (
            env.clone(),
            seeded.clone(),
            stop.clone(),
            done.clone(),
            failed.clone(),
        );
        let mut client = client(&running).await?;
        workers.push(tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                match load_round(&env, &mut client, tenant, worker, round, &seeded).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        eprintln!("call failed during rotation: {error:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                round += 1;
            }
        }));
    }

    for expected in [2, 3] {
        let rotated = admin
            .rotate_tenant_key(as_principal(
                &env,
                Some(tenant),
                ALL,
                RotateTenantKeyRequest {},
            ))
            .await?
            .into_inner();
        assert_eq!(rotated.new_version.unwrap().version, expected);
        assert_eq!(rotated.previous_version, expected - 1);
        assert!(rotated.rewrap.unwrap().total >= 100);
        let progress = eventually(Duration::from_secs(60), || {
            let (env, mut admin) = (env.clone(), admin.clone());
            async move {
                let rewrap = status(&env, &mut admin, tenant).await.tenant_rewrap?;
                rewrap.finished_at.is_some().then_some(rewrap)
            }
        })
        .await?;
        assert_eq!(progress.target_version, expected);
        assert!(progress.done >= progress.total, "{progress:?}");
    }
    let rotated = admin
        .rotate_master_key(as_principal(
            &env,
            None,
            &[Role::PlatformAdmin],
            RotateMasterKeyRequest::default(),
        ))
        .await?
        .into_inner();
    assert_eq!(rotated.new_version.as_ref().unwrap().version, 2);
    assert_eq!(
        rotated.new_version.unwrap().provider_key_id,
        "local:master-2"
    );
    eventually(Duration::from_secs(60), || {
        let (env, mut admin) = (env.clone(), admin.clone());
        async move {
            let rewrap = status(&env, &mut admin, tenant).await.master_rewrap?;
            rewrap.finished_at.is_some().then_some(())
        }
    })
    .await?;
    // Keep the load going a little past the last rewrap, then stop it.
    let before = done.load(Ordering::Relaxed);
    eventually(Duration::from_secs(30), || {
        let done = done.clone();
        async move { (done.load(Ordering::Relaxed) >= before + 4).then_some(()) }
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no call may fail during a rotation"
    );
    let rounds = done.load(Ordering::Relaxed);
    eprintln!("{rounds} load rounds (6 calls each) completed during the rotations");
    assert!(rounds > 0);

    let keys = status(&env, &mut admin, tenant).await;
    let states: Vec<(i32, i32)> = keys
        .tenant_versions
        .iter()
        .map(|v| (v.version, v.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (3, KeyState::Active as i32),
            (2, KeyState::Retired as i32),
            (1, KeyState::Retired as i32),
        ]
    );
    assert!(
        keys.tenant_versions
            .iter()
            .all(|v| v.wrapped_by_version == 2 || v.state == KeyState::Retired as i32)
    );
    let masters: Vec<(i32, i32)> = keys
        .master_versions
        .iter()
        .map(|v| (v.version, v.state))
        .collect();
    assert_eq!(
        masters,
        vec![(2, KeyState::Active as i32), (1, KeyState::Retired as i32)]
    );
    let db = env.db.pool("vault").await?;
    let stale: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_keys WHERE kek_version <> 3")
        .fetch_one(&db)
        .await?;
    assert_eq!(stale, 0);
    let erased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenant_keys WHERE state = 3 AND length(wrapped) = 0",
    )
    .fetch_one(&db)
    .await?;
    assert_eq!(erased, 2, "retired KEK material is erased");
    let completed = payloads(&common::outbox(&db).await?, |p| match p {
        Payload::VaultKeyRotated(e) if e.completed => Some((e.level, e.new_version)),
        _ => None,
    });
    assert!(completed.contains(&(KeyLevel::Tenant as i32, 3)));
    assert!(completed.contains(&(KeyLevel::Master as i32, 2)));
    running.stop().await?;

    // The old master key is no longer needed: a vault with only the new one reads all.
    let restarted = spawn(veil_vault::build(config(&env, &[(2, &new_master)])).await?);
    let mut reader = client(&restarted).await?;
    for (id, value) in seeded.iter().step_by(10) {
        let got = reader
            .get_record(as_principal(&env, Some(tenant), ALL, get(id)))
            .await?;
        assert_eq!(got.into_inner().value, value.as_bytes());
    }
    restarted.stop().await?;
    // ...whereas one that lacks the active master key refuses to start.
    let error = veil_vault::build(config(&env, &[(1, &old_master)]))
        .await
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").contains("service.master_keys"),
        "{error:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn master_rotation_needs_a_staged_key_and_the_platform_admin() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let running = spawn(veil_vault::build(config(&env, &[(1, &random_key())])).await?);
    let mut vault = client(&running).await?;
    let tenant = TenantId::generate();
    assert_eq!(
        code(
            vault
                .rotate_master_key(as_principal(
                    &env,
                    None,
                    &[Role::PlatformAdmin],
                    RotateMasterKeyRequest::default()
                ))
                .await
        ),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(
            vault
                .rotate_master_key(as_principal(
                    &env,
                    Some(tenant),
                    &[Role::Admin],
                    RotateMasterKeyRequest::default()
                ))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            vault
                .rotate_master_key(as_principal(
                    &env,
                    None,
                    &[Role::PlatformAdmin],
                    RotateMasterKeyRequest {
                        provider_key_id: "local:master-1".into(),
                    }
                ))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            vault
                .rotate_tenant_key(as_principal(
                    &env,
                    Some(tenant),
                    &[Role::Auditor],
                    RotateTenantKeyRequest {}
                ))
                .await
        ),
        Code::PermissionDenied
    );
    // A tenant's auditor sees its own key versions, never the master's.
    vault
        .rotate_tenant_key(as_principal(
            &env,
            Some(tenant),
            &[Role::Admin],
            RotateTenantKeyRequest {},
        ))
        .await?;
    let seen = vault
        .key_status(as_principal(
            &env,
            Some(tenant),
            &[Role::Auditor],
            KeyStatusRequest {},
        ))
        .await?
        .into_inner();
    assert!(seen.master_versions.is_empty());
    assert_eq!(seen.tenant_versions.len(), 2);
    running.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_configured_master_key_rotates_at_start_up() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (first, second) = (random_key(), random_key());
    let running = spawn(veil_vault::build(config(&env, &[(1, &first)])).await?);
    let mut vault = client(&running).await?;
    let tenant = TenantId::generate();
    let record = vault
        .put_record(as_principal(&env, Some(tenant), ALL, put("user-1", "kept")))
        .await?
        .into_inner()
        .record
        .unwrap();
    running.stop().await?;

    let running = spawn(veil_vault::build(config(&env, &[(1, &first), (2, &second)])).await?);
    let mut vault = client(&running).await?;
    let done = eventually(Duration::from_secs(30), || {
        let (env, mut vault) = (&env, vault.clone());
        async move {
            let status = status(env, &mut vault, tenant).await;
            let rewrap = status.master_rewrap?;
            rewrap.finished_at.is_some().then_some(status)
        }
    })
    .await?;
    assert_eq!(done.master_versions[0].version, 2);
    let got = vault
        .get_record(as_principal(
            &env,
            Some(tenant),
            ALL,
            get(&record.record_id),
        ))
        .await?;
    assert_eq!(got.into_inner().value, b"kept");
    running.stop().await?;
    Ok(())
}
