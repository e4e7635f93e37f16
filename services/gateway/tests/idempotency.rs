//! Idempotent messages: a retry with the same `idempotency_key` gets the first answer
//! and stores nothing new; the key cannot be reused for another message; a claim whose
//! call is still running holds retries off, a failed one is given up, an expired one is
//! taken over; the answer is kept by the turn's own statement, so a replica that dies
//! after the turn leaves no second turn to its retry; the stored answers are sealed and
//! go with the subject's erasure. A `RedactStream` with a key replays the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod retention_support;

use retention_support::{Stack, by_id, long_email_replacements};
use tonic::Code;
use veil_proto::common::v1::PrivacyCommandType;
use veil_proto::gateway::v1::{
    EraseSubjectRequest, MessageContext, MessageRole, ProcessMessageRequest,
    ProcessMessageResponse, RedactStreamRequest, RedactStreamResponse, RedactStreamStart,
    StreamFinish, redact_stream_request, redact_stream_response,
};

const TEXT: &str = "Hi, I'm Anna Schmidt, write to anna.schmidt@example.com please.";

fn keyed(conversation: &str, key: &str, text: &str) -> ProcessMessageRequest {
    ProcessMessageRequest {
        context: Some(MessageContext {
            conversation_id: conversation.into(),
            subject_id: "anna".into(),
            role: MessageRole::User as i32,
            idempotency_key: key.into(),
            ..Default::default()
        }),
        text: text.into(),
    }
}

async fn send(
    stack: &Stack,
    request: ProcessMessageRequest,
) -> Result<ProcessMessageResponse, tonic::Status> {
    Ok(stack
        .pipeline()
        .process_message(request)
        .await?
        .into_inner())
}

/// Streams `text` in `size`-byte chunks under `context`; every response, or the error
/// that ended the stream.
async fn stream(
    stack: &Stack,
    context: MessageContext,
    text: &str,
    size: usize,
) -> Result<Vec<RedactStreamResponse>, tonic::Status> {
    use redact_stream_request::Kind;
    let mut requests = vec![Kind::Start(RedactStreamStart {
        context: Some(context),
    })];
    requests.extend(
        text.as_bytes()
            .chunks(size)
            .map(|c| Kind::Chunk(c.to_vec())),
    );
    requests.push(Kind::Finish(StreamFinish {}));
    let requests = requests
        .into_iter()
        .map(|kind| RedactStreamRequest { kind: Some(kind) });
    let mut responses = stack
        .pipeline()
        .redact_stream(futures::stream::iter(requests))
        .await?
        .into_inner();
    let mut all = Vec::new();
    while let Some(response) = responses.message().await? {
        all.push(response);
    }
    Ok(all)
}

/// The call was refused for reusing a key, naming the field.
fn assert_key_reused<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    let refused = result.expect_err("a reused key");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("context.idempotency_key"),
        "{}",
        refused.message()
    );
}

async fn turns(stack: &Stack, conversation: &str) -> anyhow::Result<usize> {
    Ok(stack
        .transcript(&stack.officer_key, conversation)
        .await?
        .len())
}

/// The kept answers of a conversation's keys (sealed bytes), from the turn's statement
/// or written after it.
async fn replays(stack: &Stack, conversation: &str) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(answer, turn_answer) FROM message_replays
         WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY idempotency_key",
    )
    .bind(stack.tenant.as_uuid())
    .bind(conversation)
    .fetch_all(&stack.pool)
    .await?)
}

/// How a key's answer is kept: (written after the turn, kept by the turn, settled).
async fn kept(stack: &Stack, conversation: &str, key: &str) -> anyhow::Result<(bool, bool, bool)> {
    Ok(sqlx::query_as(
        "SELECT answer IS NOT NULL, turn_answer IS NOT NULL, settled FROM message_replays
         WHERE tenant_id = $1 AND conversation_id = $2 AND idempotency_key = $3",
    )
    .bind(stack.tenant.as_uuid())
    .bind(conversation)
    .bind(key)
    .fetch_one(&stack.pool)
    .await?)
}

