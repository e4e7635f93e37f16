//! Retention sweeps: only superseded consent data goes, holds are respected, batches.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tonic::Code;
use veil_proto::common::v1::{
    CollectionMethod, DataCategory, DecisionReason, PreferenceSignalType, PurgeCriteria,
    PurgeOutcome, RetentionAction,
};
use veil_proto::consent::v1::*;

fn criteria(action: RetentionAction, held: Vec<String>, limit: i32, dry_run: bool) -> PurgeRequest {
    let cutoff = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    PurgeRequest {
        criteria: Some(PurgeCriteria {
            category: DataCategory::ConsentRecord as i32,
            cutoff: Some(veil_core::convert::timestamp(cutoff)),
            action: action as i32,
            held_subject_refs: held,
            dry_run,
            batch_limit: limit,
            sweep_id: "sweep-1".into(),
            ..Default::default()
        }),
    }
}

async fn purge(h: &Harness, request: PurgeRequest) -> anyhow::Result<PurgeOutcome> {
    Ok(h.client
        .clone()
        .purge(h.req(request, SERVICE))
        .await?
        .into_inner()
        .outcome
        .unwrap())
}

async fn count(h: &Harness, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(&h.db().await?).await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeps_delete_only_superseded_data_and_respect_holds() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    h.grant("ann", &["marketing"], &notice).await?;
    h.withdraw("ann", &["marketing"]).await?;
    h.grant("ann", &["marketing"], &notice).await?;
    h.grant("ben", &["marketing"], &notice).await?;
    let ben = h.withdraw("ben", &["marketing"]).await?.records[0]
        .subject_ref
        .clone();
    for enabled in [true, false] {
        h.client
            .clone()
            .set_preference_signal(h.req(
                SetPreferenceSignalRequest {
                    subject_id: "ann".into(),
                    signal: PreferenceSignalType::Gpc as i32,
                    enabled,
                    source: CollectionMethod::Gpc as i32,
                    observed_at: None,
                },
                BOT,
            ))
            .await?;
    }

    let dry = purge(
        &h,
        criteria(RetentionAction::Delete, vec![ben.clone()], 0, true),
    )
    .await?;
    assert!(dry.dry_run);
    assert_eq!(
        dry.counts["consent_records"], 2,
        "ann's two superseded records"
    );
    assert_eq!(dry.counts["preference_signals"], 1);
    assert_eq!(dry.held_skipped, 1, "ben is under a legal hold");
    assert_eq!(
        count(&h, "SELECT count(*) FROM consent_events").await?,
        5,
        "dry run"
    );

    let first = purge(
        &h,
        criteria(RetentionAction::Delete, vec![ben.clone()], 1, false),
    )
    .await?;
    assert_eq!(first.counts["consent_records"], 1);
    assert!(first.more_remaining);
    let second = purge(
        &h,
        criteria(RetentionAction::Delete, vec![ben.clone()], 1, false),
    )
    .await?;
    assert_eq!(second.counts["consent_records"], 1);
    let last = purge(&h, criteria(RetentionAction::Delete, vec![ben], 1, false)).await?;
    assert_eq!(last.counts["consent_records"], 0);
    assert!(!last.more_remaining);
    assert_eq!(count(&h, "SELECT count(*) FROM consent_events").await?, 3);
    assert_eq!(
        count(&h, "SELECT count(*) FROM preference_signals").await?,
        1
    );
    // The current records still decide.
    assert_eq!(
        h.check("ann", &["marketing"]).await?,
        vec![(true, DecisionReason::Granted as i32)]
    );
    assert_eq!(
        h.check("ben", &["marketing"]).await?,
        vec![(false, DecisionReason::Withdrawn as i32)]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymizing_sweeps_unlink_and_bad_criteria_are_refused() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let granted = h.grant("cat", &["marketing"], &notice).await?;
    h.withdraw("cat", &["marketing"]).await?;
    let subject_ref = granted.records[0].subject_ref.clone();
    let done = purge(&h, criteria(RetentionAction::Anonymize, vec![], 0, false)).await?;
    assert_eq!(done.counts["consent_records"], 1);
    let linked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM consent_events WHERE subject_ref = $1")
            .bind(&subject_ref)
            .fetch_one(&h.db().await?)
            .await?;
    assert_eq!(linked, 1, "only the current record still names the subject");

    let mut client = h.client.clone();
    let mut wrong_category = criteria(RetentionAction::Delete, vec![], 0, true);
    wrong_category.criteria.as_mut().unwrap().category = DataCategory::Transcript as i32;
    let mut shred = criteria(RetentionAction::CryptoShred, vec![], 0, true);
    shred.criteria.as_mut().unwrap().sweep_id = "x".into();
    let bad_hold = criteria(RetentionAction::Delete, vec!["nope".into()], 0, true);
    for (request, field) in [
        (wrong_category, "criteria.category"),
        (shred, "criteria.action"),
        (bad_hold, "criteria.held_subject_refs[0]"),
    ] {
        let status = client
            .purge(h.req(request, SERVICE))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{}", status.message());
    }
    let officer = client
        .purge(h.req(criteria(RetentionAction::Delete, vec![], 0, true), OFFICER))
        .await;
    assert_eq!(code(officer), Code::PermissionDenied);
    Ok(())
}
