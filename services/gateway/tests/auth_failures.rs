//! Refused calls are recorded for audit's anomaly rules on every entry point (the admin
//! API, the pipeline, the generic proxy), naming the caller's address only by its keyed
//! hash (`peer_ref`), so a burst from one source is grouped without storing addresses.

#![allow(clippy::unwrap_used)]

mod admin_support;

use std::time::Instant;

use admin_support::{Gateway, bearer, code, settings};
use tonic::{Code, Request};
use tonic_types::StatusExt;
use veil_core::subjects::SubjectKeys;
use veil_gateway::{FAILURE_BURST, FAILURE_RATE};
use veil_proto::common::v1::Role as ProtoRole;
use veil_proto::consent::v1::ListPurposesRequest;
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{AuthFailureReason, GatewayAuthFailed};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{GetTenantRequest, ProcessMessageRequest};
use veil_testkit::TestEnv;

#[tokio::test(flavor = "multi_thread")]
async fn every_entry_point_names_the_refused_peer_by_keyed_hash() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("peers").await?;
    let (_, auditor) = gw.key(&admin_key, &[ProtoRole::Auditor]).await?;
    let unknown = "veil_abcdefghijkm_not-the-secret";

    // Without trusted proxies a forwarded address is ignored: any client can write one.
    let admin = gw
        .admin()
        .get_tenant(forwarded(
            bearer(GetTenantRequest::default(), unknown),
            "198.51.100.7",
        ))
        .await;
    assert_eq!(code(admin), Code::Unauthenticated);
    let mut pipeline = PrivacyGatewayServiceClient::new(gw.channel.clone());
    let anonymous = pipeline.process_message(Request::new(ProcessMessageRequest::default()));
    assert_eq!(code(anonymous.await), Code::Unauthenticated);
    // An auditor's key is valid but may not send messages.
    let wrong_role = pipeline.process_message(bearer(ProcessMessageRequest::default(), &auditor));
    assert_eq!(code(wrong_role.await), Code::PermissionDenied);
    let proxied = ConsentServiceClient::new(gw.channel.clone())
        .list_purposes(bearer(ListPurposesRequest::default(), "not-a-key"))
        .await;
    assert_eq!(code(proxied), Code::Unauthenticated);

    // Each refusal's event is durable before the refusal is answered.
    let recorded = failures(&gw).await?;
    let reasons: Vec<_> = recorded.iter().map(|f| f.reason).collect();
    assert_eq!(
        reasons,
        [
            AuthFailureReason::UnknownKey,
            AuthFailureReason::MissingCredential,
            AuthFailureReason::PermissionDenied,
            AuthFailureReason::UnknownKey,
        ]
        .map(|r| r as i32)
    );
    // The tests connect over loopback: every event names it, by the installation's key.
    let keys = SubjectKeys::from_settings(&settings(&gw.env).privacy)?;
    let loopback = keys.peer_ref("127.0.0.1".parse()?);
    for failed in &recorded {
        assert_eq!(failed.peer_ref, loopback, "{}", failed.method);
        assert!(!failed.peer_ref.contains("127.0.0.1"));
    }
    Ok(())
}

/// A refused call's path is the caller's to choose; one that names no method of Veil's
/// is recorded as `unknown`, so nothing the path carries reaches the audit log.
#[tokio::test(flavor = "multi_thread")]
async fn a_path_naming_no_method_is_recorded_as_unknown() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("paths").await?;
    let (_, bot) = gw.key(&admin_key, &[ProtoRole::Bot]).await?;
    let invented = "/veil.consent.v1.ConsentService/alice@example.com";
    let known = "/veil.vault.v1.VaultService/Detokenize";
    // A bad key on an invented path, a valid key on it, a valid key on a real method
    // its role does not allow.
    for (path, token, expected) in [
        (invented, "not-a-key", Code::Unauthenticated),
        (invented, bot.as_str(), Code::PermissionDenied),
        (known, bot.as_str(), Code::PermissionDenied),
    ] {
        let mut grpc = tonic::client::Grpc::new(gw.channel.clone());
        grpc.ready().await?;
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let path = http::uri::PathAndQuery::try_from(path)?;
        let refused = grpc.unary(bearer((), token), path, codec).await;
        assert_eq!(code(refused), expected, "{token}");
    }
    let methods: Vec<_> = failures(&gw).await?.into_iter().map(|f| f.method).collect();
    assert_eq!(methods, ["unknown", "unknown", known]);
    Ok(())
}

/// Every `gateway.auth_failed` event in the gateway's outbox, in order.
async fn failures(gw: &Gateway) -> anyhow::Result<Vec<GatewayAuthFailed>> {
    Ok(gw
        .events("auth_failed")
        .await?
        .into_iter()
        .map(|event| match event.payload.unwrap() {
            Payload::GatewayAuthFailed(failed) => failed,
            other => panic!("unexpected payload {other:?}"),
        })
        .collect())
}

