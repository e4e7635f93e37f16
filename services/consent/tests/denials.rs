//! Refusals are records too: a denial gets a receipt and an event, and decides.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use veil_proto::common::v1::DecisionReason;
use veil_proto::consent::v1::*;
use veil_proto::events::v1::event::Payload;

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_recorded_receipted_and_announced() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let deny = RecordConsentRequest {
        choice: ConsentChoice::Deny as i32,
        ..grant("mia", &["marketing"], &notice)
    };
    let denied = h
        .client
        .clone()
        .record_consent(h.req(deny, BOT))
        .await?
        .into_inner();
    let record = &denied.records[0];
    assert_eq!(record.state, ConsentState::Denied as i32);
    assert_eq!(record.event_type, ConsentEventType::Denied as i32);
    assert!(record.expires_at.is_none());
    let verified = h
        .client
        .clone()
        .verify_receipt(h.req(
            VerifyReceiptRequest {
                jws: denied.receipt.unwrap().jws,
            },
            BOT,
        ))
        .await?
        .into_inner();
    assert!(verified.valid && verified.current);
    assert_eq!(
        h.check("mia", &["marketing"]).await?,
        vec![(false, DecisionReason::Denied as i32)]
    );
    // A refusal cannot be withdrawn (nothing is granted), but a later grant replaces it.
    assert_eq!(
        code(h.withdraw("mia", &["marketing"]).await),
        tonic::Code::FailedPrecondition
    );
    let granted = h.grant("mia", &["marketing"], &notice).await?;
    assert_eq!(
        granted.records[0].event_type,
        ConsentEventType::Granted as i32
    );
    assert_eq!(granted.records[0].supersedes_record_id, record.record_id);
    let events = h.outbox().await?;
    let denied_event = events
        .iter()
        .find_map(|(subject, e)| match &e.payload {
            Some(Payload::ConsentDenied(changed)) => Some((subject.clone(), changed.clone())),
            _ => None,
        })
        .unwrap();
    assert!(denied_event.0.ends_with(".consent.denied"));
    assert_eq!(denied_event.1.record_ids, vec![record.record_id.clone()]);
    assert_eq!(denied_event.1.notice_id, notice.notice_id);
    assert!(denied_event.1.expires_at.is_none());
    Ok(())
}
