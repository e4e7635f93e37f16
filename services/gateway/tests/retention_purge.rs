//! `GatewayInternalService/Purge`: a retention sweep of transcripts. Rows are seeded with
//! their age straight into the gateway schema; everything else goes through gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod retention_support;

use retention_support::Stack;
use tonic::Code;
use veil_core::convert::timestamp;
use veil_proto::common::v1::{
    DataCategory, LegalBasis, PurgeCriteria, PurgeOutcome, RetentionAction,
};
use veil_proto::consent::v1::consent_service_client::ConsentServiceClient;
use veil_proto::consent::v1::{Purpose, UpsertPurposeRequest};
use veil_proto::gateway::v1::{
    MessageContext, MessageRole, ProcessMessageRequest, PurgeRequest, RestoreTextRequest,
    TranscriptTurn,
};

/// Criteria expiring everything older than 30 days.
fn criteria(action: RetentionAction, held: &[&str], dry_run: bool, limit: i32) -> PurgeRequest {
    PurgeRequest {
        criteria: Some(PurgeCriteria {
            category: DataCategory::Transcript as i32,
            purpose_key: String::new(),
            cutoff: Some(timestamp(
                time::OffsetDateTime::now_utc() - time::Duration::days(30),
            )),
            action: action as i32,
            held_subject_refs: held.iter().map(|h| h.to_string()).collect(),
            dry_run,
            batch_limit: limit,
            sweep_id: "sweep-1".into(),
        }),
    }
}

async fn purge(stack: &Stack, request: PurgeRequest) -> anyhow::Result<PurgeOutcome> {
    Ok(stack
        .retention()
        .purge(request)
        .await?
        .into_inner()
        .outcome
        .unwrap())
}

fn counts(outcome: &PurgeOutcome) -> (i64, i64) {
    (outcome.counts["turns"], outcome.counts["pseudonym_maps"])
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_counts_what_the_sweep_deletes_and_held_subjects_are_kept() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.seed("conv-old", "old-user", 3, 40, &[]).await?;
    stack.seed("conv-held", "held-user", 2, 40, &[]).await?;
    stack.seed("conv-new", "new-user", 4, 1, &[]).await?;
    // A conversation with an expired and a fresh turn keeps its map.
    stack.seed("conv-mixed", "mixed-user", 1, 40, &[]).await?;
    stack.seed("conv-mixed", "mixed-user", 1, 1, &[]).await?;
    let held = stack.subject_ref("held-user");

    let dry = purge(
        &stack,
        criteria(RetentionAction::Delete, &[held.as_str()], true, 0),
    )
    .await?;
    assert!(dry.dry_run);
    assert_eq!(counts(&dry), (4, 3));
    assert_eq!(dry.held_skipped, 4, "two turns and two maps are held");
    assert!(!dry.more_remaining);
    // A dry run changes nothing.
    assert_eq!(stack.rows("transcript_messages", "old-user").await?, 3);

    let real = purge(
        &stack,
        criteria(RetentionAction::Delete, &[held.as_str()], false, 0),
    )
    .await?;
    assert_eq!(counts(&real), counts(&dry));
    assert_eq!(real.held_skipped, dry.held_skipped);
    assert!(!real.dry_run && !real.more_remaining);
    assert_eq!(stack.rows("transcript_messages", "old-user").await?, 0);
    assert_eq!(stack.rows("conversation_pseudonyms", "old-user").await?, 0);
    assert_eq!(stack.rows("transcript_messages", "held-user").await?, 2);
    assert_eq!(stack.rows("conversation_pseudonyms", "held-user").await?, 2);
    assert_eq!(stack.rows("transcript_messages", "new-user").await?, 4);
    assert_eq!(stack.rows("conversation_pseudonyms", "new-user").await?, 4);
    assert_eq!(stack.rows("transcript_messages", "mixed-user").await?, 1);
    assert_eq!(
        stack.rows("conversation_pseudonyms", "mixed-user").await?,
        1
    );

    // The same sweep resumed acts on nothing and counts nothing twice.
    let again = purge(
        &stack,
        criteria(RetentionAction::Delete, &[held.as_str()], false, 0),
    )
    .await?;
    assert_eq!(counts(&again), (0, 0));

    // Once the hold is gone the held subject's rows go too.
    let released = purge(&stack, criteria(RetentionAction::Delete, &[], false, 0)).await?;
    assert_eq!(counts(&released), (2, 2));
    assert_eq!(released.held_skipped, 0);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_stop_at_the_limit_and_say_more_remains() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.seed("conv-a", "user-a", 5, 40, &[]).await?;
    stack.seed("conv-b", "user-b", 2, 40, &[]).await?;

    let dry = purge(&stack, criteria(RetentionAction::Delete, &[], true, 3)).await?;
    assert_eq!(dry.counts["turns"], 3);
    assert!(dry.more_remaining);
    let (mut turns, mut maps, mut calls) = (0, 0, 0);
    loop {
        let dry = purge(&stack, criteria(RetentionAction::Delete, &[], true, 3)).await?;
        let outcome = purge(&stack, criteria(RetentionAction::Delete, &[], false, 3)).await?;
        assert_eq!(counts(&outcome), counts(&dry), "batch {calls}");
        assert_eq!(outcome.more_remaining, dry.more_remaining, "batch {calls}");
        assert!(outcome.counts["turns"] <= 3 && outcome.counts["pseudonym_maps"] <= 3);
        turns += outcome.counts["turns"];
        maps += outcome.counts["pseudonym_maps"];
        calls += 1;
        if !outcome.more_remaining {
            break;
        }
        assert!(calls < 10, "the sweep does not end");
    }
    assert_eq!((turns, maps), (7, 7));
    assert!(calls >= 3);
    stack.stop().await
}

