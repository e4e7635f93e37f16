//! A policy whose replacements are long cannot make a message store megabytes: a
//! redacted text over 256 KiB is refused and nothing of the turn is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod retention_support;

use retention_support::{Stack, long_email_replacements};
use tonic::Code;
use veil_proto::gateway::v1::{MessageContext, MessageRole, ProcessMessageRequest};

async fn say(stack: &Stack, text: String) -> Result<String, tonic::Status> {
    let response = stack
        .pipeline()
        .process_message(ProcessMessageRequest {
            context: Some(MessageContext {
                conversation_id: "conv-long".into(),
                subject_id: "anna".into(),
                role: MessageRole::User as i32,
                ..Default::default()
            }),
            text,
        })
        .await?;
    Ok(response.into_inner().redacted_text)
}

#[tokio::test(flavor = "multi_thread")]
async fn long_replacements_on_many_entities_are_refused() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.set_policy(long_email_replacements()).await?;

    // 100 addresses redact to about 26 KB: fine.
    let some = (0..100).map(|i| format!("u{i}@example.org ")).collect();
    assert!(say(&stack, some).await?.len() > 25_600);
    // 1,100 (about 20 KB of text) would store about 280 KB.
    let many: String = (0..1100).map(|i| format!("u{i}@example.org ")).collect();
    assert!(many.len() < 64 * 1024);
    let refused = say(&stack, many).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("256 KiB"),
        "{}",
        refused.message()
    );
    let turns = stack.transcript(&stack.officer_key, "conv-long").await?;
    assert_eq!(turns.len(), 1, "only the first message is stored");
    Ok(())
}
