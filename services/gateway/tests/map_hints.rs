//! A gateway replica builds most turns on what it last saw of the conversation's map and
//! of the subject's restriction, without reading them first. These tests change what it
//! saw behind its back (another replica's turn, a restriction, a purge) and check that
//! the next turn is still right: the write refuses a turn built on a stale hint and the
//! turn is built again from a fresh read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod retention_support;

use retention_support::Stack;
use veil_core::convert::timestamp;
use veil_proto::common::v1::{DataCategory, PurgeCriteria, RetentionAction};
use veil_proto::gateway::v1::{MessageRole, PurgeRequest, RestoreTextRequest};

const USER: MessageRole = MessageRole::User;

async fn restore(stack: &Stack, conversation: &str, subject: &str, text: &str) -> String {
    stack
        .pipeline()
        .restore_text(RestoreTextRequest {
            conversation_id: conversation.into(),
            subject_id: subject.into(),
            text: text.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .text
}

#[tokio::test(flavor = "multi_thread")]
async fn turns_through_two_replicas_never_share_or_lose_a_placeholder() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (_replica, other) = stack.replica().await?;
    let here = &stack.channel;
    let say = |channel, text: &'static str| {
        let stack = &stack;
        async move { stack.say_on(channel, "conv-r", "anna", USER, text).await }
    };

    let first = say(here, "Mail anna@example.org").await?;
    assert_eq!(first.redacted_text, "Mail <EMAIL_ADDRESS_1>");
    // The other replica numbers after what is stored.
    let second = say(&other, "Mail ben@example.org").await?;
    assert_eq!(second.redacted_text, "Mail <EMAIL_ADDRESS_2>");
    // This replica's hint does not know ben's row: the turn built on it would give carl
    // the number ben has, so it is built again from the stored map.
    let third = say(here, "Mail carl@example.org").await?;
    assert_eq!(third.redacted_text, "Mail <EMAIL_ADDRESS_3>");
    // Ben's value keeps its placeholder here too, and anna's on the other replica.
    let again = say(here, "Mail ben@example.org").await?;
    assert_eq!(again.redacted_text, "Mail <EMAIL_ADDRESS_2>");
    let anna = say(&other, "Still anna@example.org").await?;
    assert_eq!(anna.redacted_text, "Still <EMAIL_ADDRESS_1>");

    let turns: Vec<i64> = [&first, &second, &third, &again, &anna]
        .iter()
        .map(|r| r.turn_index)
        .collect();
    assert_eq!(turns, vec![0, 1, 2, 3, 4]);
    for (placeholder, mail) in [
        ("<EMAIL_ADDRESS_1>", "anna@example.org"),
        ("<EMAIL_ADDRESS_2>", "ben@example.org"),
        ("<EMAIL_ADDRESS_3>", "carl@example.org"),
    ] {
        assert_eq!(restore(&stack, "conv-r", "anna", placeholder).await, mail);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restriction_made_after_the_last_turn_applies_to_the_next() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let say = |text: &'static str| stack.say("conv-s", "bob", USER, text);
    let open = say("Reach me at bob@example.org").await?;
    assert!(!open.processing_restricted);
    assert_eq!(open.redacted_text, "Reach me at <EMAIL_ADDRESS_1>");

    assert!(!stack.restrict("bob", true).await?);
    for text in ["Again bob@example.org", "Thanks"] {
        let restricted = say(text).await?;
        assert!(restricted.processing_restricted, "{text}");
        assert!(restricted.redacted_text.is_empty(), "{text}");
        assert!(restricted.effective_purposes.is_empty(), "{text}");
    }

    assert!(stack.restrict("bob", false).await?);
    for text in ["Thanks", "Again bob@example.org"] {
        let lifted = say(text).await?;
        assert!(!lifted.processing_restricted, "{text}");
        assert!(!lifted.redacted_text.is_empty(), "{text}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_whose_row_was_purged_gets_a_row_again() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let say = |text: &'static str| stack.say("conv-p", "cleo", USER, text);
    let first = say("Mail cleo@example.org").await?;
    assert_eq!(first.redacted_text, "Mail <EMAIL_ADDRESS_1>");

    // A retention sweep whose cutoff lies ahead takes every turn and row of the
    // conversation; the replica's hint still has cleo's row.
    let purged = stack
        .retention()
        .purge(PurgeRequest {
            criteria: Some(PurgeCriteria {
                category: DataCategory::Transcript as i32,
                purpose_key: String::new(),
                cutoff: Some(timestamp(
                    time::OffsetDateTime::now_utc() + time::Duration::days(1),
                )),
                action: RetentionAction::Delete as i32,
                held_subject_refs: Vec::new(),
                dry_run: false,
                batch_limit: 0,
                sweep_id: "sweep-ahead".into(),
            }),
        })
        .await?
        .into_inner()
        .outcome
        .expect("an outcome");
    assert_eq!(purged.counts["pseudonym_maps"], 1);
    assert_eq!(stack.rows("conversation_pseudonyms", "cleo").await?, 0);

    let again = say("Mail cleo@example.org again").await?;
    let placeholder = again
        .redacted_text
        .strip_prefix("Mail ")
        .and_then(|rest| rest.strip_suffix(" again"))
        .expect("one placeholder");
    assert_eq!(stack.rows("conversation_pseudonyms", "cleo").await?, 1);
    assert_eq!(
        restore(&stack, "conv-p", "cleo", placeholder).await,
        "cleo@example.org"
    );
    Ok(())
}
