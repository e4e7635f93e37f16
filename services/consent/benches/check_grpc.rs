//! CheckConsent over gRPC against the `veil-consent` binary running as its own process
//! (real Postgres and NATS), with concurrent clients, as the gateway calls it: checks
//! per second, latency, and the CPU time the server and the client each spent per check
//! (the machine is shared, so CPU per check is the figure that does not depend on what
//! else runs). Three runs of the same binary: the decision cache on with each caller
//! taking its token as the gateway does (`TokenIssuer::token_for`, reused while fresh,
//! so the server verifies the signature once and then hits its verified-token cache);
//! the same with a freshly minted token on every call (how the gateway called before,
//! a full Ed25519 verification per check); and the baseline with the decision cache off,
//! so every check reads Postgres.
//!
//! `cargo bench -p veil-consent --bench check_grpc`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tonic::Request;
use tonic::transport::Channel;
use veil_core::auth::{Principal, TokenIssuer, attach_bearer};
use veil_core::types::{RequestId, Role, TenantId};
use veil_proto::common::v1::{
    CollectionMethod, ConsentDecision, Jurisdiction, LegalBasis, NoticeKind, SubjectSelector,
    subject_selector,
};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::*;
use veil_testkit::TestEnv;
use veil_testkit::binary::{free_port, service_env};

const SUBJECTS: usize = 300;
const CHANNELS: usize = 4;
const WORKERS: usize = 32;
const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);

fn caller(tenant: TenantId, roles: &[Role]) -> Principal {
    Principal {
        tenant: Some(tenant),
        principal_id: "bench".parse().unwrap(),
        roles: roles.to_vec(),
        request_id: RequestId::generate(),
    }
}

fn token(env: &TestEnv, tenant: TenantId, roles: &[Role]) -> String {
    let issuer = env.issuer().unwrap().with_ttl(Duration::from_secs(300));
    issuer.mint_for("consent", &caller(tenant, roles)).unwrap()
}

/// How the load's callers get their internal token for each check.
#[derive(Clone, Copy)]
enum Tokens {
    /// `token_for`, as the gateway does now.
    Reused,
    /// A fresh `mint_for` per call, as the gateway did before.
    FreshPerCall,
}

fn req<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    attach_bearer(&mut request, token).unwrap();
    request
}

/// Purposes, a notice and granted subjects; returns the subjects' refs.
async fn seed(
    client: &mut ConsentServiceClient<Channel>,
    admin: &str,
    officer: &str,
    bot: &str,
) -> Vec<String> {
    for (key, basis) in [
        ("support", LegalBasis::Contract),
        ("marketing", LegalBasis::Consent),
        ("analytics", LegalBasis::Consent),
    ] {
        let purpose = Purpose {
            key: key.into(),
            name: key.into(),
            legal_basis: basis as i32,
            ..Default::default()
        };
        client
            .upsert_purpose(req(
                UpsertPurposeRequest {
                    purpose: Some(purpose),
                },
                admin,
            ))
            .await
            .unwrap();
    }
    let notice = client
        .publish_notice(req(
            PublishNoticeRequest {
                kind: NoticeKind::PrivacyNotice as i32,
                locale: "en".into(),
                title: "Privacy".into(),
                body: "What we do with your data.".into(),
                ..Default::default()
            },
            officer,
        ))
        .await
        .unwrap()
        .into_inner()
        .notice
        .unwrap();
    let mut refs = Vec::with_capacity(SUBJECTS);
    for n in 0..SUBJECTS {
        let granted = client
            .record_consent(req(
                RecordConsentRequest {
                    subject_id: format!("subject-{n}"),
                    purpose_keys: vec!["marketing".into()],
                    choice: ConsentChoice::Grant as i32,
                    notice_id: notice.notice_id.clone(),
                    collection_method: CollectionMethod::Chat as i32,
                    jurisdiction: Jurisdiction::EuGdpr as i32,
                    ..Default::default()
                },
                bot,
            ))
            .await
            .unwrap()
            .into_inner();
        refs.push(granted.records[0].subject_ref.clone());
    }
    refs
}

