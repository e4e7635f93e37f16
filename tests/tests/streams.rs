//! RedactStream and RestoreStream: no entity or placeholder slips through a chunk
//! boundary, even when chunks split characters.

use std::collections::BTreeMap;
use veil_e2e::{TestStack, bearer, create_tenant, stack_settings, vault_reveals};
use veil_proto::gateway::v1::privacy_gateway_service_client::PrivacyGatewayServiceClient;
use veil_proto::gateway::v1::{
    MessageContext, MessageRole, ProcessMessageRequest, RedactStreamCompleted, RedactStreamRequest,
    RedactStreamResponse, RedactStreamStart, RedactedChunk, RestoreStreamRequest,
    RestoreStreamStart, RestoreTextRequest, StreamFinish, redact_stream_request,
    redact_stream_response, restore_stream_request, restore_stream_response,
};

use veil_testkit::TestEnv;

const TEXT: &str = "Grüße! Schreib an anna.keller@example.org oder ruf +49 30 1234567 an, danke.";

type Client = PrivacyGatewayServiceClient<tonic::transport::Channel>;

fn start(context: MessageContext) -> RedactStreamRequest {
    RedactStreamRequest {
        kind: Some(redact_stream_request::Kind::Start(RedactStreamStart {
            context: Some(context),
        })),
    }
}

fn chunk(bytes: &[u8]) -> RedactStreamRequest {
    RedactStreamRequest {
        kind: Some(redact_stream_request::Kind::Chunk(bytes.to_vec())),
    }
}

fn finish() -> RedactStreamRequest {
    RedactStreamRequest {
        kind: Some(redact_stream_request::Kind::Finish(StreamFinish {})),
    }
}

/// The rest of a redact stream's answer: its chunks and the completion.
async fn rest(
    responses: &mut tonic::Streaming<RedactStreamResponse>,
) -> anyhow::Result<(Vec<RedactedChunk>, RedactStreamCompleted)> {
    let mut chunks = Vec::new();
    let mut completed = None;
    while let Some(response) = responses.message().await? {
        match response.kind {
            Some(redact_stream_response::Kind::Chunk(chunk)) => chunks.push(chunk),
            Some(redact_stream_response::Kind::Completed(done)) => completed = Some(done),
            None => {}
        }
    }
    Ok((chunks, completed.expect("completed message")))
}

/// Streams `text` for redaction in `chunk`-byte pieces into conversation `conv-s`;
/// returns the redacted chunks and the completion.
async fn redact(
    client: &mut Client,
    key: &str,
    text: &str,
    size: usize,
) -> anyhow::Result<(Vec<RedactedChunk>, RedactStreamCompleted)> {
    let mut requests = vec![start(MessageContext {
        conversation_id: "conv-s".into(),
        subject_id: "customer-s".into(),
        role: MessageRole::Assistant as i32,
        ..Default::default()
    })];
    requests.extend(text.as_bytes().chunks(size).map(chunk));
    requests.push(finish());
    let mut responses = client
        .redact_stream(bearer(futures::stream::iter(requests), key))
        .await?
        .into_inner();
    rest(&mut responses).await
}

/// Streams `reply` for restoring in `size`-byte pieces in conversation `conv-s`; returns
/// the restored text and the completion's count.
async fn restore_streamed(
    client: &mut Client,
    key: &str,
    reply: &str,
    size: usize,
) -> anyhow::Result<(String, i32)> {
    let mut requests = vec![RestoreStreamRequest {
        kind: Some(restore_stream_request::Kind::Start(RestoreStreamStart {
            conversation_id: "conv-s".into(),
            subject_id: "customer-s".into(),
        })),
    }];
    requests.extend(
        reply
            .as_bytes()
            .chunks(size)
            .map(|piece| RestoreStreamRequest {
                kind: Some(restore_stream_request::Kind::Chunk(piece.to_vec())),
            }),
    );
    let mut responses = client
        .restore_stream(bearer(futures::stream::iter(requests), key))
        .await?
        .into_inner();
    let mut restored = String::new();
    let mut count = 0;
    while let Some(response) = responses.message().await? {
        match response.kind {
            Some(restore_stream_response::Kind::Chunk(text)) => restored.push_str(&text),
            Some(restore_stream_response::Kind::Completed(done)) => count = done.restored_count,
            None => {}
        }
    }
    Ok((restored, count))
}