/// Runs `sql` with the tenant as `$1` (a test's hand on the claims).
async fn on_claims(stack: &Stack, sql: &str) -> anyhow::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(stack.tenant.as_uuid())
        .execute(&stack.pool)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_gets_the_first_answer_and_stores_nothing_new() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let first = send(&stack, keyed("conv-a", "msg-1", TEXT)).await?;
    assert!(first.stored);
    assert!(first.redacted_text.contains("<EMAIL_ADDRESS_1>"));
    let events = stack.events("message_processed").await?.len();

    let retried = send(&stack, keyed("conv-a", "msg-1", TEXT)).await?;
    assert_eq!(
        retried, first,
        "the same answer, message id and entities included"
    );
    assert_eq!(turns(&stack, "conv-a").await?, 1);
    assert_eq!(stack.events("message_processed").await?.len(), events);

    // The stored answer is sealed: neither the redacted text nor a placeholder shows.
    let stored = replays(&stack, "conv-a").await?;
    let sealed = stored[0].as_ref().expect("answered");
    for needle in ["EMAIL_ADDRESS", "Anna", "anna.schmidt", "Hi, I"] {
        let found = sealed
            .windows(needle.len())
            .any(|window| window == needle.as_bytes());
        assert!(!found, "{needle} readable in the stored answer");
    }

    // A new key is a new turn; without a key every call is one.
    let next = send(&stack, keyed("conv-a", "msg-2", TEXT)).await?;
    assert_ne!(next.message_id, first.message_id);
    assert_eq!(next.turn_index, 1);
    send(&stack, keyed("conv-a", "", TEXT)).await?;
    send(&stack, keyed("conv-a", "", TEXT)).await?;
    assert_eq!(turns(&stack, "conv-a").await?, 4);

    // The key belongs to its conversation; in another one it is a new message.
    let elsewhere = send(&stack, keyed("conv-b", "msg-1", TEXT)).await?;
    assert_ne!(elsewhere.message_id, first.message_id);
    assert_eq!(turns(&stack, "conv-b").await?, 1);

    // Reusing a key for another message is refused, naming the field; nothing is stored.
    let reused = send(&stack, keyed("conv-a", "msg-1", "Something else.")).await;
    assert_key_reused(reused);
    let mut other_subject = keyed("conv-a", "msg-1", TEXT);
    other_subject.context.as_mut().unwrap().subject_id = "bert".into();
    let refused = send(&stack, other_subject).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(turns(&stack, "conv-a").await?, 4);

    // The subject's erasure takes the stored answers too.
    assert_eq!(stack.rows("message_replays", "anna").await?, 3);
    let counts = stack
        .retention()
        .erase_subject(EraseSubjectRequest {
            subject: by_id("anna"),
            request_id: "dsr-1".into(),
        })
        .await?
        .into_inner()
        .outcome
        .unwrap()
        .counts;
    assert_eq!(counts["idempotent_answers"], 3);
    assert_eq!(stack.rows("message_replays", "anna").await?, 0);
    stack.stop().await
}