/// A placeholder whose map row a sweep restricted is no longer restored; one stored
/// after the sweep is.
#[tokio::test(flavor = "multi_thread")]
async fn restricted_placeholders_are_not_restored() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let said = stack
        .say(
            "conv-r",
            "user-r",
            MessageRole::User,
            "I am anna@example.com",
        )
        .await?;
    assert_eq!(said.redacted_text, "I am <EMAIL_ADDRESS_1>");
    let restore = |text: &'static str| {
        let mut pipeline = stack.pipeline();
        async move {
            anyhow::Ok(
                pipeline
                    .restore_text(RestoreTextRequest {
                        conversation_id: "conv-r".into(),
                        subject_id: "user-r".into(),
                        text: text.into(),
                    })
                    .await?
                    .into_inner()
                    .text,
            )
        }
    };
    assert_eq!(restore("<EMAIL_ADDRESS_1>").await?, "anna@example.com");
    // The turn and its map row expire, and the policy restricts them.
    sqlx::raw_sql(
        "UPDATE conversation_pseudonyms SET created_at = now() - interval '40 days';
         UPDATE transcript_messages SET created_at = now() - interval '40 days'",
    )
    .execute(&stack.pool)
    .await?;
    let restricted = purge(&stack, criteria(RetentionAction::Restrict, &[], false, 0)).await?;
    assert_eq!(counts(&restricted), (1, 1));
    assert_eq!(restore("<EMAIL_ADDRESS_1>").await?, "<EMAIL_ADDRESS_1>");

    stack
        .say("conv-r", "user-r", MessageRole::User, "or ben@example.com")
        .await?;
    assert_eq!(
        restore("<EMAIL_ADDRESS_1> <EMAIL_ADDRESS_2>").await?,
        "<EMAIL_ADDRESS_1> ben@example.com"
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymize_unlinks_turns_and_restrict_marks_rows() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack.seed("conv-a", "user-a", 3, 40, &[]).await?;
    stack.seed("conv-b", "user-b", 2, 40, &[]).await?;

    let dry = purge(&stack, criteria(RetentionAction::Restrict, &[], true, 0)).await?;
    let restricted = purge(&stack, criteria(RetentionAction::Restrict, &[], false, 0)).await?;
    assert_eq!(counts(&restricted), (5, 5));
    assert_eq!(counts(&dry), counts(&restricted));
    let marked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM transcript_messages WHERE restricted_at IS NOT NULL)
              + (SELECT count(*) FROM conversation_pseudonyms WHERE restricted_at IS NOT NULL)",
    )
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(marked, 10);
    let again = purge(&stack, criteria(RetentionAction::Restrict, &[], false, 0)).await?;
    assert_eq!(counts(&again), (0, 0));
    // Restricted turns keep their place in the transcript; only a privacy officer reads
    // their text. A turn stored after the sweep is not restricted.
    let seen = |turns: &[TranscriptTurn]| -> Vec<(i64, bool, bool)> {
        turns
            .iter()
            .map(|t| (t.turn_index, t.restricted, t.redacted_text.is_empty()))
            .collect()
    };
    let agent = stack.transcript(&stack.agent_key, "conv-a").await?;
    assert_eq!(
        seen(&agent),
        [(0, true, true), (1, true, true), (2, true, true)]
    );
    let officer = stack.transcript(&stack.officer_key, "conv-a").await?;
    assert_eq!(
        seen(&officer),
        [(0, true, false), (1, true, false), (2, true, false)]
    );
    assert_eq!(
        officer[1].redacted_text,
        "my mail is <EMAIL_ADDRESS_2>, turn 1"
    );
    stack
        .say("conv-c", "user-c", MessageRole::User, "thanks")
        .await?;
    let fresh = stack.transcript(&stack.agent_key, "conv-c").await?;
    assert_eq!(seen(&fresh), [(0, false, false)]);

    let held = stack.subject_ref("user-b");
    let anonymized = purge(
        &stack,
        criteria(RetentionAction::Anonymize, &[held.as_str()], false, 0),
    )
    .await?;
    assert_eq!(counts(&anonymized), (3, 3));
    // The turns stay, linked to nobody: no ref repeats and none is the subject's.
    assert_eq!(stack.rows("transcript_messages", "user-a").await?, 0);
    assert_eq!(stack.rows("conversation_pseudonyms", "user-a").await?, 0);
    let refs: Vec<String> = sqlx::query_scalar(
        "SELECT subject_ref FROM transcript_messages WHERE conversation_id = 'conv-a'",
    )
    .fetch_all(&stack.pool)
    .await?;
    assert_eq!(refs.len(), 3);
    for r in &refs {
        assert!(r.parse::<veil_core::types::SubjectRef>().is_ok(), "{r}");
        assert_eq!(refs.iter().filter(|other| *other == r).count(), 1);
    }
    assert_eq!(stack.rows("transcript_messages", "user-b").await?, 2);
    let again = purge(
        &stack,
        criteria(RetentionAction::Anonymize, &[held.as_str()], false, 0),
    )
    .await?;
    assert_eq!(counts(&again), (0, 0));
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purpose_sweep_takes_only_turns_of_that_purpose() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack
        .seed("conv-s", "user-s", 2, 40, &["support", "analytics"])
        .await?;
    stack
        .seed("conv-m", "user-m", 3, 40, &["marketing"])
        .await?;
    let mut request = criteria(RetentionAction::Delete, &[], false, 0);
    request.criteria.as_mut().unwrap().purpose_key = "marketing".into();
    let outcome = purge(&stack, request).await?;
    // Maps are left to the sweep without a purpose: a map serves every turn.
    assert_eq!(counts(&outcome), (3, 0));
    assert_eq!(stack.rows("transcript_messages", "user-s").await?, 2);
    assert_eq!(stack.rows("transcript_messages", "user-m").await?, 0);
    let rest = purge(&stack, criteria(RetentionAction::Delete, &[], false, 0)).await?;
    assert_eq!(counts(&rest), (2, 5));
    stack.stop().await
}