/// The redacted text of a stream.
async fn redacted(client: &mut Client, key: &str, text: &str) -> anyhow::Result<String> {
    let (chunks, _) = redact(client, key, text, 5).await?;
    Ok(chunks.into_iter().map(|c| c.text).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_redact_and_restore_across_chunk_boundaries() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "streams").await?;
    let mut client = PrivacyGatewayServiceClient::new(gateway);

    // Three-byte chunks split "ü", "ß" and both entities.
    let (chunks, completed) = redact(&mut client, &tenant.bot_key, TEXT, 3).await?;
    let mut output = String::new();
    let mut entities = 0;
    for chunk in chunks {
        for leak in ["anna", "example", "1234567"] {
            assert!(
                !chunk.text.contains(leak),
                "chunk leaked {leak}: {:?}",
                chunk.text
            );
        }
        entities += chunk.entities.len();
        output.push_str(&chunk.text);
    }
    assert_eq!(
        output,
        "Grüße! Schreib an <EMAIL_ADDRESS_1> oder ruf <PHONE_NUMBER_1> an, danke."
    );
    assert_eq!(completed.entity_count, 2);
    assert_eq!(entities, 2);
    assert!(completed.stored);

    // Restore the placeholders from a reply streamed in two-byte chunks.
    let reply = "Ich schreibe <EMAIL_ADDRESS_1> und rufe < phone_number_1 > an.";
    let (restored, count) = restore_streamed(&mut client, &tenant.bot_key, reply, 2).await?;
    assert_eq!(
        restored,
        "Ich schreibe anna.keller@example.org und rufe +49 30 1234567 an."
    );
    assert_eq!(count, 2);

    // A stream that does not start with `start` is refused with the field named.
    let bad = vec![chunk(b"hello")];
    let mut responses = client
        .redact_stream(bearer(futures::stream::iter(bad), &tenant.bot_key))
        .await?
        .into_inner();
    let status = responses.message().await.expect_err("start required");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("start"), "{status:?}");
    stack.stop().await
}

/// A stream into a conversation numbers its new values after the conversation's
/// placeholders, whoever brought them, and keeps known values' placeholders.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_numbers_new_values_after_the_conversations_placeholders() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "stream-numbers").await?;
    let mut client = PrivacyGatewayServiceClient::new(gateway);
    let key = &tenant.bot_key;
    assert_eq!(
        redacted(&mut client, key, "Mail anna@example.org").await?,
        "Mail <EMAIL_ADDRESS_1>"
    );
    assert_eq!(
        redacted(&mut client, key, "Mail ben@example.org or anna@example.org").await?,
        "Mail <EMAIL_ADDRESS_2> or <EMAIL_ADDRESS_1>"
    );
    let placeholders: Vec<(String, i64)> = sqlx::query_as(
        "SELECT placeholder, count(*) FROM conversation_pseudonyms
         GROUP BY placeholder ORDER BY placeholder",
    )
    .fetch_all(&env.db.pool("gateway").await?)
    .await?;
    assert_eq!(
        placeholders,
        [
            ("<EMAIL_ADDRESS_1>".to_string(), 1),
            ("<EMAIL_ADDRESS_2>".to_string(), 1)
        ]
    );
    // The stream found anna's placeholder by her token: the vault revealed nothing.
    assert_eq!(vault_reveals(&env).await?, []);
    stack.stop().await
}

/// A turn that introduces the stream's next placeholder after the stream read the
/// conversation but before it claimed the placeholder: the claim waits for that turn,
/// loses, and the chunk is redacted again under the next free number before it goes out.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_that_loses_its_placeholder_redacts_the_chunk_again() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "stream-claim").await?;
    let mut client = PrivacyGatewayServiceClient::new(gateway);
    let pool = env.db.pool("gateway").await?;

    // A writer holds the introduction of <EMAIL_ADDRESS_1> uncommitted: the stream's read
    // does not see it, its claim of the same placeholder waits for it.
    let mut holder = pool.begin().await?;
    sqlx::query(
        "INSERT INTO conversation_pseudonyms
             (tenant_id, conversation_id, token, placeholder, entity_type, number,
              subject_ref, introduces)
         VALUES ($1, 'conv-s', 'tok_held', '<EMAIL_ADDRESS_1>', 'EMAIL_ADDRESS', 1,
                 'someone', true)",
    )
    .bind(tenant.id.as_uuid())
    .execute(&mut *holder)
    .await?;
    let key = tenant.bot_key.clone();
    let stream =
        tokio::spawn(
            async move { redact(&mut client, &key, "Mail bob@example.org today.", 4).await },
        );
    veil_testkit::db::until_a_session_waits_for(&pool, "transactionid").await?;
    holder.commit().await?;

    let (chunks, completed) = stream.await??;
    let output: String = chunks.into_iter().map(|c| c.text).collect();
    assert_eq!(output, "Mail <EMAIL_ADDRESS_2> today.");
    assert!(completed.stored);
    let claimed: Vec<String> = sqlx::query_scalar(
        "SELECT placeholder FROM conversation_pseudonyms WHERE subject_ref <> 'someone'",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(claimed, ["<EMAIL_ADDRESS_2>"]);
    stack.stop().await
}

