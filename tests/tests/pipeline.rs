//! The message pipeline with the real engine and vault: placeholders stable across a
//! conversation, originals only in the vault, replies restored for the same subject.

use std::collections::BTreeMap;

use veil_e2e::{TestStack, bearer, create_tenant, stack_settings, vault_reveals};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    MessageContext, MessageRole, ProcessMessageRequest, RestoreTextRequest,
};
use veil_testkit::TestEnv;

fn message(conversation: &str, subject: &str, text: &str) -> ProcessMessageRequest {
    ProcessMessageRequest {
        context: Some(MessageContext {
            conversation_id: conversation.into(),
            subject_id: subject.into(),
            role: MessageRole::User as i32,
            ..Default::default()
        }),
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn placeholders_are_stable_per_conversation_and_restore_for_the_subject() -> anyhow::Result<()>
{
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "pipeline").await?;
    let mut pipeline = PrivacyGatewayServiceClient::new(gateway);
    let key = tenant.bot_key.clone();

    let first = pipeline
        .process_message(bearer(
            message(
                "conv-1",
                "customer-1",
                "My email is anna.keller@example.org and my IBAN is DE89 3704 0044 0532 0130 00.",
            ),
            &key,
        ))
        .await?
        .into_inner();
    assert_eq!(
        first.redacted_text,
        "My email is <EMAIL_ADDRESS_1> and my IBAN is <IBAN_CODE_1>."
    );
    let email = &first.entities[0];
    let span = email.span.expect("input span");
    assert_eq!((span.char_start, span.char_end), (12, 35));
    let out = email.output_span.expect("output span");
    assert_eq!(
        &first.redacted_text[out.byte_start as usize..out.byte_end as usize],
        "<EMAIL_ADDRESS_1>"
    );

    // The same address later keeps its placeholder; a new one gets the next number.
    let second = pipeline
        .process_message(bearer(
            message(
                "conv-1",
                "customer-1",
                "Please write to anna.keller@example.org, not ben@example.com.",
            ),
            &key,
        ))
        .await?
        .into_inner();
    assert_eq!(
        second.redacted_text,
        "Please write to <EMAIL_ADDRESS_1>, not <EMAIL_ADDRESS_2>."
    );
    assert_eq!(second.turn_index, 1);

    // Another conversation starts its own numbering.
    let other = pipeline
        .process_message(bearer(
            message("conv-2", "customer-1", "Mail ben@example.com"),
            &key,
        ))
        .await?
        .into_inner();
    assert_eq!(other.redacted_text, "Mail <EMAIL_ADDRESS_1>");

    // An LLM reply is restored for the same subject, tolerating how LLMs mangle tags.
    let restored = pipeline
        .restore_text(bearer(
            RestoreTextRequest {
                conversation_id: "conv-1".into(),
                subject_id: "customer-1".into(),
                text: "I wrote to < email_address_1 > and <EMAIL_ADDRESS_2>; <PHONE_NUMBER_9>?"
                    .into(),
            },
            &key,
        ))
        .await?
        .into_inner();
    assert_eq!(
        restored.text,
        "I wrote to anna.keller@example.org and ben@example.com; <PHONE_NUMBER_9>?"
    );
    assert_eq!(restored.restored_count, 2);
    assert_eq!(
        restored.unknown_placeholders,
        vec!["<PHONE_NUMBER_9>".to_string()]
    );

    // Another subject in the same conversation gets nothing back.
    let stranger = pipeline
        .restore_text(bearer(
            RestoreTextRequest {
                conversation_id: "conv-1".into(),
                subject_id: "customer-2".into(),
                text: "<EMAIL_ADDRESS_1>".into(),
            },
            &key,
        ))
        .await?
        .into_inner();
    assert_eq!(stranger.text, "<EMAIL_ADDRESS_1>");

    // No raw value is stored anywhere in the gateway's schema.
    let gateway_db = env.db.pool("gateway").await?;
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM (
             SELECT * FROM transcript_messages) t
         UNION ALL SELECT row_to_json(p)::text FROM (SELECT * FROM conversation_pseudonyms) p
         UNION ALL SELECT row_to_json(o)::text FROM (SELECT event_id, subject, encode(payload, 'escape') AS payload FROM outbox) o",
    )
    .fetch_all(&gateway_db)
    .await?;
    for canary in [
        "anna.keller@example.org",
        "ben@example.com",
        "DE89",
        "customer-1",
    ] {
        assert!(
            !dump.iter().any(|row| row.contains(canary)),
            "{canary} found in the gateway schema"
        );
    }
    stack.stop().await
}

