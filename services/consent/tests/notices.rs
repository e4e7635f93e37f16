//! Notices: versioned, immutable, per locale with fallback; deliveries recorded.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tonic::Code;
use veil_core::types::TenantId;
use veil_proto::common::v1::{CollectionMethod, NoticeKind};
use veil_proto::consent::v1::*;

fn publish(kind: NoticeKind, locale: &str, body: &str) -> PublishNoticeRequest {
    PublishNoticeRequest {
        kind: kind as i32,
        locale: locale.into(),
        title: "Notice".into(),
        body: body.into(),
        ..Default::default()
    }
}

fn get(kind: NoticeKind, locale: &str, version: i32) -> GetNoticeRequest {
    GetNoticeRequest {
        kind: kind as i32,
        locale: locale.into(),
        version,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn notices_are_versioned_per_locale_and_fall_back() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let privacy = NoticeKind::PrivacyNotice;
    let v1 = client
        .publish_notice(h.req(publish(privacy, "en", "first"), OFFICER))
        .await?
        .into_inner()
        .notice
        .unwrap();
    let v2 = client
        .publish_notice(h.req(publish(privacy, "en", "second"), OFFICER))
        .await?
        .into_inner()
        .notice
        .unwrap();
    let de = client
        .publish_notice(h.req(publish(privacy, "de", "erste"), OFFICER))
        .await?
        .into_inner()
        .notice
        .unwrap();
    assert_eq!((v1.version, v2.version, de.version), (1, 2, 1));
    assert_ne!(v1.content_sha256, v2.content_sha256);
    assert_eq!(v1.content_sha256.len(), 64);

    // Current version, exact locale.
    let current = client
        .get_notice(h.req(get(privacy, "en", 0), BOT))
        .await?
        .into_inner();
    assert_eq!(current.notice.as_ref().unwrap().version, 2);
    assert!(!current.fallback_used);
    // An old version stays readable as published.
    let old = client
        .get_notice(h.req(get(privacy, "en", 1), BOT))
        .await?
        .into_inner();
    assert_eq!(old.notice.unwrap().body, "first");
    // "de-AT" falls back to its language, "fr" to the default locale.
    let austria = client
        .get_notice(h.req(get(privacy, "de-at", 0), BOT))
        .await?
        .into_inner();
    assert_eq!(austria.notice.unwrap().locale, "de");
    assert!(austria.fallback_used);
    let french = client
        .get_notice(h.req(get(privacy, "fr", 0), BOT))
        .await?
        .into_inner();
    assert_eq!(french.notice.unwrap().locale, "en");
    assert!(french.fallback_used);
    // The AI disclosure is its own kind with its own versions.
    assert_eq!(
        code(
            client
                .get_notice(h.req(get(NoticeKind::AiDisclosure, "en", 0), BOT))
                .await
        ),
        Code::NotFound
    );
    let ai = client
        .publish_notice(h.req(
            publish(NoticeKind::AiDisclosure, "en", "I am an AI."),
            OFFICER,
        ))
        .await?
        .into_inner()
        .notice
        .unwrap();
    assert_eq!(ai.version, 1);
    assert_eq!(
        code(client.get_notice(h.req(get(privacy, "en", 9), BOT)).await),
        Code::NotFound
    );

    let listed = client
        .list_notice_versions(h.req(
            ListNoticeVersionsRequest {
                kind: privacy as i32,
                locale: "en".into(),
                page: Some(veil_proto::common::v1::PageRequest {
                    page_size: 1,
                    ..Default::default()
                }),
            },
            BOT,
        ))
        .await?
        .into_inner();
    assert_eq!(listed.notices.len(), 1);
    assert_eq!(listed.notices[0].version, 2);
    assert!(
        listed.notices[0].body.is_empty(),
        "listings leave bodies out"
    );
    let next = listed.page.unwrap().next_page_token;
    let second = client
        .list_notice_versions(h.req(
            ListNoticeVersionsRequest {
                kind: privacy as i32,
                locale: "en".into(),
                page: Some(veil_proto::common::v1::PageRequest {
                    page_size: 1,
                    page_token: next,
                }),
            },
            BOT,
        ))
        .await?
        .into_inner();
    assert_eq!(second.notices[0].version, 1);

    // Published notices cannot be changed, even directly in the database.
    let db = h.db().await?;
    let tampered = sqlx::query("UPDATE notices SET body = 'changed'")
        .execute(&db)
        .await;
    assert!(tampered.is_err(), "the notices table refuses updates");
    let deleted = sqlx::query("DELETE FROM notices").execute(&db).await;
    assert!(deleted.is_err(), "the notices table refuses deletes");
    assert_eq!(h.outbox_kinds().await?, vec!["notice_published"; 4]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_notices_are_rejected() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let privacy = NoticeKind::PrivacyNotice;
    for (request, field) in [
        (publish(NoticeKind::Unspecified, "en", "x"), "kind"),
        (publish(privacy, "english!", "x"), "locale"),
        (publish(privacy, "en", " "), "body"),
        (
            PublishNoticeRequest {
                effective_at: Some(prost_types::Timestamp {
                    seconds: 1_000_000,
                    nanos: 0,
                }),
                ..publish(privacy, "en", "x")
            },
            "effective_at",
        ),
    ] {
        let status = client
            .publish_notice(h.req(request, OFFICER))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(status.message().contains(field), "{}", status.message());
    }
    let covering_unknown = PublishNoticeRequest {
        purpose_keys: vec!["nope".into()],
        ..publish(privacy, "en", "x")
    };
    assert_eq!(
        code(
            client
                .publish_notice(h.req(covering_unknown, OFFICER))
                .await
        ),
        Code::NotFound
    );
    // Only privacy officers publish.
    assert_eq!(
        code(
            client
                .publish_notice(h.req(publish(privacy, "en", "x"), ADMIN))
                .await
        ),
        Code::PermissionDenied
    );
    assert!(h.outbox().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_are_recorded_per_subject() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let notice = h.notice().await?;
    let ai = client
        .publish_notice(h.req(
            publish(NoticeKind::AiDisclosure, "en", "I am an AI."),
            OFFICER,
        ))
        .await?
        .into_inner()
        .notice
        .unwrap();
    let served = |notice_id: &str, conversation: &str| RecordNoticeServedRequest {
        subject_id: "alice@example.com".into(),
        notice_id: notice_id.into(),
        conversation_id: conversation.into(),
        channel: CollectionMethod::Chat as i32,
        served_at: None,
    };
    let first = client
        .record_notice_served(h.req(served(&notice.notice_id, ""), BOT))
        .await?
        .into_inner();
    assert_eq!(first.subject_ref.len(), 64);
    client
        .record_notice_served(h.req(served(&ai.notice_id, "conv-1"), BOT))
        .await?;
    // The AI disclosure is due per conversation, so it needs one.
    let status = client
        .record_notice_served(h.req(served(&ai.notice_id, ""), BOT))
        .await
        .expect_err("no conversation");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("conversation_id"));
    // The conversation id goes into the event and the audit log: no address passes.
    let status = client
        .record_notice_served(h.req(served(&ai.notice_id, "alice@example.com"), BOT))
        .await
        .expect_err("an address as conversation id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("conversation_id"));
    assert!(!status.message().contains("alice"));
    // Unknown notices, and other tenants' notices, are not found.
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        code(
            client
                .record_notice_served(h.req(served(&unknown, ""), BOT))
                .await
        ),
        Code::NotFound
    );
    let stranger = h.req_as(TenantId::generate(), served(&notice.notice_id, ""), BOT);
    assert_eq!(
        code(client.record_notice_served(stranger).await),
        Code::NotFound
    );

    let state = client
        .get_consent_state(h.req(
            GetConsentStateRequest {
                subject_id: "alice@example.com".into(),
                jurisdiction: 0,
            },
            BOT,
        ))
        .await?
        .into_inner();
    let mut kinds: Vec<i32> = state.notices_served.iter().map(|n| n.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            NoticeKind::PrivacyNotice as i32,
            NoticeKind::AiDisclosure as i32
        ]
    );
    // Events carry the subject_ref, never the subject id.
    let events = h.outbox().await?;
    let served_events: Vec<_> = events
        .iter()
        .filter(|(s, _)| s.ends_with(".notice_served"))
        .collect();
    assert_eq!(served_events.len(), 2);
    assert!(
        served_events
            .iter()
            .all(|(_, e)| e.subject_ref == first.subject_ref)
    );
    let raw = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM outbox WHERE position('alice@example.com' in encode(payload, 'escape')) > 0",
    )
    .fetch_one(&h.db().await?)
    .await?;
    assert_eq!(raw, 0, "no raw subject id in any event");
    Ok(())
}
