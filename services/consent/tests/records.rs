//! Consent records and receipts: grant, verify, check, withdraw, bad input, idempotency.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use veil_core::types::TenantId;
use veil_proto::common::v1::{DecisionReason, Jurisdiction, LegalBasis};
use veil_proto::consent::v1::*;

const GRANTED: (bool, i32) = (true, DecisionReason::Granted as i32);

async fn verify(h: &Harness, jws: &str) -> anyhow::Result<VerifyReceiptResponse> {
    Ok(h.client
        .clone()
        .verify_receipt(h.req(VerifyReceiptRequest { jws: jws.into() }, BOT))
        .await?
        .into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_returns_a_receipt_that_verifies_and_allows_processing() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let before = h.check("alice", &["marketing"]).await?;
    assert_eq!(before, vec![(false, DecisionReason::NoRecordOptIn as i32)]);

    let granted = h
        .grant("alice", &["marketing", "model_training"], &notice)
        .await?;
    assert_eq!(granted.records.len(), 2);
    let record = &granted.records[0];
    assert_eq!(record.state, ConsentState::Granted as i32);
    assert_eq!(record.event_type, ConsentEventType::Granted as i32);
    assert_eq!(record.notice_version, notice.version);
    assert_eq!(record.notice_sha256, notice.content_sha256);
    assert_eq!(record.language, "en");
    assert_eq!(record.legal_basis, LegalBasis::Consent as i32);
    assert_eq!(
        record.pii_categories,
        vec!["conversation_content".to_string()]
    );
    assert!(!record.withdrawal_method.is_empty());
    assert_eq!(
        record.subject_ref.len(),
        64,
        "records hold the pseudonym only"
    );
    let receipt = granted.receipt.unwrap();
    assert_eq!(record.receipt_id, receipt.receipt_id);

    let verified = verify(&h, &receipt.jws).await?;
    assert!(verified.valid, "{}", verified.failure_reason);
    assert!(verified.current);
    assert_eq!(verified.key_id, receipt.key_id);
    assert_eq!(verified.record_ids.len(), 2);
    let payload = verified.payload.unwrap();
    assert!(payload.fields.contains_key("piiProcessing"));
    assert!(payload.fields.contains_key("partyIdentification"));

    // The JWKS names the receipt key.
    let jwks = h
        .client
        .clone()
        .get_receipt_keys(h.req(GetReceiptKeysRequest {}, BOT))
        .await?
        .into_inner()
        .jwks_json;
    assert!(
        jwks.contains(&format!("\"kid\":\"{}\"", receipt.key_id)),
        "{jwks}"
    );

    let decisions = h.check("alice", &["marketing", "model_training"]).await?;
    assert_eq!(decisions, vec![GRANTED, GRANTED]);

    // Granting again re-affirms.
    let again = h.grant("alice", &["marketing"], &notice).await?;
    assert_eq!(
        again.records[0].event_type,
        ConsentEventType::Reaffirmed as i32
    );
    assert_eq!(again.records[0].supersedes_record_id, record.record_id);
    // The first receipt still verifies but is no longer current for marketing.
    let old = verify(&h, &receipt.jws).await?;
    assert!(old.valid);
    assert!(!old.current);
    assert_eq!(
        h.outbox_kinds()
            .await?
            .iter()
            .filter(|k| *k == "granted")
            .count(),
        2
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn withdrawal_is_one_call_and_holds_for_the_next_check() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    h.purpose(consent_purpose("analytics")).await?;
    let notice = h.notice().await?;
    // Never granted: nothing to withdraw, and nothing written.
    assert_eq!(
        code(h.withdraw("bob", &["marketing"]).await),
        Code::FailedPrecondition
    );
    assert_eq!(code(h.withdraw("bob", &[]).await), Code::FailedPrecondition);
    h.grant("bob", &["marketing", "analytics"], &notice).await?;
    assert_eq!(
        h.check("bob", &["marketing", "analytics"]).await?,
        vec![GRANTED, GRANTED]
    );

    let withdrawn = h.withdraw("bob", &[]).await?;
    assert_eq!(
        withdrawn.records.len(),
        2,
        "empty list withdraws every grant"
    );
    assert!(
        withdrawn
            .records
            .iter()
            .all(|r| r.state == ConsentState::Withdrawn as i32)
    );
    assert_eq!(withdrawn.records[0].notice_version, notice.version);
    let receipt = withdrawn.receipt.unwrap();
    assert!(verify(&h, &receipt.jws).await?.valid);
    let after = h.check("bob", &["marketing", "analytics"]).await?;
    assert_eq!(after, vec![(false, DecisionReason::Withdrawn as i32); 2]);
    // Withdrawing again: nothing is granted any more.
    assert_eq!(
        code(h.withdraw("bob", &["marketing"]).await),
        Code::FailedPrecondition
    );
    let kinds = h.outbox_kinds().await?;
    assert_eq!(kinds.iter().filter(|k| *k == "withdrawn").count(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_consent_requests_fail_precisely_and_write_nothing() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut contract = consent_purpose("support");
    contract.legal_basis = LegalBasis::Contract as i32;
    h.purpose(contract).await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let mut client = h.client.clone();
    let past = prost_types::Timestamp {
        seconds: time::OffsetDateTime::now_utc().unix_timestamp() - 10,
        nanos: 0,
    };
    let cases: Vec<(RecordConsentRequest, Code, &str)> = vec![
        (
            grant("c", &["marketing", "nope"], &notice),
            Code::NotFound,
            "purpose nope",
        ),
        (
            RecordConsentRequest {
                notice_id: uuid::Uuid::now_v7().to_string(),
                ..grant("c", &["marketing"], &notice)
            },
            Code::NotFound,
            "notice",
        ),
        (
            RecordConsentRequest {
                expires_at: Some(past),
                ..grant("c", &["marketing"], &notice)
            },
            Code::InvalidArgument,
            "expires_at",
        ),
        (
            RecordConsentRequest {
                notice_id: String::new(),
                ..grant("c", &["marketing"], &notice)
            },
            Code::InvalidArgument,
            "notice_id",
        ),
        (
            grant("c", &["marketing", "support"], &notice),
            Code::FailedPrecondition,
            "support",
        ),
        (
            grant("", &["marketing"], &notice),
            Code::InvalidArgument,
            "subject_id",
        ),
        (
            grant("c", &[], &notice),
            Code::InvalidArgument,
            "purpose_keys",
        ),
        (
            RecordConsentRequest {
                choice: 0,
                ..grant("c", &["marketing"], &notice)
            },
            Code::InvalidArgument,
            "choice",
        ),
        (
            RecordConsentRequest {
                collection_method: 0,
                ..grant("c", &["marketing"], &notice)
            },
            Code::InvalidArgument,
            "collection_method",
        ),
    ];
    for (request, expected, needle) in cases {
        let status = client
            .record_consent(h.req(request, BOT))
            .await
            .expect_err(needle);
        assert_eq!(status.code(), expected, "{needle}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{needle}: {}",
            status.message()
        );
    }
    // Outside the GDPR a grant without a notice is accepted.
    let ccpa = RecordConsentRequest {
        notice_id: String::new(),
        jurisdiction: Jurisdiction::UsCaCcpa as i32,
        ..grant("c", &["marketing"], &notice)
    };
    client.record_consent(h.req(ccpa, BOT)).await?;
    let db = h.db().await?;
    let (records, receipts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM consent_events), (SELECT count(*) FROM receipts)",
    )
    .fetch_one(&db)
    .await?;
    assert_eq!(
        (records, receipts),
        (1, 1),
        "only the valid call wrote anything"
    );
    // Records are append-only, even for the database owner.
    let tampered = sqlx::query("UPDATE consent_events SET state = 3")
        .execute(&db)
        .await;
    assert!(tampered.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_grant_returns_the_first_result() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let mut client = h.client.clone();
    let request = RecordConsentRequest {
        idempotency_key: "retry-1".into(),
        ..grant("dora", &["marketing"], &notice)
    };
    let first = client
        .record_consent(h.req(request.clone(), BOT))
        .await?
        .into_inner();
    let second = client
        .record_consent(h.req(request.clone(), BOT))
        .await?
        .into_inner();
    assert_eq!(first.receipt, second.receipt);
    assert_eq!(first.records[0].record_id, second.records[0].record_id);
    let other = RecordConsentRequest {
        purpose_keys: vec!["model_training".into()],
        ..request
    };
    let status = client
        .record_consent(h.req(other, BOT))
        .await
        .expect_err("reused key");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("idempotency_key"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_grant_is_an_expired_decision() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    let request = RecordConsentRequest {
        expires_at: Some(veil_core::convert::timestamp(soon)),
        ..grant("erin", &["marketing"], &notice)
    };
    let granted = h
        .client
        .clone()
        .record_consent(h.req(request, BOT))
        .await?
        .into_inner();
    assert!(granted.records[0].expires_at.is_some());
    assert_eq!(h.check("erin", &["marketing"]).await?, vec![GRANTED]);
    let expired = veil_testkit::eventually(Duration::from_secs(10), || async {
        let decision = h.check("erin", &["marketing"]).await.ok()?;
        (decision == vec![(false, DecisionReason::Expired as i32)]).then_some(())
    })
    .await;
    assert!(expired.is_ok(), "the grant expired");
    let receipt = granted.receipt.unwrap();
    let verified = verify(&h, &receipt.jws).await?;
    assert!(
        verified.valid && !verified.current,
        "an expired receipt is valid, not current"
    );
    // Withdrawing an expired grant: nothing is granted.
    assert_eq!(
        code(h.withdraw("erin", &["marketing"]).await),
        Code::FailedPrecondition
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn receipts_and_records_stay_within_their_tenant() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(consent_purpose("marketing")).await?;
    let notice = h.notice().await?;
    let granted = h.grant("frank", &["marketing"], &notice).await?;
    let jws = granted.receipt.unwrap().jws;
    let other = TenantId::generate();
    let mut client = h.client.clone();
    // Another tenant: the same subject id is another person, the notice is unknown, and
    // the receipt is not theirs.
    let foreign = client
        .verify_receipt(h.req_as(other, VerifyReceiptRequest { jws: jws.clone() }, BOT))
        .await?
        .into_inner();
    assert!(!foreign.valid);
    assert_eq!(foreign.failure_reason, "unknown receipt");
    let status = client
        .record_consent(h.req_as(other, grant("frank", &["model_training"], &notice), BOT))
        .await
        .expect_err("foreign notice");
    assert_eq!(status.code(), Code::NotFound);
    let foreign_check = client
        .check_consent(h.req_as(
            other,
            CheckConsentRequest {
                subject: Some(veil_proto::common::v1::SubjectSelector {
                    subject: Some(
                        veil_proto::common::v1::subject_selector::Subject::SubjectId(
                            "frank".into(),
                        ),
                    ),
                }),
                purpose_keys: vec!["marketing".into()],
                jurisdiction: 0,
            },
            BOT,
        ))
        .await;
    assert_eq!(
        code(foreign_check),
        Code::NotFound,
        "another tenant has no such purpose"
    );

    // A tampered receipt fails the signature check.
    let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
    parts[1] = parts[1].replacen('e', "f", 1);
    let tampered = verify(&h, &parts.join(".")).await?;
    assert!(!tampered.valid);
    assert_eq!(tampered.failure_reason, "bad signature");
    let garbage = verify(&h, "not.a.receipt").await?;
    assert!(!garbage.valid);
    Ok(())
}
