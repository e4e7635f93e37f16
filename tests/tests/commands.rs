//! In-chat privacy commands through the whole stack: a withdrawal typed in the chat holds
//! for the very next message; a data-subject request is reported for confirmation, or,
//! when the tenant lets Veil act, submitted to retention with the one-time code the bot
//! needs to verify the subject (or without one when the chat session vouches for them).

use veil_e2e::{TestStack, bearer, create_tenant, stack_settings};
use veil_proto::common::v1::RequestState;
use veil_proto::common::v1::{
    CollectionMethod, ConsentDecision, Jurisdiction, LegalBasis, PrivacyCommandType,
    Role as ProtoRole,
};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{ConsentChoice, Purpose, RecordConsentRequest, UpsertPurposeRequest};
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    CreateApiKeyRequest, GetPrivacyPolicyRequest, MessageContext, MessageRole, PrivacyCommand,
    PrivacyCommandAction, ProcessMessageRequest, RedactStreamCompleted, RedactStreamRequest,
    RedactStreamStart, SetPrivacyPolicyRequest, StreamFinish, redact_stream_request,
    redact_stream_response,
};
use veil_proto::retention::v1::retention_service_client::RetentionServiceClient;
use veil_proto::retention::v1::{GetRequestRequest, VerifyRequestRequest};
use veil_testkit::TestEnv;

fn message(text: &str, purposes: &[&str]) -> ProcessMessageRequest {
    message_of("customer-1", text, purposes)
}

