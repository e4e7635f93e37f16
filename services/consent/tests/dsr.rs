//! Data-subject requests on consent data: history, export, erasure keeping the proof.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures::StreamExt;
use tonic::Code;
use veil_proto::common::v1::{DecisionReason, PageRequest, SubjectSelector, subject_selector};
use veil_proto::consent::v1::*;
use veil_proto::events::v1::event::Payload;

fn by_id(subject: &str) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(subject_selector::Subject::SubjectId(subject.into())),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_newest_first() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    h.grant("ivy", &["marketing"], &notice).await?;
    h.withdraw("ivy", &["marketing"]).await?;
    h.grant("ivy", &["marketing", "model_training"], &notice)
        .await?;
    let mut client = h.client.clone();
    let page = |token: String| HistoryRequest {
        subject_id: "ivy".into(),
        purpose_key: String::new(),
        page: Some(PageRequest {
            page_size: 3,
            page_token: token,
        }),
    };
    let first = client
        .history(h.req(page(String::new()), OFFICER))
        .await?
        .into_inner();
    assert_eq!(first.records.len(), 3);
    let token = first.page.unwrap().next_page_token;
    assert!(!token.is_empty());
    let second = client
        .history(h.req(page(token), OFFICER))
        .await?
        .into_inner();
    assert_eq!(second.records.len(), 1);
    assert!(second.page.unwrap().next_page_token.is_empty());
    let states: Vec<i32> = first
        .records
        .iter()
        .chain(&second.records)
        .map(|r| r.state)
        .collect();
    assert_eq!(
        *states.last().unwrap(),
        ConsentState::Granted as i32,
        "oldest last"
    );
    assert_eq!(states[2], ConsentState::Withdrawn as i32);
    let marketing = client
        .history(h.req(
            HistoryRequest {
                subject_id: "ivy".into(),
                purpose_key: "marketing".into(),
                page: None,
            },
            OFFICER,
        ))
        .await?
        .into_inner();
    assert_eq!(marketing.records.len(), 3);
    // Bots may not read histories.
    assert_eq!(
        code(client.history(h.req(page(String::new()), BOT)).await),
        Code::PermissionDenied
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn export_streams_every_section_as_json_lines() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    h.grant("jack", &["marketing"], &notice).await?;
    let mut client = h.client.clone();
    let request = ExportSubjectRequest {
        subject: by_id("jack"),
        request_id: "dsr-1".into(),
    };
    // Only Veil services call this (retention's DSR saga).
    assert_eq!(
        code(client.export_subject(h.req(request.clone(), OFFICER)).await),
        Code::PermissionDenied
    );
    let mut stream = client
        .export_subject(h.req(request, SERVICE))
        .await?
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk?.chunk.unwrap());
    }
    assert!(chunks.last().unwrap().last);
    assert!(
        chunks
            .iter()
            .enumerate()
            .all(|(i, c)| c.sequence == i as i64)
    );
    let sections: Vec<&str> = chunks.iter().map(|c| c.section.as_str()).collect();
    assert_eq!(sections, vec!["consent_records", "consent_receipts"]);
    let record: serde_json::Value =
        serde_json::from_slice(chunks[0].json_lines.strip_suffix(b"\n").unwrap())?;
    assert_eq!(record["purpose"], "marketing");
    assert_eq!(record["state"], "granted");
    assert_eq!(record["lawful_basis"], "consent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn erasure_keeps_an_unlinkable_proof() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let granted = h.grant("kim", &["marketing"], &notice).await?;
    let subject_ref = granted.records[0].subject_ref.clone();
    let receipt = granted.receipt.unwrap();
    let mut client = h.client.clone();
    client
        .set_preference_signal(h.req(
            SetPreferenceSignalRequest {
                subject_id: "kim".into(),
                signal: veil_proto::common::v1::PreferenceSignalType::Gpc as i32,
                enabled: true,
                source: veil_proto::common::v1::CollectionMethod::Gpc as i32,
                observed_at: None,
            },
            BOT,
        ))
        .await?;
    let erase = EraseSubjectRequest {
        subject: by_id("kim"),
        request_id: "dsr-7".into(),
    };
    assert_eq!(
        code(client.erase_subject(h.req(erase.clone(), OFFICER)).await),
        Code::PermissionDenied
    );
    let outcome = client
        .erase_subject(h.req(erase.clone(), SERVICE))
        .await?
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(outcome.counts["consent_records"], 1);
    assert_eq!(outcome.counts["receipts"], 1);
    assert_eq!(outcome.counts["preference_signals"], 1);

    // Nothing in the consent schema names the subject any more.
    let db = h.db().await?;
    let linked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM consent_events WHERE subject_ref = $1)
              + (SELECT count(*) FROM receipts WHERE subject_ref = $1 OR jws IS NOT NULL)
              + (SELECT count(*) FROM preference_signals WHERE subject_ref = $1)",
    )
    .bind(&subject_ref)
    .fetch_one(&db)
    .await?;
    assert_eq!(linked, 0);
    // The proof stays: the record (purpose, notice version, time, state) is there, and
    // the receipt the subject kept still verifies against it.
    let kept: (String, i32, i32) =
        sqlx::query_as("SELECT purpose_key, notice_version, state FROM consent_events")
            .fetch_one(&db)
            .await?;
    assert_eq!(
        kept,
        (
            "marketing".into(),
            notice.version,
            ConsentState::Granted as i32
        )
    );
    let verified = client
        .verify_receipt(h.req(
            VerifyReceiptRequest {
                jws: receipt.jws.clone(),
            },
            BOT,
        ))
        .await?
        .into_inner();
    assert!(verified.valid, "{}", verified.failure_reason);
    assert!(verified.subject_erased);
    assert!(!verified.current);
    // The person is gone for consent decisions too: back to the default.
    let decided = h.check("kim", &["marketing"]).await?;
    assert_eq!(decided, vec![(false, DecisionReason::NoRecordOptIn as i32)]);

    // Erasure is idempotent and reported each time.
    let again = client
        .erase_subject(h.req(erase, SERVICE))
        .await?
        .into_inner();
    assert_eq!(again.outcome.unwrap().counts["consent_records"], 0);
    let completed: Vec<_> = h
        .outbox()
        .await?
        .into_iter()
        .filter_map(|(_, e)| match e.payload {
            Some(Payload::ConsentErasureCompleted(done)) => Some(done),
            _ => None,
        })
        .collect();
    assert_eq!(completed.len(), 2);
    assert_eq!(completed[0].request_id, "dsr-7");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retention_saga_erases_through_an_event() -> anyhow::Result<()> {
    use prost::Message as _;
    use veil_proto::common::v1::VeilService;
    use veil_proto::events::v1::{Event, RetentionErasureRequested};
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let granted = h.grant("lena", &["marketing"], &notice).await?;
    let subject_ref = granted.records[0].subject_ref.clone();
    let event_id = uuid::Uuid::now_v7().to_string();
    let event = Event {
        event_id: event_id.clone(),
        tenant_id: h.tenant.to_string(),
        subject_ref: subject_ref.clone(),
        request_id: "req-9".into(),
        payload: Some(Payload::RetentionErasureRequested(
            RetentionErasureRequested {
                request_id: "dsr-9".into(),
                expected_services: vec![VeilService::Consent as i32, VeilService::Vault as i32],
            },
        )),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event_id.as_str());
    let subject = h.env.events().subject("retention", "erasure_requested")?;
    h.env
        .nats
        .jetstream()
        .publish_with_headers(subject, headers, event.encode_to_vec().into())
        .await?
        .await?;
    let db = h.db().await?;
    let erased = veil_testkit::eventually(std::time::Duration::from_secs(15), || async {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM consent_events WHERE subject_ref = $1")
                .bind(&subject_ref)
                .fetch_one(&db)
                .await
                .ok()?;
        (left == 0).then_some(())
    })
    .await;
    assert!(erased.is_ok(), "the subject's records were unlinked");
    let completed = veil_testkit::eventually(std::time::Duration::from_secs(5), || async {
        h.outbox()
            .await
            .ok()?
            .into_iter()
            .find_map(|(_, e)| match e.payload {
                Some(Payload::ConsentErasureCompleted(done)) => Some((e.subject_ref, done)),
                _ => None,
            })
    })
    .await?;
    assert_eq!(completed.0, subject_ref);
    assert_eq!(completed.1.request_id, "dsr-9");
    assert_eq!(completed.1.outcome.unwrap().counts["consent_records"], 1);
    Ok(())
}
