//! The gateway's generic proxy: one policy table decides which role may call which
//! public method of the internal services; tenants never see each other's data.

use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::transport::Channel;
use veil_core::types::Role;
use veil_e2e::{TestStack, bearer, create_tenant, stack_settings};
use veil_proto::audit::v1::audit_service_client::AuditServiceClient;
use veil_proto::audit::v1::{GetEntryRequest, get_entry_request::Key};
use veil_proto::common::v1::{LegalBasis, Role as ProtoRole};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{Purpose, UpsertPurposeRequest};
use veil_proto::gateway::v1::CreateApiKeyRequest;
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_testkit::{TestEnv, eventually};

const ROLES: [(Role, ProtoRole); 5] = [
    (Role::Bot, ProtoRole::Bot),
    (Role::Agent, ProtoRole::Agent),
    (Role::PrivacyOfficer, ProtoRole::PrivacyOfficer),
    (Role::Auditor, ProtoRole::Auditor),
    (Role::Admin, ProtoRole::Admin),
];

async fn key_with_role(
    gateway: Channel,
    admin_key: &str,
    role: ProtoRole,
) -> anyhow::Result<String> {
    Ok(AdminServiceClient::new(gateway)
        .create_api_key(bearer(
            CreateApiKeyRequest {
                name: format!("{role:?}"),
                roles: vec![role as i32],
                ..Default::default()
            },
            admin_key,
        ))
        .await?
        .into_inner()
        .created
        .unwrap_or_default()
        .secret)
}

/// Calls `path` with an empty message as `token`; only the status code matters here.
async fn call(gateway: Channel, path: &str, token: &str) -> tonic::Code {
    let mut grpc = tonic::client::Grpc::new(gateway);
    if grpc.ready().await.is_err() {
        return tonic::Code::Unavailable;
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = PathAndQuery::try_from(path).expect("valid path");
    match grpc.unary(bearer((), token), path, codec).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn role_by_method_matrix_follows_the_policy_table() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "matrix").await?;
    let mut keys = Vec::new();
    for (role, proto) in ROLES {
        keys.push((
            role,
            key_with_role(gateway.clone(), &tenant.admin_key, proto).await?,
        ));
    }
    let mut checked = 0;
    for (path, route) in veil_gateway::proxy_routes() {
        for (role, key) in &keys {
            let code = call(gateway.clone(), &path, key).await;
            if route.roles.contains(role) {
                assert!(
                    !matches!(
                        code,
                        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
                    ),
                    "{role:?} must reach {path}, got {code:?}"
                );
            } else {
                assert_eq!(code, tonic::Code::PermissionDenied, "{role:?} on {path}");
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} combinations checked");
    // Methods outside the table, internal ones included, are refused for everyone.
    for path in [
        "/veil.vault.v1.VaultService/Purge",
        "/veil.consent.v1.ConsentService/EraseSubject",
        "/veil.vault.v1.VaultService/ExportSubject",
    ] {
        for (_, key) in &keys {
            assert_eq!(
                call(gateway.clone(), path, key).await,
                tonic::Code::PermissionDenied,
                "{path}"
            );
        }
    }
    // No credential: UNAUTHENTICATED before anything else.
    assert_eq!(
        call(
            gateway.clone(),
            "/veil.consent.v1.ConsentService/ListPurposes",
            "nope"
        )
        .await,
        tonic::Code::Unauthenticated
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_cannot_reach_each_others_data_through_the_proxy() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let a = create_tenant(gateway.clone(), "tenant-a").await?;
    let b = create_tenant(gateway.clone(), "tenant-b").await?;
    let officer_a = key_with_role(gateway.clone(), &a.admin_key, ProtoRole::PrivacyOfficer).await?;
    let officer_b = key_with_role(gateway.clone(), &b.admin_key, ProtoRole::PrivacyOfficer).await?;

    // B defines a purpose through the proxy; A cannot see it.
    let mut consent = ConsentServiceClient::new(gateway.clone());
    consent
        .upsert_purpose(bearer(
            UpsertPurposeRequest {
                purpose: Some(Purpose {
                    key: "b_only".into(),
                    name: "B only".into(),
                    legal_basis: LegalBasis::Consent as i32,
                    ..Default::default()
                }),
            },
            &officer_b,
        ))
        .await?;
    let check = |token: &str| {
        bearer(
            veil_proto::consent::v1::CheckConsentRequest {
                subject: Some(veil_proto::common::v1::SubjectSelector {
                    subject: Some(
                        veil_proto::common::v1::subject_selector::Subject::SubjectId(
                            "customer-1".into(),
                        ),
                    ),
                }),
                purpose_keys: vec!["b_only".into()],
                ..Default::default()
            },
            token,
        )
    };
    consent.check_consent(check(&officer_b)).await?;
    let status = consent
        .check_consent(check(&officer_a))
        .await
        .expect_err("other tenant");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");

    // B's audit entries are invisible to A even by index.
    let mut audit = AuditServiceClient::new(gateway.clone());
    let b_entry = eventually(Duration::from_secs(20), || {
        let mut audit = audit.clone();
        let officer_b = officer_b.clone();
        async move {
            for index in 0..50u64 {
                let request = bearer(
                    GetEntryRequest {
                        key: Some(Key::LeafIndex(index)),
                    },
                    &officer_b,
                );
                if let Ok(entry) = audit.get_entry(request).await {
                    return Some(index).filter(|_| entry.into_inner().entry.is_some());
                }
            }
            None
        }
    })
    .await?;
    let status = audit
        .get_entry(bearer(
            GetEntryRequest {
                key: Some(Key::LeafIndex(b_entry)),
            },
            &officer_a,
        ))
        .await
        .expect_err("other tenant's entry");
    assert_eq!(status.code(), tonic::Code::NotFound);
    stack.stop().await
}