/// Data minimization: a restore reveals only the values its text names, in whatever
/// form the LLM wrote their placeholders.
#[tokio::test(flavor = "multi_thread")]
async fn a_restore_reveals_only_the_values_its_text_names() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "minimal-restore").await?;
    let mut pipeline = PrivacyGatewayServiceClient::new(gateway);
    let key = tenant.bot_key.clone();
    let text = "Anna here: anna@example.org, IBAN DE89 3704 0044 0532 0130 00, +49 30 1234567.";
    let turn = pipeline
        .process_message(bearer(message("conv-m", "customer-m", text), &key))
        .await?
        .into_inner();
    assert_eq!(turn.entities.len(), 4, "{turn:?}");

    let restore = |text: &str| {
        bearer(
            RestoreTextRequest {
                conversation_id: "conv-m".into(),
                subject_id: "customer-m".into(),
                text: text.into(),
            },
            &key,
        )
    };
    let restored = pipeline
        .restore_text(restore(
            "We write to < email_address_1 > and pay to [IBAN_CODE_1].",
        ))
        .await?
        .into_inner();
    assert_eq!(
        restored.text,
        "We write to anna@example.org and pay to DE89 3704 0044 0532 0130 00."
    );
    let restored = pipeline
        .restore_text(restore("Anything else I can do?"))
        .await?
        .into_inner();
    assert_eq!(restored.text, "Anything else I can do?");
    assert_eq!(
        vault_reveals(&env).await?,
        [BTreeMap::from([
            ("EMAIL_ADDRESS".to_string(), 1),
            ("IBAN_CODE".to_string(), 1)
        ])]
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_turns_of_one_conversation_all_land_in_order() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "concurrent").await?;
    let mut calls = Vec::new();
    for i in 0..8 {
        let mut client = PrivacyGatewayServiceClient::new(gateway.clone());
        let key = tenant.bot_key.clone();
        calls.push(tokio::spawn(async move {
            client
                .process_message(bearer(
                    message("conv-c", "customer-c", &format!("message {i}")),
                    &key,
                ))
                .await
                .map(|r| r.into_inner().turn_index)
        }));
    }
    let mut indexes = Vec::new();
    for call in calls {
        indexes.push(call.await??);
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..8).collect::<Vec<i64>>());
    stack.stop().await
}

/// Concurrent messages share vault calls; a value the vault refuses must fail only the
/// message that carries it, with an error about its own item, never its neighbours.
#[tokio::test(flavor = "multi_thread")]
async fn a_value_the_vault_refuses_fails_only_its_own_message() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut settings = stack_settings(&env);
    settings.vault.service.max_token_value_bytes = 40;
    let stack = TestStack::start(settings).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "merged").await?;
    let long = format!("{}@example.org", "x".repeat(48));
    // Late in the burst, so that its Tokenize queues behind busy slots and is merged.
    const BAD: usize = 40;
    let mut calls = Vec::new();
    for i in 0..48 {
        let mut client = PrivacyGatewayServiceClient::new(gateway.clone());
        let key = tenant.bot_key.clone();
        let address = if i == BAD {
            long.clone()
        } else {
            format!("user{i}@example.org")
        };
        calls.push(tokio::spawn(async move {
            let text = format!("My email is {address}, thanks.");
            let request = message(&format!("conv-m{i}"), &format!("customer-m{i}"), &text);
            client.process_message(bearer(request, &key)).await
        }));
    }
    for (i, call) in calls.into_iter().enumerate() {
        let answer = call.await?;
        if i == BAD {
            let status = answer.expect_err("the vault refuses a 60-byte value");
            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
            assert!(status.message().contains("items[0].value"), "{status:?}");
            assert!(
                !status.message().contains(&long),
                "value echoed: {status:?}"
            );
        } else {
            let reply = answer?.into_inner();
            assert_eq!(
                reply.redacted_text,
                "My email is <EMAIL_ADDRESS_1>, thanks."
            );
        }
    }
    stack.stop().await
}