/// A turn written while a stream runs introduces the placeholder the stream would give
/// its next new value had it read the conversation when it began. The stream numbers
/// its value after it: the stream completes, and each placeholder restores to its own
/// value.
#[tokio::test(flavor = "multi_thread")]
async fn a_turn_written_during_a_stream_keeps_its_placeholder() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "stream-race").await?;
    let mut client = PrivacyGatewayServiceClient::new(gateway);
    let key = &tenant.bot_key;
    let context = MessageContext {
        conversation_id: "conv-race".into(),
        subject_id: "customer-r".into(),
        role: MessageRole::Assistant as i32,
        ..Default::default()
    };
    let filler = "Nothing personal in this part of the answer at all. ".repeat(3);

    let (requests, queue) = tokio::sync::mpsc::channel(8);
    let input = futures::stream::unfold(queue, |mut queue| async move {
        queue.recv().await.map(|request| (request, queue))
    });
    requests.send(start(context.clone())).await?;
    let opening = format!("Hello there. {filler}");
    requests.send(chunk(opening.as_bytes())).await?;
    let mut responses = client.redact_stream(bearer(input, key)).await?.into_inner();
    // A released chunk: the stream has read the conversation's map.
    let mut output = String::new();
    match responses.message().await?.and_then(|r| r.kind) {
        Some(redact_stream_response::Kind::Chunk(chunk)) => output.push_str(&chunk.text),
        other => anyhow::bail!("expected a chunk, got {other:?}"),
    }

    let turn = client
        .process_message(bearer(
            ProcessMessageRequest {
                context: Some(MessageContext {
                    role: MessageRole::User as i32,
                    ..context.clone()
                }),
                text: "Write to carl@example.org please.".into(),
            },
            key,
        ))
        .await?
        .into_inner();
    assert_eq!(turn.redacted_text, "Write to <EMAIL_ADDRESS_1> please.");

    let new_value = format!("Mail bob@example.org today. {filler}");
    requests.send(chunk(new_value.as_bytes())).await?;
    requests.send(finish()).await?;
    drop(requests);
    let (chunks, completed) = rest(&mut responses).await?;
    output.extend(chunks.into_iter().map(|c| c.text));
    assert!(completed.stored);
    assert!(
        output.contains("Mail <EMAIL_ADDRESS_2> today.") && !output.contains("EMAIL_ADDRESS_1"),
        "{output}"
    );

    let restored = client
        .restore_text(bearer(
            RestoreTextRequest {
                conversation_id: "conv-race".into(),
                subject_id: "customer-r".into(),
                text: "<EMAIL_ADDRESS_1> / <EMAIL_ADDRESS_2>".into(),
            },
            key,
        ))
        .await?
        .into_inner();
    assert_eq!(restored.text, "carl@example.org / bob@example.org");
    stack.stop().await
}

/// A restored stream reveals the originals of the placeholders it names, when it names
/// them, and nothing for a reply without placeholders.
#[tokio::test(flavor = "multi_thread")]
async fn a_restore_stream_reveals_only_what_the_reply_names() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let stack = TestStack::start(stack_settings(&env)).await?;
    let gateway = stack.channel("gateway").await?;
    let tenant = create_tenant(gateway.clone(), "stream-reveal").await?;
    let mut client = PrivacyGatewayServiceClient::new(gateway);
    let key = &tenant.bot_key;
    redact(&mut client, key, TEXT, 7).await?;

    for (reply, expected) in [
        (
            "Ich schreibe an [email_address_1], danke.",
            "Ich schreibe an anna.keller@example.org, danke.",
        ),
        ("Sonst noch etwas?", "Sonst noch etwas?"),
    ] {
        let (restored, _) = restore_streamed(&mut client, key, reply, 3).await?;
        assert_eq!(restored, expected);
    }
    assert_eq!(
        vault_reveals(&env).await?,
        [BTreeMap::from([("EMAIL_ADDRESS".to_string(), 1)])]
    );
    stack.stop().await
}