fn message_of(subject: &str, text: &str, purposes: &[&str]) -> ProcessMessageRequest {
    ProcessMessageRequest {
        context: Some(MessageContext {
            conversation_id: format!("conv-{subject}"),
            subject_id: subject.into(),
            role: MessageRole::User as i32,
            purposes: purposes.iter().map(|p| p.to_string()).collect(),
            jurisdiction: Jurisdiction::UsCaCcpa as i32,
            locale: "en".into(),
            ..Default::default()
        }),
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn withdrawal_in_chat_applies_to_the_next_message() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "commands").await?;
    let officer = AdminServiceClient::new(gateway.clone())
        .create_api_key(bearer(
            CreateApiKeyRequest {
                name: "officer".into(),
                roles: vec![ProtoRole::PrivacyOfficer as i32],
                ..Default::default()
            },
            &tenant.admin_key,
        ))
        .await?
        .into_inner()
        .created
        .unwrap_or_default()
        .secret;
    let mut consent = ConsentServiceClient::new(gateway.clone());
    consent
        .upsert_purpose(bearer(
            UpsertPurposeRequest {
                purpose: Some(Purpose {
                    key: "marketing".into(),
                    name: "Marketing".into(),
                    legal_basis: LegalBasis::Consent as i32,
                    consent_required: true,
                    ..Default::default()
                }),
            },
            &officer,
        ))
        .await?;
    consent
        .record_consent(bearer(
            RecordConsentRequest {
                subject_id: "customer-1".into(),
                purpose_keys: vec!["marketing".into()],
                choice: ConsentChoice::Grant as i32,
                collection_method: CollectionMethod::Chat as i32,
                jurisdiction: Jurisdiction::UsCaCcpa as i32,
                language: "en".into(),
                ..Default::default()
            },
            &tenant.bot_key,
        ))
        .await?;

    let mut pipeline = PrivacyGatewayServiceClient::new(gateway);
    let allowed = pipeline
        .process_message(bearer(message("Hello!", &["marketing"]), &tenant.bot_key))
        .await?
        .into_inner();
    assert_eq!(allowed.effective_purposes, vec!["marketing".to_string()]);

    let withdrawal = pipeline
        .process_message(bearer(
            message("Please stop using my data for marketing.", &[]),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    let command = withdrawal.privacy_command.expect("a command");
    assert_eq!(
        command.command_type,
        PrivacyCommandType::WithdrawConsent as i32
    );
    assert_eq!(
        command.action,
        PrivacyCommandAction::ConsentWithdrawn as i32
    );
    assert_eq!(command.withdrawn_purposes, vec!["marketing".to_string()]);
    assert!(!command.receipt_id.is_empty());
    assert!(!command.suggested_reply.is_empty());

    let denied = pipeline
        .process_message(bearer(
            message("Any news?", &["marketing"]),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    assert!(denied.effective_purposes.is_empty());
    let decision = denied.consent[0].decision.as_ref().expect("decision");
    assert_eq!(decision.decision, ConsentDecision::Denied as i32);

    // A request to erase is reported for the bot to confirm (the default policy does not
    // act on data-subject requests by itself).
    let erase = pipeline
        .process_message(bearer(
            message("Bitte löschen Sie alle meine Daten.", &[]),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    let command = erase.privacy_command.expect("a command");
    assert_eq!(command.command_type, PrivacyCommandType::Erase as i32);
    assert_eq!(command.language, "de");
    assert_eq!(
        command.action,
        PrivacyCommandAction::ConfirmationNeeded as i32
    );

    // Ordinary support talk is not a command.
    let plain = pipeline
        .process_message(bearer(
            message("How do I delete a message in the app?", &[]),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    assert!(
        plain.privacy_command.is_none(),
        "{:?}",
        plain.privacy_command
    );
    stack.stop().await
}

/// Sets the tenant's `auto_act_on_privacy_commands` and `chat_identity_verified`.
async fn act_on_requests(
    gateway: tonic::transport::Channel,
    admin_key: &str,
    identity_verified: bool,
) -> anyhow::Result<()> {
    let mut admin = AdminServiceClient::new(gateway);
    let mut policy = admin
        .get_privacy_policy(bearer(GetPrivacyPolicyRequest::default(), admin_key))
        .await?
        .into_inner()
        .policy
        .unwrap_or_default();
    policy.auto_act_on_privacy_commands = true;
    policy.chat_identity_verified = identity_verified;
    admin
        .set_privacy_policy(bearer(
            SetPrivacyPolicyRequest {
                policy: Some(policy),
                ..Default::default()
            },
            admin_key,
        ))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_typed_in_the_chat_is_submitted_with_the_code_that_verifies_it()
-> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "chat-requests").await?;
    let pipeline = PrivacyGatewayServiceClient::new(gateway.clone());
    let mut retention = RetentionServiceClient::new(gateway.clone());
    let reader = retention.clone();
    // An access request typed by `subject`; the command submitted for it.
    let access_request = |subject: &'static str| {
        let mut pipeline = pipeline.clone();
        let bot = tenant.bot_key.clone();
        async move {
            let text = "What data do you have about me?";
            let answer = pipeline
                .process_message(bearer(message_of(subject, text, &[]), &bot))
                .await?
                .into_inner();
            let command = answer.privacy_command.expect("a command");
            assert_eq!(command.command_type, PrivacyCommandType::Access as i32);
            assert_eq!(
                command.action,
                PrivacyCommandAction::RequestSubmitted as i32
            );
            anyhow::Ok(command)
        }
    };
    let state_of = |request_id: String| {
        let mut retention = reader.clone();
        let bot = tenant.bot_key.clone();
        async move {
            let request = retention
                .get_request(bearer(GetRequestRequest { request_id }, &bot))
                .await?
                .into_inner()
                .request
                .unwrap_or_default();
            anyhow::Ok(request.state)
        }
    };

    // The chat does not prove who is typing: the request waits for the one-time code,
    // which only the answer carries.
    act_on_requests(gateway.clone(), &tenant.admin_key, false).await?;
    let command = access_request("customer-2").await?;
    assert!(!command.request_id.is_empty());
    assert_eq!(command.verification_code.len(), 8, "an 8-digit code");
    assert!(
        command
            .verification_code
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    assert!(command.verification_expires_at.is_some());
    assert!(command.suggested_reply.contains("one-time code"));
    assert_eq!(
        state_of(command.request_id.clone()).await?,
        RequestState::Received as i32
    );
    let verified = retention
        .verify_request(bearer(
            VerifyRequestRequest {
                request_id: command.request_id.clone(),
                code: command.verification_code.clone(),
            },
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    assert!(
        verified.verified,
        "the code from the answer verifies the request"
    );

    // The signed-in chat vouches for the subject: no code, the request is verified.
    act_on_requests(gateway.clone(), &tenant.admin_key, true).await?;
    let command = access_request("customer-3").await?;
    assert!(command.verification_code.is_empty());
    assert!(command.verification_expires_at.is_none());
    assert!(!command.suggested_reply.contains("one-time code"));
    assert_ne!(
        state_of(command.request_id).await?,
        RequestState::Received as i32,
        "verified at once"
    );
    stack.stop().await
}

/// A keyed message asking for erasure whose replica died after its turn, before its
/// answer was kept with the erasure's request: once the claim has timed out, the retry
/// submits the erasure (retention finds the request the first call opened) and keeps
/// the answer that says so. No second turn, no second request. A stream likewise.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_finishes_the_erasure_its_first_call_left_undone() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "chat-retries").await?;
    // Unverified: the request waits for its code, so nothing is erased meanwhile.
    act_on_requests(gateway.clone(), &tenant.admin_key, false).await?;
    let mut pipeline = PrivacyGatewayServiceClient::new(gateway.clone());
    let mut pipeline_for_streams = pipeline.clone();
    let mut erase = message_of("customer-4", "Please delete my data.", &[]);
    if let Some(context) = erase.context.as_mut() {
        context.idempotency_key = "msg-1".into();
    }
    let mut send = async |request: ProcessMessageRequest| {
        anyhow::Ok(
            pipeline
                .process_message(bearer(request, &tenant.bot_key))
                .await?
                .into_inner(),
        )
    };
    let first = send(erase.clone()).await?;
    let command = first.privacy_command.clone().expect("a command");
    assert_eq!(command.command_type, PrivacyCommandType::Erase as i32);
    assert_eq!(
        command.action,
        PrivacyCommandAction::RequestSubmitted as i32
    );

    // As if the replica had died between the turn and the erasure.
    let gateway_db = env.db.pool("gateway").await?;
    died_after_the_turn(&gateway_db, "msg-1").await?;
    let retried = send(erase.clone()).await?;
    assert_submitted_again(retried.privacy_command.clone(), &command);
    assert_eq!(
        (&retried.message_id, retried.turn_index),
        (&first.message_id, first.turn_index)
    );
    // Kept: a later retry gets this answer as it is.
    assert_eq!(send(erase).await?, retried);
    let turns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transcript_messages WHERE conversation_id = 'conv-customer-4'",
    )
    .fetch_one(&gateway_db)
    .await?;
    assert_eq!(turns, 1);

    // A stream asking for erasure, its retry the same way.
    let mut context = erase_context("customer-5");
    context.idempotency_key = "stream-1".into();
    let first = redact_stream(&mut pipeline_for_streams, &tenant.bot_key, &context).await?;
    let command = first.privacy_command.clone().expect("a command");
    assert_eq!(
        command.action,
        PrivacyCommandAction::RequestSubmitted as i32
    );
    died_after_the_turn(&gateway_db, "stream-1").await?;
    let retried = redact_stream(&mut pipeline_for_streams, &tenant.bot_key, &context).await?;
    assert_submitted_again(retried.privacy_command.clone(), &command);
    assert_eq!(retried.message_id, first.message_id);
    stack.stop().await
}

/// A retry's command names the request the first call opened.
fn assert_submitted_again(finished: Option<PrivacyCommand>, first: &PrivacyCommand) {
    let finished = finished.expect("a command");
    assert_eq!(
        finished.action,
        PrivacyCommandAction::RequestSubmitted as i32
    );
    assert_eq!(
        finished.request_id, first.request_id,
        "the first call's request"
    );
}

/// Leaves the key's row as a replica dying between a turn and its erasure would: only
/// the turn's answer kept, the claim timed out.
async fn died_after_the_turn(gateway_db: &sqlx::PgPool, key: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE message_replays SET answer = NULL, answered_at = NULL,
                claimed_at = now() - interval '61 seconds'
         WHERE idempotency_key = $1",
    )
    .bind(key)
    .execute(gateway_db)
    .await?;
    Ok(())
}

fn erase_context(subject: &str) -> MessageContext {
    message_of(subject, "", &[]).context.unwrap_or_default()
}

/// Sends "Please delete my data." as one keyed RedactStream; returns its completion.
async fn redact_stream(
    pipeline: &mut PrivacyGatewayServiceClient<tonic::transport::Channel>,
    bot_key: &str,
    context: &MessageContext,
) -> anyhow::Result<RedactStreamCompleted> {
    let kinds = [
        redact_stream_request::Kind::Start(RedactStreamStart {
            context: Some(context.clone()),
        }),
        redact_stream_request::Kind::Chunk(b"Please delete ".to_vec()),
        redact_stream_request::Kind::Chunk(b"my data.".to_vec()),
        redact_stream_request::Kind::Finish(StreamFinish {}),
    ];
    let requests = kinds.map(|kind| RedactStreamRequest { kind: Some(kind) });
    let mut responses = pipeline
        .redact_stream(bearer(futures::stream::iter(requests), bot_key))
        .await?
        .into_inner();
    let mut completed = None;
    while let Some(response) = responses.message().await? {
        if let Some(redact_stream_response::Kind::Completed(done)) = response.kind {
            completed = Some(done);
        }
    }
    completed.ok_or_else(|| anyhow::anyhow!("the stream did not complete"))
}
