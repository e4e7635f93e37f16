//! Notices due through the pipeline: the privacy notice until the subject was served its
//! current version, the AI disclosure at the start of each conversation; and the redacted
//! transcript for support agents.

use veil_e2e::{TestStack, bearer, create_tenant, stack_settings};
use veil_proto::common::v1::{CollectionMethod, NoticeKind, Role as ProtoRole};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{PublishNoticeRequest, RecordNoticeServedRequest};
use veil_proto::gateway::v1::admin_service_client::AdminServiceClient;
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    CreateApiKeyRequest, GetTranscriptRequest, MessageContext, MessageRole, ProcessMessageRequest,
};
use veil_testkit::TestEnv;

fn message(conversation: &str, text: &str) -> ProcessMessageRequest {
    ProcessMessageRequest {
        context: Some(MessageContext {
            conversation_id: conversation.into(),
            subject_id: "customer-n".into(),
            role: MessageRole::User as i32,
            locale: "de-AT".into(),
            ..Default::default()
        }),
        text: text.into(),
    }
}

async fn key(
    gateway: tonic::transport::Channel,
    admin: &str,
    role: ProtoRole,
) -> anyhow::Result<String> {
    Ok(AdminServiceClient::new(gateway)
        .create_api_key(bearer(
            CreateApiKeyRequest {
                name: format!("{role:?}"),
                roles: vec![role as i32],
                ..Default::default()
            },
            admin,
        ))
        .await?
        .into_inner()
        .created
        .unwrap_or_default()
        .secret)
}

#[tokio::test(flavor = "multi_thread")]
async fn notices_are_due_until_served_and_agents_read_redacted_turns() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "notices").await?;
    let officer = key(
        gateway.clone(),
        &tenant.admin_key,
        ProtoRole::PrivacyOfficer,
    )
    .await?;
    let agent = key(gateway.clone(), &tenant.admin_key, ProtoRole::Agent).await?;
    let mut consent = ConsentServiceClient::new(gateway.clone());
    let mut ids = Vec::new();
    for (kind, title) in [
        (NoticeKind::PrivacyNotice, "Datenschutzhinweis"),
        (NoticeKind::AiDisclosure, "Sie sprechen mit einer KI"),
    ] {
        let notice = consent
            .publish_notice(bearer(
                PublishNoticeRequest {
                    kind: kind as i32,
                    locale: "de".into(),
                    title: title.into(),
                    body: "…".into(),
                    ..Default::default()
                },
                &officer,
            ))
            .await?
            .into_inner()
            .notice
            .expect("notice");
        ids.push(notice.notice_id);
    }

    let mut pipeline = PrivacyGatewayServiceClient::new(gateway.clone());
    let first = pipeline
        .process_message(bearer(
            message("conv-n", "Hallo, ich bin neu hier."),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    let kinds: Vec<i32> = first.notices_due.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        vec![
            NoticeKind::PrivacyNotice as i32,
            NoticeKind::AiDisclosure as i32
        ]
    );
    assert_eq!(first.notices_due[0].locale, "de");

    // The bot shows the privacy notice and says so; the next turn has nothing due.
    consent
        .record_notice_served(bearer(
            RecordNoticeServedRequest {
                subject_id: "customer-n".into(),
                notice_id: ids[0].clone(),
                conversation_id: "conv-n".into(),
                channel: CollectionMethod::Chat as i32,
                served_at: None,
            },
            &tenant.bot_key,
        ))
        .await?;
    let second = pipeline
        .process_message(bearer(
            message("conv-n", "Meine Mail ist max@example.de"),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    assert!(second.notices_due.is_empty(), "{:?}", second.notices_due);

    // A new conversation discloses the AI again, but not the notice already served.
    let other = pipeline
        .process_message(bearer(
            message("conv-n2", "Noch eine Frage"),
            &tenant.bot_key,
        ))
        .await?
        .into_inner();
    let kinds: Vec<i32> = other.notices_due.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NoticeKind::AiDisclosure as i32]);

    // An agent reads the redacted transcript, paged; a bot key of another tenant cannot.
    let mut agent_client = PrivacyGatewayServiceClient::new(gateway.clone());
    let page = agent_client
        .get_transcript(bearer(
            GetTranscriptRequest {
                conversation_id: "conv-n".into(),
                page: Some(veil_proto::common::v1::PageRequest {
                    page_size: 1,
                    page_token: String::new(),
                }),
                include_entities: false,
            },
            &agent,
        ))
        .await?
        .into_inner();
    assert_eq!(page.turns.len(), 1);
    let token = page.page.expect("page").next_page_token;
    let rest = agent_client
        .get_transcript(bearer(
            GetTranscriptRequest {
                conversation_id: "conv-n".into(),
                page: Some(veil_proto::common::v1::PageRequest {
                    page_size: 10,
                    page_token: token,
                }),
                include_entities: false,
            },
            &agent,
        ))
        .await?
        .into_inner();
    assert_eq!(rest.turns.len(), 1);
    assert_eq!(
        rest.turns[0].redacted_text,
        "Meine Mail ist <EMAIL_ADDRESS_1>"
    );
    let stranger = create_tenant(gateway.clone(), "notices-other").await?;
    let status = agent_client
        .get_transcript(bearer(
            GetTranscriptRequest {
                conversation_id: "conv-n".into(),
                ..Default::default()
            },
            &stranger.bot_key,
        ))
        .await
        .expect_err("other tenant");
    assert_eq!(status.code(), tonic::Code::NotFound);
    stack.stop().await
}
