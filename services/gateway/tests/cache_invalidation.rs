//! The gateway caches verified API keys and tenant policies in memory. A revocation or a
//! policy change must still take effect on every replica within the documented bound:
//! 5 s (the caches' TTL; the change events normally make it milliseconds).

#![allow(clippy::unwrap_used)]

mod admin_support;

use std::time::{Duration, Instant};

use admin_support::{Gateway, bearer, code, settings};
use tonic::Code;
use veil_proto::common::v1::{Operator, Role as ProtoRole};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    EntityRule, GetTenantRequest, MaskOptions, MessageContext, MessageRole, PrivacyPolicy,
    ProcessMessageRequest, RevokeApiKeyRequest, SetPrivacyPolicyRequest,
};

/// docs/operations.md: a revoked key or a new policy applies everywhere within 5 s.
const BOUND: Duration = Duration::from_secs(5);
/// Scheduling slack of a loaded test machine on top of the bound.
const SLACK: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_is_refused_by_another_replica_within_the_bound() -> anyhow::Result<()> {
    let first = Gateway::start().await?;
    let (_, admin_key) = first.tenant("revoke").await?;
    let (key_id, secret) = first.key(&admin_key, &[ProtoRole::Admin]).await?;
    // A second replica on the same database and event stream.
    let second = veil_testkit::spawn(veil_gateway::build(settings(&first.env)).await?);
    let channel = veil_testkit::probe::connect(&second.url(), Duration::from_secs(10)).await?;
    let mut other = veil_proto::gateway::v1::admin_service_client::AdminServiceClient::new(channel);
    let whoami = || bearer(GetTenantRequest::default(), &secret);
    // Used on the second replica, so it is cached there.
    assert_eq!(code(other.get_tenant(whoami()).await), Code::Ok);
    assert_eq!(code(other.get_tenant(whoami()).await), Code::Ok);

    let revoked_at = Instant::now();
    first
        .admin()
        .revoke_api_key(bearer(
            RevokeApiKeyRequest {
                tenant_id: String::new(),
                key_id,
                reason: "leaked".into(),
            },
            &admin_key,
        ))
        .await?;
    // The replica that revoked refuses it on the very next call.
    assert_eq!(
        code(first.admin().get_tenant(whoami()).await),
        Code::Unauthenticated
    );
    let refused_after = veil_testkit::eventually(BOUND + SLACK, || {
        let mut other = other.clone();
        async move {
            (code(other.get_tenant(whoami()).await) == Code::Unauthenticated)
                .then(|| revoked_at.elapsed())
        }
    })
    .await?;
    assert!(refused_after <= BOUND + SLACK, "{refused_after:?}");
    // And it stays refused.
    assert_eq!(
        code(other.get_tenant(whoami()).await),
        Code::Unauthenticated
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_refused_even_for_a_cached_key() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("wrong").await?;
    let (_, secret) = gw.key(&admin_key, &[ProtoRole::Admin]).await?;
    let mut admin = gw.admin();
    assert_eq!(
        code(
            admin
                .get_tenant(bearer(GetTenantRequest::default(), &secret))
                .await
        ),
        Code::Ok
    );
    // Same key id, another secret.
    let mut forged = secret.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        code(
            admin
                .get_tenant(bearer(GetTenantRequest::default(), &forged))
                .await
        ),
        Code::Unauthenticated
    );
    Ok(())
}

fn email_policy(operator: Operator) -> PrivacyPolicy {
    PrivacyPolicy {
        entity_rules: vec![EntityRule {
            entity_type: "EMAIL_ADDRESS".into(),
            operator: operator as i32,
            mask: (operator == Operator::Mask).then(|| MaskOptions {
                masking_char: "#".into(),
                keep_last: 4,
                keep_first: 0,
            }),
            ..Default::default()
        }],
        default_operator: Operator::Redact as i32,
        score_threshold: 0.5,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_change_applies_at_once_on_its_replica_and_within_the_bound_elsewhere()
-> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("policy").await?;
    let (_, bot) = gw.key(&admin_key, &[ProtoRole::Bot]).await?;
    let set = |operator| {
        bearer(
            SetPrivacyPolicyRequest {
                tenant_id: String::new(),
                policy: Some(email_policy(operator)),
                expected_version: 0,
            },
            &admin_key,
        )
    };
    gw.admin().set_privacy_policy(set(Operator::Redact)).await?;
    // Assistant turns whose values are redacted or masked need neither consent nor the
    // vault, so the gateway runs alone.
    let mut pipeline = PrivacyGatewayServiceClient::new(gw.channel.clone());
    let second = veil_testkit::spawn(veil_gateway::build(settings(&gw.env)).await?);
    let channel = veil_testkit::probe::connect(&second.url(), Duration::from_secs(10)).await?;
    let mut elsewhere = PrivacyGatewayServiceClient::new(channel);
    let message = || {
        bearer(
            ProcessMessageRequest {
                context: Some(MessageContext {
                    conversation_id: "c-1".into(),
                    subject_id: "s-1".into(),
                    role: MessageRole::Assistant as i32,
                    ..Default::default()
                }),
                text: "Write to anna.berg@example.org please".into(),
            },
            &bot,
        )
    };
    // Both replicas have version 1 cached.
    for client in [&mut pipeline, &mut elsewhere] {
        let first = client.process_message(message()).await?.into_inner();
        assert_eq!(first.policy_version, 1);
        assert!(
            !first.redacted_text.contains(".org"),
            "{}",
            first.redacted_text
        );
    }

    let changed_at = Instant::now();
    gw.admin().set_privacy_policy(set(Operator::Mask)).await?;
    // The replica that stored the change applies it to its very next message.
    let next = pipeline.process_message(message()).await?.into_inner();
    assert_eq!(next.policy_version, 2);
    // Masked (separators kept), the last four characters shown.
    let text = next.redacted_text;
    assert!(text.contains('#') && text.contains("e.org"), "{text}");
    // Another replica follows the change event, at the latest after the cache's TTL.
    veil_testkit::eventually(BOUND + SLACK, || {
        let mut elsewhere = elsewhere.clone();
        async move {
            let out = elsewhere
                .process_message(message())
                .await
                .ok()?
                .into_inner();
            (out.policy_version == 2).then_some(())
        }
    })
    .await?;
    assert!(changed_at.elapsed() <= BOUND + SLACK);
    // Every later message uses the new version too.
    let after = elsewhere.process_message(message()).await?.into_inner();
    assert_eq!(after.policy_version, 2);
    Ok(())
}
