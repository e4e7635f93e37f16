//! The gateway's answers to data-subject requests, through its internal API and the
//! erasure saga, on real consent, vault, Postgres and NATS: erase, export, restrict,
//! rectify, and who may call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod retention_support;

use std::time::{Duration, Instant};

use retention_support::{Bearer, Stack, by_id, by_ref};
use tonic::Code;
use veil_core::emit::{EventContext, emit};
use veil_core::types::Role;
use veil_proto::common::v1::VeilService;
use veil_proto::events::v1::RetentionErasureRequested;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::{
    EraseSubjectRequest, ExportSubjectRequest, MessageRole, PurgeRequest, RectifySubjectRequest,
    RestoreTextRequest, RestrictSubjectRequest, TokenReplacement,
};
use veil_proto::vault::v1::vault_service_client::VaultServiceClient;
use veil_proto::vault::v1::{TokenizeItem, TokenizeRequest};
use veil_testkit::eventually;

const ANNA_MAIL: &str = "anna.keller@example.org";

async fn erase(
    stack: &Stack,
    subject: &str,
) -> anyhow::Result<std::collections::HashMap<String, i64>> {
    Ok(stack
        .retention()
        .erase_subject(EraseSubjectRequest {
            subject: by_id(subject),
            request_id: "dsr-1".into(),
        })
        .await?
        .into_inner()
        .outcome
        .unwrap()
        .counts)
}