/// `request` as a load balancer passes it on from `client`.
fn forwarded<T>(mut request: Request<T>, client: &str) -> Request<T> {
    request
        .metadata_mut()
        .insert("x-forwarded-for", client.parse().unwrap());
    request
}

/// Behind a configured proxy (here: loopback, where the tests connect from) the caller it
/// forwards is named, on the gateway's own methods and on proxied ones alike.
#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_names_the_caller_it_forwards() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut behind = settings(&env);
    behind.service.trusted_proxies = vec!["127.0.0.0/8".into(), "::1".into()];
    let keys = SubjectKeys::from_settings(&behind.privacy)?;
    let gw = Gateway::start_with(env, behind).await?;

    let admin = gw
        .admin()
        .get_tenant(forwarded(
            Request::new(GetTenantRequest::default()),
            "198.51.100.7",
        ))
        .await;
    assert_eq!(code(admin), Code::Unauthenticated);
    let proxied = ConsentServiceClient::new(gw.channel.clone())
        .list_purposes(forwarded(
            bearer(ListPurposesRequest::default(), "not-a-key"),
            "203.0.113.5, 127.0.0.1",
        ))
        .await;
    assert_eq!(code(proxied), Code::Unauthenticated);

    let peers: Vec<String> = failures(&gw)
        .await?
        .into_iter()
        .map(|failed| failed.peer_ref)
        .collect();
    assert_eq!(
        peers,
        [
            keys.peer_ref("198.51.100.7".parse()?),
            keys.peer_ref("203.0.113.5".parse()?)
        ]
    );
    Ok(())
}

/// One key, one bucket, on every entry point. Refusals say when to retry and are recorded
/// for audit at most once per key and second: a flood must not write the audit log at
/// its own rate.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_limit_is_refused_everywhere_and_recorded_once_a_second()
-> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut limited = settings(&env);
    limited.service.rate_limit_per_second = 1;
    limited.service.rate_limit_burst = 1;
    let gw = Gateway::start_with(env, limited).await?;
    let (_, admin_key) = gw.tenant("limited").await?;
    let (_, key) = gw
        .key(&admin_key, &[ProtoRole::Admin, ProtoRole::Bot])
        .await?;
    let mut admin = gw.admin();
    let mut pipeline = PrivacyGatewayServiceClient::new(gw.channel.clone());
    let mut consent = ConsentServiceClient::new(gw.channel.clone());

    let start = Instant::now();
    let mut refused = 0;
    for i in 0..30 {
        // Admitted calls fail further on (an empty message, no consent service here);
        // only the limiter answers RESOURCE_EXHAUSTED.
        let answer = match i % 3 {
            0 => admin
                .get_tenant(bearer(GetTenantRequest::default(), &key))
                .await
                .map(drop),
            1 => pipeline
                .process_message(bearer(ProcessMessageRequest::default(), &key))
                .await
                .map(drop),
            _ => consent
                .list_purposes(bearer(ListPurposesRequest::default(), &key))
                .await
                .map(drop),
        };
        if let Err(status) = answer
            && status.code() == Code::ResourceExhausted
        {
            assert!(
                status.get_error_details().retry_info().is_some(),
                "{status:?}"
            );
            refused += 1;
        }
    }
    let seconds = start.elapsed().as_secs();
    // At most one token a second comes back.
    assert!(
        refused >= 30 - (seconds + 1),
        "{refused} refused in {seconds} s"
    );
    let recorded = failures(&gw)
        .await?
        .iter()
        .filter(|failed| failed.reason == AuthFailureReason::RateLimited as i32)
        .count() as u64;
    assert!(
        (1..=seconds + 1).contains(&recorded),
        "{recorded} recorded for {refused} refusals in {seconds} s"
    );
    Ok(())
}

/// A source that keeps failing is refused every time but recorded only within its budget:
/// a flood must not write the audit log at its own rate.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_bad_credentials_is_recorded_within_a_budget() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let mut admin = gw.admin();
    let start = Instant::now();
    let calls: u64 = 120;
    for _ in 0..calls {
        let refused = admin
            .get_tenant(bearer(GetTenantRequest::default(), "not-a-key"))
            .await;
        assert_eq!(code(refused), Code::Unauthenticated);
    }
    let seconds = start.elapsed().as_secs();
    let recorded = failures(&gw).await?.len() as u64;
    let budget = u64::from(FAILURE_BURST) + u64::from(FAILURE_RATE) * (seconds + 1);
    assert!(
        (u64::from(FAILURE_BURST)..=budget.min(calls)).contains(&recorded),
        "{recorded} of {calls} recorded in {seconds} s"
    );
    assert!(
        recorded < calls,
        "{recorded} of {calls} recorded in {seconds} s"
    );
    Ok(())
}
