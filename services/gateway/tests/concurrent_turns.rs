//! Concurrent turns of one conversation, each bringing a value the conversation has not
//! seen: every value must get a placeholder of its own, which restores to it. The turns
//! read the conversation's map at about the same time, so without the write's check
//! they would number their values alike. Each round of such a race is won by one turn
//! and the others read the map again, so as many turns as the gateway's attempts (5)
//! always get through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod retention_support;

use std::collections::HashSet;

use retention_support::Stack;
use veil_proto::gateway::v1::{MessageRole, RestoreTextRequest};

const TURNS: usize = 5;

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_new_values_never_share_a_placeholder() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack
        .say("conv-c", "anna", MessageRole::User, "Hello there")
        .await?;
    let mails: Vec<String> = (0..TURNS)
        .map(|i| format!("person{i}@example.org"))
        .collect();
    let sends = mails.iter().map(|mail| {
        let stack = &stack;
        async move {
            let response = stack
                .say("conv-c", "anna", MessageRole::User, &format!("Mail {mail}"))
                .await?;
            anyhow::Ok((mail.clone(), response.redacted_text))
        }
    });
    let answers = futures::future::try_join_all(sends).await?;

    let mut placeholders = HashSet::new();
    for (mail, redacted) in &answers {
        let placeholder = redacted.strip_prefix("Mail ").expect("one placeholder");
        assert!(
            placeholders.insert(placeholder.to_string()),
            "{placeholder} given twice: {answers:?}"
        );
        let restored = stack
            .pipeline()
            .restore_text(RestoreTextRequest {
                conversation_id: "conv-c".into(),
                subject_id: "anna".into(),
                text: placeholder.into(),
            })
            .await?
            .into_inner()
            .text;
        assert_eq!(&restored, mail);
    }
    let shared: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT placeholder FROM conversation_pseudonyms
                               WHERE conversation_id = 'conv-c'
                               GROUP BY placeholder HAVING count(*) > 1) s",
    )
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(shared, 0);
    stack.stop().await
}