#[tokio::test(flavor = "multi_thread")]
async fn erase_removes_every_row_of_the_subject_and_nothing_else() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let text = format!("My email is {ANNA_MAIL}, call me on +49 30 1234567.");
    stack
        .say("conv-1", "anna", MessageRole::User, &text)
        .await?;
    stack
        .say("conv-1", "anna", MessageRole::Assistant, "Noted.")
        .await?;
    stack
        .say("conv-1", "ben", MessageRole::User, "I am ben@example.com")
        .await?;
    stack
        .say("conv-2", "ben", MessageRole::User, "Mail ben@example.com")
        .await?;
    stack
        .retention()
        .restrict_subject(RestrictSubjectRequest {
            subject: by_id("anna"),
            request_id: "dsr-0".into(),
            restricted: true,
        })
        .await?;
    let anna_maps = stack.rows("conversation_pseudonyms", "anna").await?;
    assert!(anna_maps >= 1);

    let counts = erase(&stack, "anna").await?;
    assert_eq!(counts["turns"], 2);
    assert_eq!(counts["pseudonym_maps"], anna_maps);
    assert_eq!(counts["restrictions"], 1);
    for table in [
        "transcript_messages",
        "conversation_pseudonyms",
        "subject_restrictions",
    ] {
        assert_eq!(stack.rows(table, "anna").await?, 0, "{table}");
    }
    assert_eq!(stack.rows("transcript_messages", "ben").await?, 2);
    assert_eq!(stack.rows("conversation_pseudonyms", "ben").await?, 2);

    // Again: nothing left, nothing else touched.
    let again = erase(&stack, "anna").await?;
    assert!(again.values().all(|n| *n == 0), "{again:?}");
    assert_eq!(stack.rows("transcript_messages", "ben").await?, 2);

    // Each erasure is reported for the saga and the audit log.
    let reported = stack.events("erasure_completed").await?;
    assert_eq!(reported.len(), 2);
    let anna = stack.subject_ref("anna");
    for event in &reported {
        assert_eq!(event.subject_ref, anna.as_str());
        let Some(Payload::GatewayErasureCompleted(done)) = &event.payload else {
            panic!("not an erasure_completed payload");
        };
        assert_eq!(done.request_id, "dsr-1");
        assert_eq!(
            done.outcome.as_ref().unwrap().service,
            VeilService::Gateway as i32
        );
    }
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn erasing_ten_thousand_turns_takes_well_under_a_second() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.seed("conv-big", "chatty", 10_000, 1, &[]).await?;
    stack.seed("conv-other", "quiet", 100, 1, &[]).await?;
    let started = Instant::now();
    let counts = erase(&stack, "chatty").await?;
    let elapsed = started.elapsed();
    assert_eq!(
        (counts["turns"], counts["pseudonym_maps"]),
        (10_000, 10_000)
    );
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert_eq!(stack.rows("transcript_messages", "quiet").await?, 100);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_erasure_saga_erases_and_reports_through_the_outbox() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.seed("conv-1", "anna", 3, 1, &[]).await?;
    stack.seed("conv-2", "ben", 2, 1, &[]).await?;
    // Retention's events, published through the real relay and NATS (written to the
    // gateway's outbox only because no retention service runs here). The first does not
    // expect the gateway and must be left alone.
    for (subject, request_id, expected) in [
        ("ben", "dsr-vault-only", vec![VeilService::Vault as i32]),
        (
            "anna",
            "dsr-7",
            vec![VeilService::Gateway as i32, VeilService::Vault as i32],
        ),
    ] {
        emit(
            &stack.pool,
            &stack.env.events(),
            &EventContext {
                tenant: Some(stack.tenant),
                subject_ref: Some(stack.subject_ref(subject)),
                actor: None,
                request_id: request_id.into(),
            },
            Payload::RetentionErasureRequested(RetentionErasureRequested {
                request_id: request_id.into(),
                expected_services: expected,
            }),
        )
        .await?;
    }
    let completed = eventually(Duration::from_secs(30), || async {
        stack
            .events("erasure_completed")
            .await
            .ok()
            .and_then(|events| events.into_iter().next())
    })
    .await?;
    let Some(Payload::GatewayErasureCompleted(done)) = completed.payload else {
        panic!("not an erasure_completed payload");
    };
    assert_eq!(done.request_id, "dsr-7");
    assert_eq!(done.outcome.unwrap().counts["turns"], 3);
    assert_eq!(completed.subject_ref, stack.subject_ref("anna").as_str());
    assert_eq!(stack.rows("transcript_messages", "anna").await?, 0);
    // Events are consumed in order: ben's request was seen first and ignored.
    assert_eq!(stack.rows("transcript_messages", "ben").await?, 2);
    assert_eq!(stack.events("erasure_completed").await?.len(), 1);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn export_streams_every_turn_with_its_restored_text() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let first = stack
        .say(
            "conv-1",
            "anna",
            MessageRole::User,
            &format!("Write to {ANNA_MAIL} please"),
        )
        .await?;
    assert_eq!(first.redacted_text, "Write to <EMAIL_ADDRESS_1> please");
    stack
        .say(
            "conv-1",
            "anna",
            MessageRole::Assistant,
            "I will write to <EMAIL_ADDRESS_1>.",
        )
        .await?;
    stack
        .say(
            "conv-2",
            "anna",
            MessageRole::User,
            "My IBAN is DE89 3704 0044 0532 0130 00",
        )
        .await?;
    stack
        .say("conv-1", "ben", MessageRole::User, "I am ben@example.com")
        .await?;
    // Enough old turns to need several chunks.
    stack.seed("conv-3", "anna", 3_000, 1, &[]).await?;

    let mut stream = stack
        .retention()
        .export_subject(ExportSubjectRequest {
            subject: by_ref(&stack.subject_ref("anna")),
            request_id: "dsr-2".into(),
        })
        .await?
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(response) = stream.message().await? {
        chunks.push(response.chunk.unwrap());
    }
    assert!(chunks.len() > 2, "{} chunks", chunks.len());
    let mut lines = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.sequence, i as i64);
        assert_eq!(chunk.section, "transcripts");
        assert_eq!(chunk.last, i == chunks.len() - 1);
        assert!(chunk.json_lines.len() <= 256 * 1024);
        let text = std::str::from_utf8(&chunk.json_lines)?;
        assert!(text.ends_with('\n'), "chunk {i} ends inside a line");
        for line in text.lines() {
            lines.push(serde_json::from_str::<serde_json::Value>(line)?);
        }
    }
    assert_eq!(lines.len(), 3_003);
    let conv1: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["conversation_id"] == "conv-1")
        .collect();
    assert_eq!(conv1.len(), 2, "ben's turn is not anna's");
    assert_eq!(conv1[0]["turn_index"], 0);
    assert_eq!(conv1[0]["role"], "user");
    assert_eq!(
        conv1[0]["redacted_text"],
        "Write to <EMAIL_ADDRESS_1> please"
    );
    assert_eq!(
        conv1[0]["restored_text"],
        format!("Write to {ANNA_MAIL} please")
    );
    assert_eq!(conv1[1]["role"], "assistant");
    assert_eq!(
        conv1[1]["restored_text"],
        format!("I will write to {ANNA_MAIL}.")
    );
    let created_at = conv1[0]["created_at"].as_str().unwrap();
    time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)?;
    let conv2 = lines
        .iter()
        .find(|l| l["conversation_id"] == "conv-2")
        .unwrap();
    assert!(
        conv2["restored_text"]
            .as_str()
            .unwrap()
            .contains("DE89 3704 0044 0532 0130 00")
    );

    // A subject without turns gets one empty, final chunk.
    let mut empty = stack
        .retention()
        .export_subject(ExportSubjectRequest {
            subject: by_id("nobody"),
            request_id: "dsr-3".into(),
        })
        .await?
        .into_inner();
    let only = empty.message().await?.unwrap().chunk.unwrap();
    assert!(only.last && only.json_lines.is_empty() && only.sequence == 0);
    assert!(empty.message().await?.is_none());
    stack.stop().await
}

