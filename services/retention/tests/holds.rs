//! Legal holds: per subject or tenant-wide, listing, release, events, and
//! `holds::blocking_hold`, the one check every destructive path uses.

mod policies_common;

use policies_common::*;
use veil_core::convert::timestamp;
use veil_core::subjects::SubjectKeys;
use veil_core::types::SubjectRef;
use veil_proto::common::v1::SubjectSelector;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::events::v1::event::Payload;
use veil_proto::retention::v1::*;
use veil_retention::holds::blocking_hold;

fn by_id(id: &str) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(Subject::SubjectId(id.into())),
    })
}

async fn place(
    h: &Harness,
    subject: Option<SubjectSelector>,
    reason: &str,
) -> Result<LegalHold, tonic::Status> {
    h.client
        .clone()
        .place_hold(h.req(
            PlaceHoldRequest {
                subject,
                reason: reason.into(),
                case_reference: "CASE-2026-17".into(),
                expires_at: None,
            },
            OFFICER,
        ))
        .await
        .map(|r| r.into_inner().hold.unwrap_or_default())
}

async fn list(
    h: &Harness,
    subject: Option<SubjectSelector>,
    include_released: bool,
) -> Vec<LegalHold> {
    h.client
        .clone()
        .list_holds(h.req(
            ListHoldsRequest {
                subject,
                include_released,
                page: None,
            },
            AUDITOR,
        ))
        .await
        .expect("list holds")
        .into_inner()
        .holds
}

fn subject_ref(h: &Harness, id: &str) -> anyhow::Result<SubjectRef> {
    let settings = h
        .env
        .settings::<veil_retention::RetentionSettings>("retention");
    Ok(SubjectKeys::from_settings(&settings.privacy)?.subject_ref(&h.tenant, id))
}