/// A stream retried with its key (its text cut into other chunks) gets the first call's
/// responses and writes nothing; another text under the key is refused at its end, and a
/// key of a stream is not one of a `ProcessMessage`.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_retry_gets_the_first_answer_and_stores_nothing_new() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let context = keyed("conv-s", "stream-1", "").context.unwrap();
    let first = stream(&stack, context.clone(), TEXT, 7).await?;
    let redacted: String = first
        .iter()
        .filter_map(|r| match &r.kind {
            Some(redact_stream_response::Kind::Chunk(chunk)) => Some(chunk.text.as_str()),
            _ => None,
        })
        .collect();
    assert!(redacted.contains("<EMAIL_ADDRESS_1>"), "{redacted}");
    let Some(redact_stream_response::Kind::Completed(completed)) =
        first.last().and_then(|r| r.kind.clone())
    else {
        panic!("the stream did not complete: {first:?}");
    };
    assert!(completed.stored);
    let events = stack.events("message_processed").await?.len();

    let retried = stream(&stack, context.clone(), TEXT, 13).await?;
    assert_eq!(retried, first, "the same responses, message id included");
    assert_eq!(turns(&stack, "conv-s").await?, 1);
    assert_eq!(stack.events("message_processed").await?.len(), events);

    assert_key_reused(stream(&stack, context.clone(), "Something else.", 5).await);
    assert_key_reused(send(&stack, keyed("conv-s", "stream-1", TEXT)).await);
    assert_eq!(turns(&stack, "conv-s").await?, 1);

    // A stream that fails (here: too long) gives its key up; the retry is processed.
    let context = keyed("conv-t", "stream-1", "").context.unwrap();
    let too_long = "word ".repeat(14_000);
    let failed = stream(&stack, context.clone(), &too_long, 4096)
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::InvalidArgument, "{}", failed.message());
    let retried = stream(&stack, context, TEXT, 7).await?;
    assert!(matches!(
        retried.last().and_then(|r| r.kind.as_ref()),
        Some(redact_stream_response::Kind::Completed(done)) if done.stored
    ));
    assert_eq!(turns(&stack, "conv-t").await?, 1);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_hold_off_retries_until_answered_released_or_expired() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let first = send(&stack, keyed("conv-c", "msg-1", TEXT)).await?;

    // Still running on some replica, its turn not written yet: the retry is told to come
    // back.
    on_claims(
        &stack,
        "UPDATE message_replays SET answer = NULL, answered_at = NULL, turn_answer = NULL
         WHERE tenant_id = $1",
    )
    .await?;
    let held = send(&stack, keyed("conv-c", "msg-1", TEXT))
        .await
        .unwrap_err();
    assert_eq!(held.code(), Code::Aborted, "{}", held.message());
    assert_eq!(turns(&stack, "conv-c").await?, 1);

    // The replica died with it before its turn: after the claim timeout the retry
    // processes the message (the first turn here is the one whose answer was cleared).
    on_claims(
        &stack,
        "UPDATE message_replays SET claimed_at = now() - interval '61 seconds'
         WHERE tenant_id = $1",
    )
    .await?;
    let taken_over = send(&stack, keyed("conv-c", "msg-1", TEXT)).await?;
    assert_ne!(taken_over.message_id, first.message_id);
    assert_eq!(turns(&stack, "conv-c").await?, 2);
    let again = send(&stack, keyed("conv-c", "msg-1", TEXT)).await?;
    assert_eq!(again.message_id, taken_over.message_id);

    // Past the window an answer is forgotten: the key is free again.
    on_claims(
        &stack,
        "UPDATE message_replays SET claimed_at = now() - interval '2 days' WHERE tenant_id = $1",
    )
    .await?;
    let later = send(&stack, keyed("conv-c", "msg-1", "A new day.")).await?;
    assert_ne!(later.message_id, taken_over.message_id);

    // Concurrent calls with one key (possibly in one batch of claims): one message is
    // processed; the others get its answer or are told to retry.
    let calls: Vec<_> = (0..4)
        .map(|_| send(&stack, keyed("conv-e", "msg-1", TEXT)))
        .collect();
    let results = futures::future::join_all(calls).await;
    let answered: Vec<&ProcessMessageResponse> = results.iter().flatten().collect();
    assert!(!answered.is_empty());
    assert!(
        answered
            .iter()
            .all(|a| a.message_id == answered[0].message_id)
    );
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused.code(), Code::Aborted, "{}", refused.message());
    }
    assert_eq!(turns(&stack, "conv-e").await?, 1);

    // A message that fails gives its key up, so its retry is processed, not held off.
    stack.set_policy(long_email_replacements()).await?;
    let too_long: String = (0..1100).map(|i| format!("u{i}@example.org ")).collect();
    for _ in 0..2 {
        let failed = send(&stack, keyed("conv-d", "msg-1", &too_long))
            .await
            .unwrap_err();
        assert_eq!(
            failed.code(),
            Code::FailedPrecondition,
            "{}",
            failed.message()
        );
        assert!(replays(&stack, "conv-d").await?.is_empty());
    }
    stack.stop().await
}

