//! The walking skeleton end to end: gateway -> consent -> transcript + outbox -> NATS ->
//! audit, with all five services in-process on a fresh database and event namespace.

use std::time::Duration;

use veil_core::types::Role;
use veil_e2e::{TestStack, bearer, create_tenant, internal_token, stack_settings};
use veil_proto::common::v1::{ConsentDecision, LegalBasis};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{Purpose, UpsertPurposeRequest};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{MessageContext, MessageRole, ProcessMessageRequest};
use veil_testkit::{PrivateNats, TestEnv, eventually};

const EMAIL: &str = "anna.keller@example.org";

fn message(conversation: &str, purposes: &[&str]) -> ProcessMessageRequest {
    ProcessMessageRequest {
        context: Some(MessageContext {
            conversation_id: conversation.into(),
            subject_id: "customer-4711".into(),
            role: MessageRole::User as i32,
            purposes: purposes.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }),
        text: format!("Hello, my email is {EMAIL}, please reset my password."),
    }
}

/// Polls the audit schema until the tenant has a `gateway.message_processed` entry.
async fn audited_message(env: &TestEnv, tenant: uuid::Uuid) -> anyhow::Result<Vec<u8>> {
    let audit = env.db.pool("audit").await?;
    eventually(Duration::from_secs(30), || {
        let audit = audit.clone();
        async move {
            sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT envelope FROM entries
                 WHERE tenant_id = $1 AND event_type = 'gateway.message_processed'",
            )
            .bind(tenant)
            .fetch_optional(&audit)
            .await
            .ok()
            .flatten()
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn message_is_redacted_checked_stored_and_audited() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "skeleton").await?;

    // A consent-based purpose the subject never agreed to, and one on another basis.
    let mut consent = ConsentServiceClient::new(stack.channel("consent").await?);
    let admin_token = internal_token(&env, "consent", Some(tenant.id), &[Role::Admin])?;
    for (key, basis) in [
        ("support", LegalBasis::Contract),
        ("ai_training", LegalBasis::Consent),
    ] {
        consent
            .upsert_purpose(bearer(
                UpsertPurposeRequest {
                    purpose: Some(Purpose {
                        key: key.into(),
                        name: key.into(),
                        legal_basis: basis as i32,
                        ..Default::default()
                    }),
                },
                &admin_token,
            ))
            .await?;
    }

    let mut pipeline = PrivacyGatewayServiceClient::new(gateway);
    let response = pipeline
        .process_message(bearer(
            message("conv-1", &["support", "ai_training"]),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    assert_eq!(
        response.redacted_text,
        "Hello, my email is <EMAIL_ADDRESS_1>, please reset my password."
    );
    assert_eq!(response.entities.len(), 1);
    assert_eq!(response.effective_purposes, vec!["support".to_string()]);
    let decisions: Vec<(String, i32)> = response
        .consent
        .iter()
        .filter_map(|c| c.decision.as_ref())
        .map(|d| (d.purpose_key.clone(), d.decision))
        .collect();
    assert_eq!(
        decisions,
        vec![
            ("support".to_string(), ConsentDecision::Allowed as i32),
            ("ai_training".to_string(), ConsentDecision::Denied as i32),
        ]
    );

    // The transcript holds the redacted text only.
    let gateway_db = env.db.pool("gateway").await?;
    let stored: String = sqlx::query_scalar(
        "SELECT redacted_text FROM transcript_messages WHERE message_id = $1::uuid",
    )
    .bind(&response.message_id)
    .fetch_one(&gateway_db)
    .await?;
    assert_eq!(stored, response.redacted_text);

    // Audit appended the event, and the event carries no raw personal data.
    let envelope = audited_message(&env, tenant.id.as_uuid()).await?;
    let needle = EMAIL.as_bytes();
    assert!(!envelope.windows(needle.len()).any(|w| w == needle));
    assert!(!envelope.windows(13).any(|w| w == b"customer-4711"));
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_purpose_is_not_found_and_bad_input_names_the_field() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "badinput").await?;
    let mut pipeline = PrivacyGatewayServiceClient::new(gateway);

    let status = pipeline
        .process_message(bearer(message("conv-1", &["nope"]), &tenant.bot_key))
        .await
        .expect_err("unknown purpose");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");

    let status = pipeline
        .process_message(bearer(message("has space", &[]), &tenant.bot_key))
        .await
        .expect_err("bad conversation id");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("context.conversation_id"),
        "{status:?}"
    );

    let status = pipeline
        .process_message(bearer(message("conv-1", &[]), "veil_abcdefghijkm_wrong"))
        .await
        .expect_err("bad key");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let status = pipeline
        .process_message(bearer(message("conv-1", &[]), &tenant.admin_key))
        .await
        .expect_err("admin is not a bot");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_services_reject_calls_without_a_valid_internal_token() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let mut consent = ConsentServiceClient::new(stack.channel("consent").await?);
    let request = || UpsertPurposeRequest {
        purpose: Some(Purpose {
            key: "support".into(),
            name: "Support".into(),
            legal_basis: LegalBasis::Contract as i32,
            ..Default::default()
        }),
    };
    let tenant = Some(veil_core::types::TenantId::generate());

    let status = consent
        .upsert_purpose(request())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let for_vault = internal_token(&env, "vault", tenant, &[Role::Admin])?;
    let status = consent
        .upsert_purpose(bearer(request(), &for_vault))
        .await
        .expect_err("token for another audience");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let stranger = TestEnv::new().await?;
    let forged = internal_token(&stranger, "consent", tenant, &[Role::Admin])?;
    let status = consent
        .upsert_purpose(bearer(request(), &forged))
        .await
        .expect_err("token signed by an untrusted key");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // A public API key is not an internal token either.
    let status = consent
        .upsert_purpose(bearer(request(), "veil_abcdefghijkm_secret"))
        .await
        .expect_err("api key");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let valid = internal_token(&env, "consent", tenant, &[Role::Admin])?;
    consent.upsert_purpose(bearer(request(), &valid)).await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn events_written_while_nats_is_down_reach_audit_after_it_returns() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut nats = PrivateNats::start().await?;
    let mut settings = stack_settings(&env);
    for url in [
        &mut settings.gateway.nats.url,
        &mut settings.consent.nats.url,
        &mut settings.vault.nats.url,
        &mut settings.retention.nats.url,
        &mut settings.audit.nats.url,
    ] {
        *url = nats.url();
    }
    let stack = TestStack::start(settings).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "outage").await?;

    nats.stop()?;
    let mut pipeline = PrivacyGatewayServiceClient::new(gateway);
    let response = pipeline
        .process_message(bearer(message("conv-1", &[]), &tenant.bot_key))
        .await?
        .into_inner();
    assert!(!response.message_id.is_empty());

    // The event waits in the gateway's outbox while NATS is down.
    let gateway_db = env.db.pool("gateway").await?;
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND subject LIKE '%.gateway.message_processed'",
    )
    .fetch_one(&gateway_db)
    .await?;
    assert_eq!(pending, 1);

    nats.resume().await?;
    audited_message(&env, tenant.id.as_uuid()).await?;
    stack.stop().await
}