/// One way to spoil valid criteria.
type Change = Box<dyn Fn(&mut PurgeCriteria)>;

#[tokio::test(flavor = "multi_thread")]
async fn bad_criteria_are_refused_naming_the_field() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|c| c.action = RetentionAction::CryptoShred as i32),
            "criteria.action",
        ),
        (
            Box::new(|c| c.action = RetentionAction::Unspecified as i32),
            "criteria.action",
        ),
        (
            Box::new(|c| c.category = DataCategory::VaultRecord as i32),
            "criteria.category",
        ),
        (Box::new(|c| c.cutoff = None), "criteria.cutoff"),
        (
            Box::new(|c| c.held_subject_refs = vec!["not-a-ref".into()]),
            "criteria.held_subject_refs[0]",
        ),
        (Box::new(|c| c.batch_limit = -1), "criteria.batch_limit"),
        (
            Box::new(|c| c.purpose_key = "Bad Key".into()),
            "criteria.purpose_key",
        ),
    ];
    for (change, field) in cases {
        let mut request = criteria(RetentionAction::Delete, &[], false, 0);
        change(request.criteria.as_mut().unwrap());
        let status = stack.retention().purge(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(status.message().contains(field), "{}", status.message());
    }
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_processed_turn_records_the_purposes_a_purpose_sweep_selects_by() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    // A purpose that needs no consent, so the turn is processed for it.
    let officer = stack.token(
        "consent",
        "officer",
        &[veil_core::types::Role::PrivacyOfficer],
    );
    let mut upsert = tonic::Request::new(UpsertPurposeRequest {
        purpose: Some(Purpose {
            key: "support".into(),
            name: "Support".into(),
            legal_basis: LegalBasis::Contract as i32,
            ..Default::default()
        }),
    });
    veil_core::auth::attach_bearer(&mut upsert, &officer)?;
    ConsentServiceClient::connect(stack.consent_url.clone())
        .await?
        .upsert_purpose(upsert)
        .await?;
    let response = stack
        .pipeline()
        .process_message(ProcessMessageRequest {
            context: Some(MessageContext {
                conversation_id: "conv-p".into(),
                subject_id: "user-p".into(),
                role: MessageRole::User as i32,
                purposes: vec!["support".into()],
                ..Default::default()
            }),
            text: "my order has not arrived".into(),
        })
        .await?
        .into_inner();
    assert!(response.stored);
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT purposes FROM transcript_messages WHERE conversation_id = 'conv-p'",
    )
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(stored, vec!["support".to_string()]);
    assert_eq!(stored, response.effective_purposes);
    stack.stop().await
}
