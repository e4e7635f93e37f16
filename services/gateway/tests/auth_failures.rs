//! Refused calls are recorded for audit's anomaly rules on every entry point (the admin
//! API, the pipeline, the generic proxy), naming the caller's address only by its keyed
//! hash (`peer_ref`), so a burst from one source is grouped without storing addresses.

#![allow(clippy::unwrap_used)]

mod admin_support;

use admin_support::{Gateway, bearer, code, settings};
use tonic::{Code, Request};
use veil_core::subjects::SubjectKeys;
use veil_proto::common::v1::Role as ProtoRole;
use veil_proto::consent::v1::ListPurposesRequest;
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::events::v1::AuthFailureReason;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{GetTenantRequest, ProcessMessageRequest};

#[tokio::test(flavor = "multi_thread")]
async fn every_entry_point_names_the_refused_peer_by_keyed_hash() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("peers").await?;
    let (_, auditor) = gw.key(&admin_key, &[ProtoRole::Auditor]).await?;
    let unknown = "veil_abcdefghijkm_not-the-secret";

    let admin = gw
        .admin()
        .get_tenant(bearer(GetTenantRequest::default(), unknown))
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
    let failures: Vec<_> = gw
        .events("auth_failed")
        .await?
        .into_iter()
        .map(|event| match event.payload.unwrap() {
            Payload::GatewayAuthFailed(failed) => failed,
            other => panic!("unexpected payload {other:?}"),
        })
        .collect();
    let reasons: Vec<_> = failures.iter().map(|f| f.reason).collect();
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
    for failed in &failures {
        assert_eq!(failed.peer_ref, loopback, "{}", failed.method);
        assert!(!failed.peer_ref.contains("127.0.0.1"));
    }
    Ok(())
}