#[tokio::test(flavor = "multi_thread")]
async fn holds_are_placed_listed_released_and_announced() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let alice = subject_ref(&h, "alice@example.com")?;
    let subject_hold = place(&h, by_id("alice@example.com"), "litigation").await?;
    assert_eq!(subject_hold.subject_ref, alice.as_str());
    assert_eq!(subject_hold.case_reference, "CASE-2026-17");
    let tenant_hold = place(&h, None, "regulator inquiry").await?;
    assert!(tenant_hold.subject_ref.is_empty());

    let all = list(&h, None, false).await;
    let ids: Vec<&str> = all.iter().map(|x| x.hold_id.as_str()).collect();
    assert_eq!(
        ids,
        [tenant_hold.hold_id.as_str(), subject_hold.hold_id.as_str()],
        "newest first"
    );
    let alices = list(&h, by_id("alice@example.com"), false).await;
    assert_eq!(alices.len(), 1);
    assert!(list(&h, by_id("bob@example.com"), false).await.is_empty());

    let released = h
        .client
        .clone()
        .release_hold(h.req(
            ReleaseHoldRequest {
                hold_id: subject_hold.hold_id.clone(),
                reason: "case settled".into(),
            },
            OFFICER,
        ))
        .await?
        .into_inner()
        .hold
        .unwrap_or_default();
    assert!(released.released_at.is_some());
    assert_eq!(released.release_reason, "case settled");
    assert_eq!(
        released
            .released_by
            .as_ref()
            .map(|a| a.principal_id.as_str()),
        Some("test-officer")
    );
    assert_eq!(list(&h, None, false).await.len(), 1);
    assert_eq!(list(&h, None, true).await.len(), 2);

    let twice = h
        .client
        .clone()
        .release_hold(h.req(
            ReleaseHoldRequest {
                hold_id: subject_hold.hold_id.clone(),
                reason: "again".into(),
            },
            OFFICER,
        ))
        .await
        .expect_err("already released");
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition);
    let unknown = h
        .client
        .clone()
        .release_hold(h.req(
            ReleaseHoldRequest {
                hold_id: uuid::Uuid::now_v7().to_string(),
                reason: "no such hold".into(),
            },
            OFFICER,
        ))
        .await
        .expect_err("unknown hold");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let events: Vec<_> = h
        .outbox()
        .await?
        .into_iter()
        .filter(|(kind, _)| kind.starts_with("hold_"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["hold_placed", "hold_placed", "hold_released"]);
    // The envelope names the subject by ref only; a tenant-wide hold names none.
    assert_eq!(events[0].1.subject_ref, alice.as_str());
    assert!(events[1].1.subject_ref.is_empty());
    match &events[1].1.payload {
        Some(Payload::RetentionHoldPlaced(changed)) => {
            assert!(changed.tenant_wide);
            assert_eq!(changed.hold_id, tenant_hold.hold_id);
        }
        other => panic!("unexpected payload {other:?}"),
    }
    assert_eq!(events[2].1.subject_ref, alice.as_str());
    // The subject id never reaches the schema or the events.
    let pool = h.db().await?;
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM legal_holds WHERE subject_ref LIKE '%alice%' OR reason LIKE '%alice%'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(leaked, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_hold_sees_subject_and_tenant_holds_while_active() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let pool = h.db().await?;
    let mut conn = pool.acquire().await?;
    let alice = subject_ref(&h, "alice@example.com")?;
    let bob = subject_ref(&h, "bob@example.com")?;
    assert!(blocking_hold(&mut conn, h.tenant, &alice).await?.is_none());

    let held = place(&h, by_id("alice@example.com"), "litigation").await?;
    let found = blocking_hold(&mut conn, h.tenant, &alice)
        .await?
        .expect("alice is held");
    assert_eq!(found.hold_id, held.hold_id);
    assert_eq!(found.reason, "litigation");
    assert!(blocking_hold(&mut conn, h.tenant, &bob).await?.is_none());
    // Another tenant's subject with the same ref is not held.
    let other = veil_core::types::TenantId::generate();
    assert!(blocking_hold(&mut conn, other, &alice).await?.is_none());

    // A hold past its expiry no longer blocks.
    sqlx::query("UPDATE legal_holds SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await?;
    assert!(blocking_hold(&mut conn, h.tenant, &alice).await?.is_none());
    assert!(
        list(&h, None, false).await.is_empty(),
        "expired holds are not in force"
    );

    // A tenant-wide hold blocks everyone, and is named first.
    let tenant_hold = place(&h, None, "regulator inquiry").await?;
    let found = blocking_hold(&mut conn, h.tenant, &bob)
        .await?
        .expect("tenant held");
    assert_eq!(found.hold_id, tenant_hold.hold_id);
    assert!(found.subject_ref.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_requests_are_validated_and_need_an_officer() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let no_reason = place(&h, by_id("alice@example.com"), " ")
        .await
        .expect_err("reason");
    assert_eq!(invalid_field(&no_reason), "reason");
    let empty_selector = place(&h, Some(SubjectSelector { subject: None }), "x")
        .await
        .expect_err("a selector naming nobody");
    assert_eq!(invalid_field(&empty_selector), "subject");
    let bad_ref = place(
        &h,
        Some(SubjectSelector {
            subject: Some(Subject::SubjectRef("not-a-ref".into())),
        }),
        "x",
    )
    .await
    .expect_err("bad ref");
    assert_eq!(invalid_field(&bad_ref), "subject.subject_ref");
    let past = h
        .client
        .clone()
        .place_hold(h.req(
            PlaceHoldRequest {
                subject: None,
                reason: "x".into(),
                case_reference: String::new(),
                expires_at: Some(timestamp(
                    time::OffsetDateTime::now_utc() - time::Duration::hours(1),
                )),
            },
            OFFICER,
        ))
        .await
        .expect_err("expiry in the past");
    assert_eq!(invalid_field(&past), "expires_at");
    let bad_id = h
        .client
        .clone()
        .release_hold(h.req(
            ReleaseHoldRequest {
                hold_id: "nope".into(),
                reason: "x".into(),
            },
            OFFICER,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(invalid_field(&bad_id), "hold_id");
    for roles in [BOT, AUDITOR, ADMIN] {
        let status = h
            .client
            .clone()
            .place_hold(h.req(
                PlaceHoldRequest {
                    reason: "x".into(),
                    ..Default::default()
                },
                roles,
            ))
            .await
            .expect_err("not an officer");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }
    let status = h
        .client
        .clone()
        .list_holds(h.req(ListHoldsRequest::default(), BOT))
        .await
        .expect_err("bots do not list holds");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    Ok(())
}