async fn load(
    channels: &[Channel],
    refs: Arc<Vec<String>>,
    issuer: Arc<TokenIssuer>,
    bot: Principal,
    tokens: Tokens,
    length: Duration,
) -> Vec<Duration> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let mut client = ConsentServiceClient::new(channels[w % channels.len()].clone());
        let refs = refs.clone();
        let issuer = issuer.clone();
        let bot = bot.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut i = w * 31;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let check = CheckConsentRequest {
                    subject: Some(SubjectSelector {
                        subject: Some(subject_selector::Subject::SubjectRef(
                            refs[i % refs.len()].clone(),
                        )),
                    }),
                    purpose_keys: vec!["support".into(), "marketing".into(), "analytics".into()],
                    jurisdiction: Jurisdiction::EuGdpr as i32,
                };
                let started = Instant::now();
                let token: Arc<str> = match tokens {
                    Tokens::Reused => issuer.token_for("consent", &bot).unwrap(),
                    Tokens::FreshPerCall => issuer.mint_for("consent", &bot).unwrap().into(),
                };
                let response = client
                    .check_consent(req(check, &token))
                    .await
                    .unwrap()
                    .into_inner();
                samples.push(started.elapsed());
                assert_eq!(
                    response.decisions[1].decision,
                    ConsentDecision::Allowed as i32
                );
            }
            samples
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// The service binary as a child process, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time (user + system) a process has used; `pid` "self" for this one. USER_HZ is 100
/// on Linux.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn scenario(label: &str, cache_capacity: usize, tokens: Tokens) -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let grpc_port = free_port()?;
    let mut vars = service_env(&env, grpc_port, free_port()?);
    vars.push((
        "VEIL_SERVICE__CACHE_CAPACITY".into(),
        cache_capacity.to_string(),
    ));
    vars.push(("VEIL_DATABASE__MAX_CONNECTIONS".into(), "16".into()));
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_veil-consent"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("VEIL_")) {
        command.env_remove(key);
    }
    let server = Server(
        command
            .envs(vars)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()?,
    );
    let pid = server.0.id().to_string();
    let url = format!("http://127.0.0.1:{grpc_port}");
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(veil_testkit::probe::connect(&url, Duration::from_secs(30)).await?);
    }
    let tenant = TenantId::generate();
    let admin = token(&env, tenant, &[Role::Admin]);
    let officer = token(&env, tenant, &[Role::PrivacyOfficer]);
    let bot = token(&env, tenant, &[Role::Bot]);
    let mut client = ConsentServiceClient::new(channels[0].clone());
    let refs = Arc::new(seed(&mut client, &admin, &officer, &bot).await);
    let issuer = Arc::new(env.issuer()?);
    let bot = caller(tenant, &[Role::Bot]);
    load(
        &channels,
        refs.clone(),
        issuer.clone(),
        bot.clone(),
        tokens,
        WARMUP,
    )
    .await;
    let (server_before, client_before) = (cpu_time(&pid), cpu_time("self"));
    let mut samples = load(&channels, refs, issuer, bot, tokens, MEASURE).await;
    let server_cpu = cpu_time(&pid).saturating_sub(server_before);
    let client_cpu = cpu_time("self").saturating_sub(client_before);
    samples.sort();
    let checks = samples.len() as f64;
    let server_per_check = server_cpu.as_secs_f64() / checks;
    println!(
        "{label}: {} checks in {:?} = {:.0} checks/s; latency p50={:?} p99={:?} max={:?}; \
         server cpu {:.1} us per check ({:.0} checks per server cpu-second), client cpu \
         {:.1} us per check ({WORKERS} concurrent callers on {CHANNELS} HTTP/2 connections, \
         3 purposes per check)",
        samples.len(),
        MEASURE,
        checks / MEASURE.as_secs_f64(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().unwrap(),
        server_per_check * 1e6,
        1.0 / server_per_check,
        client_cpu.as_secs_f64() / checks * 1e6,
    );
    drop(server);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        scenario("cache on, reused token", 100_000, Tokens::Reused).await?;
        scenario(
            "cache on, fresh token per call (before)",
            100_000,
            Tokens::FreshPerCall,
        )
        .await?;
        scenario(
            "baseline, cache off (every check reads postgres), reused token",
            0,
            Tokens::Reused,
        )
        .await
    })
}