async fn restore(stack: &Stack, subject: &str, text: &str) -> Result<String, tonic::Status> {
    stack
        .pipeline()
        .restore_text(RestoreTextRequest {
            conversation_id: "conv-1".into(),
            subject_id: subject.into(),
            text: text.into(),
        })
        .await
        .map(|r| r.into_inner().text)
}

#[tokio::test(flavor = "multi_thread")]
async fn restriction_stores_but_stops_processing_until_lifted() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let text = format!("Write to {ANNA_MAIL}");
    stack
        .say("conv-1", "anna", MessageRole::User, &text)
        .await?;
    assert!(!stack.restrict("anna", true).await?);
    assert!(
        stack.restrict("anna", true).await?,
        "restricting is idempotent"
    );

    let held = stack
        .say("conv-1", "anna", MessageRole::User, &text)
        .await?;
    assert!(held.processing_restricted);
    assert!(held.redacted_text.is_empty() && held.entities.is_empty());
    assert!(held.stored, "the turn is still stored");
    assert_eq!(held.turn_index, 1);
    assert_eq!(stack.rows("transcript_messages", "anna").await?, 2);
    let refused = restore(&stack, "anna", "<EMAIL_ADDRESS_1>")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(refused.message(), "processing restricted");
    // Also when the reply names no placeholder.
    let plain = restore(&stack, "anna", "Thanks!").await.unwrap_err();
    assert_eq!(plain.code(), Code::FailedPrecondition);
    // Agents see the restricted subject's turns without text, officers with it.
    let agent = stack.transcript(&stack.agent_key, "conv-1").await?;
    assert!(
        agent
            .iter()
            .all(|t| t.restricted && t.redacted_text.is_empty())
    );
    assert_eq!(agent.len(), 2);
    let officer = stack.transcript(&stack.officer_key, "conv-1").await?;
    assert_eq!(officer[0].redacted_text, "Write to <EMAIL_ADDRESS_1>");
    assert!(officer[0].restricted);
    // Another subject is processed as usual.
    let ben = stack
        .say("conv-9", "ben", MessageRole::User, "I am ben@example.com")
        .await?;
    assert!(!ben.processing_restricted);
    assert_eq!(ben.redacted_text, "I am <EMAIL_ADDRESS_1>");

    assert!(stack.restrict("anna", false).await?);
    assert!(!stack.restrict("anna", false).await?);
    let lifted = stack
        .say("conv-1", "anna", MessageRole::User, &text)
        .await?;
    assert!(!lifted.processing_restricted);
    assert_eq!(lifted.redacted_text, "Write to <EMAIL_ADDRESS_1>");
    let agent = stack.transcript(&stack.agent_key, "conv-1").await?;
    assert!(
        agent
            .iter()
            .all(|t| !t.restricted && !t.redacted_text.is_empty())
    );
    assert_eq!(
        restore(&stack, "anna", "<EMAIL_ADDRESS_1>").await?,
        ANNA_MAIL
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn rectify_points_placeholders_to_the_corrected_value() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let wrong = "anna.keler@example.org";
    stack
        .say(
            "conv-1",
            "anna",
            MessageRole::User,
            &format!("Mail {wrong}"),
        )
        .await?;
    let old_token: String = sqlx::query_scalar(
        "SELECT token FROM conversation_pseudonyms WHERE conversation_id = 'conv-1'",
    )
    .fetch_one(&stack.pool)
    .await?;
    // Retention obtains the corrected value's token from the vault, for the same subject.
    let mut vault = VaultServiceClient::with_interceptor(
        stack.vault_channel.clone(),
        Bearer(Some(stack.token("vault", "retention", &[Role::Service]))),
    );
    let new_token = vault
        .tokenize(TokenizeRequest {
            items: vec![TokenizeItem {
                subject_id: "anna".into(),
                entity_type: "EMAIL_ADDRESS".into(),
                value: ANNA_MAIL.into(),
            }],
            store_value: true,
            started_at: None,
        })
        .await?
        .into_inner()
        .tokens
        .remove(0)
        .token;

    let rectified = stack
        .retention()
        .rectify_subject(RectifySubjectRequest {
            subject: by_id("anna"),
            request_id: "dsr-5".into(),
            replacements: vec![TokenReplacement {
                old_token: old_token.clone(),
                new_token: new_token.clone(),
            }],
        })
        .await?
        .into_inner();
    assert_eq!(rectified.entries_updated, 1);
    assert_eq!(
        restore(&stack, "anna", "Sent to <EMAIL_ADDRESS_1>").await?,
        format!("Sent to {ANNA_MAIL}")
    );
    // The corrected value keeps the placeholder in later turns.
    let later = stack
        .say(
            "conv-1",
            "anna",
            MessageRole::User,
            &format!("Mail {ANNA_MAIL}"),
        )
        .await?;
    assert_eq!(later.redacted_text, "Mail <EMAIL_ADDRESS_1>");
    // Another subject's call re-points nothing of anna's.
    let other = stack
        .retention()
        .rectify_subject(RectifySubjectRequest {
            subject: by_id("ben"),
            request_id: "dsr-6".into(),
            replacements: vec![TokenReplacement {
                old_token: new_token,
                new_token: old_token,
            }],
        })
        .await?
        .into_inner();
    assert_eq!(other.entries_updated, 0);
    let bad = stack
        .retention()
        .rectify_subject(RectifySubjectRequest {
            subject: by_id("anna"),
            request_id: "dsr-6".into(),
            replacements: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("replacements"));
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_retention_service_may_call_the_internal_api() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.seed("conv-1", "anna", 2, 1, &[]).await?;
    let callers = [
        (None, Code::Unauthenticated),
        (Some(stack.bot_key.clone()), Code::Unauthenticated),
        (
            Some(stack.token("vault", "retention", &[Role::Service])),
            Code::Unauthenticated,
        ),
        (
            Some(stack.token("gateway", "gateway:key_1", &[Role::Service])),
            Code::PermissionDenied,
        ),
        (
            Some(stack.token("gateway", "retention", &[Role::PrivacyOfficer])),
            Code::PermissionDenied,
        ),
    ];
    for (token, code) in callers {
        let mut client = stack.internal(token);
        let erase = client
            .erase_subject(EraseSubjectRequest {
                subject: by_id("anna"),
                request_id: "dsr-x".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(erase.code(), code);
        let purge = client.purge(PurgeRequest::default()).await.unwrap_err();
        assert_eq!(purge.code(), code);
        let export = client
            .export_subject(ExportSubjectRequest {
                subject: by_id("anna"),
                request_id: "dsr-x".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(export.code(), code);
        let restrict = client
            .restrict_subject(RestrictSubjectRequest {
                subject: by_id("anna"),
                request_id: "dsr-x".into(),
                restricted: true,
            })
            .await
            .unwrap_err();
        assert_eq!(restrict.code(), code);
        let rectify = client
            .rectify_subject(RectifySubjectRequest::default())
            .await
            .unwrap_err();
        assert_eq!(rectify.code(), code);
    }
    assert_eq!(stack.rows("transcript_messages", "anna").await?, 2);
    assert_eq!(stack.rows("subject_restrictions", "anna").await?, 0);
    stack.stop().await
}