/// A replica that dies right after a turn leaves the turn's answer, kept by the turn's own
/// statement: the retry gets it once the claim times out, never a second turn. An answer
/// that changes after the turn (an erasure asked for in the chat, submitted once its
/// turn is stored) is kept again; until it is, retries are held off until the timeout,
/// and then the retry does that step and keeps its answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_turn_keeps_its_answer_for_a_retry_after_its_replica_died() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let first = send(&stack, keyed("conv-f", "msg-1", TEXT)).await?;
    assert_eq!(
        kept(&stack, "conv-f", "msg-1").await?,
        (false, true, true),
        "kept by the turn alone"
    );
    let events = stack.events("message_processed").await?.len();
    // Whatever the first call did after its turn, its claim has now timed out.
    let timed_out = "UPDATE message_replays SET claimed_at = now() - interval '61 seconds'
                     WHERE tenant_id = $1";
    on_claims(&stack, timed_out).await?;
    let retried = send(&stack, keyed("conv-f", "msg-1", TEXT)).await?;
    assert_eq!(retried, first);
    assert_eq!(turns(&stack, "conv-f").await?, 1);
    assert_eq!(stack.events("message_processed").await?.len(), events);

    let mut policy = veil_gateway::policy_store::default_policy();
    policy.auto_act_on_privacy_commands = true;
    stack.set_policy(policy).await?;
    let erase = keyed("conv-g", "msg-1", "Please delete my data.");
    let first = send(&stack, erase.clone()).await?;
    let command = first.privacy_command.clone().expect("a command");
    assert_eq!(command.command_type, PrivacyCommandType::Erase as i32);
    assert_eq!(kept(&stack, "conv-g", "msg-1").await?, (true, true, false));
    // The replica died between the turn and the erasure's answer.
    on_claims(
        &stack,
        "UPDATE message_replays SET answer = NULL, answered_at = NULL WHERE tenant_id = $1",
    )
    .await?;
    let held = send(&stack, erase.clone()).await.unwrap_err();
    assert_eq!(held.code(), Code::Aborted, "{}", held.message());
    on_claims(&stack, timed_out).await?;
    // The retry submits the erasure the first call left undone. Retention is unreachable
    // here, so neither call's was submitted: both answers ask for confirmation. The
    // retry's answer is kept (tests/tests/commands.rs has retention reachable).
    let claim_of = || {
        sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT claim FROM message_replays WHERE conversation_id = 'conv-g'",
        )
        .fetch_one(&stack.pool)
    };
    let first_claim = claim_of().await?;
    let retried = send(&stack, erase).await?;
    assert_eq!(retried, first);
    assert_eq!(turns(&stack, "conv-g").await?, 1);
    assert_eq!(kept(&stack, "conv-g", "msg-1").await?, (true, true, false));
    assert_ne!(
        claim_of().await?,
        first_claim,
        "the retry took the claim over"
    );

    // A stream's answer is kept with its turn the same way.
    let context = keyed("conv-h", "stream-1", "").context.unwrap();
    let streamed = stream(&stack, context.clone(), TEXT, 7).await?;
    assert_eq!(
        kept(&stack, "conv-h", "stream-1").await?,
        (false, true, true)
    );
    on_claims(&stack, timed_out).await?;
    assert_eq!(stream(&stack, context, TEXT, 11).await?, streamed);
    assert_eq!(turns(&stack, "conv-h").await?, 1);

    // And a stream asking for erasure is finished by its retry the same way.
    let context = keyed("conv-i", "stream-1", "").context.unwrap();
    let erase = "Please delete my data.";
    let streamed = stream(&stack, context.clone(), erase, 5).await?;
    assert_eq!(
        kept(&stack, "conv-i", "stream-1").await?,
        (true, true, false)
    );
    on_claims(
        &stack,
        "UPDATE message_replays SET answer = NULL, answered_at = NULL WHERE tenant_id = $1",
    )
    .await?;
    on_claims(&stack, timed_out).await?;
    assert_eq!(stream(&stack, context, erase, 9).await?, streamed);
    assert_eq!(
        kept(&stack, "conv-i", "stream-1").await?,
        (true, true, false)
    );
    assert_eq!(turns(&stack, "conv-i").await?, 1);
    stack.stop().await
}
