//! Crypto-shredding: after `ShredSubject` no copy of the subject's ciphertexts opens,
//! not even rows restored from a copy taken before.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestVault, code, payloads};
use tonic::Code;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::SubjectSelector;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::events::v1::event::Payload;
use veil_proto::vault::v1::{
    DetokenizeRequest, GetRecordRequest, PutRecordRequest, ShredSubjectRequest, TokenizeItem,
    TokenizeRequest,
};

const OFFICER: &[Role] = &[Role::PrivacyOfficer];

fn put(subject: &str, value: &str) -> PutRecordRequest {
    PutRecordRequest {
        subject_id: subject.into(),
        category: "contact".into(),
        field: "email".into(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn get(record_id: &str) -> GetRecordRequest {
    GetRecordRequest {
        record_id: record_id.into(),
        purpose: "dsr_access".into(),
    }
}

fn by_id(subject: &str) -> Option<SubjectSelector> {
    Some(SubjectSelector {
        subject: Some(Subject::SubjectId(subject.into())),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn shredded_subjects_ciphertexts_never_open_again_even_restored_from_a_copy()
-> anyhow::Result<()> {
    // No clock skew allowed: the subject's new data comes right after the shred.
    let env = veil_testkit::TestEnv::new().await?;
    let master_key = common::random_key();
    let mut settings = common::config(&env, &[(1, &master_key)]);
    settings.service.clock_skew_ms = 0;
    let mut vault = TestVault::start_with(env, settings, master_key).await?;
    let tenant = TenantId::generate();
    let mut ids = Vec::new();
    for (subject, value) in [
        ("user-1", "a@example.com"),
        ("user-1", "b@example.com"),
        ("user-1", "c@example.com"),
        ("user-2", "z@example.com"),
    ] {
        let record = vault
            .client
            .put_record(vault.call(Some(tenant), OFFICER, put(subject, value)))
            .await?
            .into_inner()
            .record
            .unwrap();
        ids.push(record.record_id);
    }
    let tokens: Vec<String> = vault
        .client
        .tokenize(vault.call(
            Some(tenant),
            &[Role::Service],
            TokenizeRequest {
                items: vec![
                    TokenizeItem {
                        subject_id: "user-1".into(),
                        entity_type: "EMAIL_ADDRESS".into(),
                        value: "a@example.com".into(),
                    },
                    TokenizeItem {
                        subject_id: "user-1".into(),
                        entity_type: "PERSON".into(),
                        value: "Alice".into(),
                    },
                ],
                store_value: true,
                started_at: None,
            },
        ))
        .await?
        .into_inner()
        .tokens
        .into_iter()
        .map(|t| t.token)
        .collect();

    // The "backup": a copy of every ciphertext row, taken before the shred.
    let db = vault.db().await?;
    sqlx::query("CREATE TABLE backup_records AS SELECT * FROM records")
        .execute(&db)
        .await?;
    sqlx::query("CREATE TABLE backup_tokens AS SELECT * FROM tokens")
        .execute(&db)
        .await?;

    let shredded = vault
        .client
        .shred_subject(vault.call(
            Some(tenant),
            &[Role::Service],
            ShredSubjectRequest {
                subject: by_id("user-1"),
                request_id: "dsr-42".into(),
                reason: "erasure request".into(),
            },
        ))
        .await?
        .into_inner();
    let counts = shredded.outcome.unwrap().counts;
    assert_eq!(
        (counts["records"], counts["tokens"], counts["data_keys"]),
        (3, 2, 1)
    );

    // Restore the old rows over whatever is there now.
    sqlx::query("DELETE FROM records").execute(&db).await?;
    sqlx::query("INSERT INTO records SELECT * FROM backup_records")
        .execute(&db)
        .await?;
    sqlx::query("INSERT INTO tokens SELECT * FROM backup_tokens ON CONFLICT DO NOTHING")
        .execute(&db)
        .await?;
    for id in &ids[..3] {
        assert_eq!(
            code(
                vault
                    .client
                    .get_record(vault.call(Some(tenant), OFFICER, get(id)))
                    .await
            ),
            Code::FailedPrecondition
        );
    }
    let detokenized = vault
        .client
        .detokenize(vault.call(
            Some(tenant),
            OFFICER,
            DetokenizeRequest {
                tokens: tokens.clone(),
                purpose: "dsr_access".into(),
                subject: None,
            },
        ))
        .await?
        .into_inner();
    assert!(detokenized.results.iter().all(|r| !r.found));

    // The subject comes back with new data: a new key, which opens nothing old even when
    // an attacker points the restored rows at it.
    let fresh = vault
        .client
        .put_record(vault.call(Some(tenant), OFFICER, put("user-1", "new@example.com")))
        .await?
        .into_inner()
        .record
        .unwrap();
    sqlx::query(
        "UPDATE records SET key_id = (SELECT key_id FROM records WHERE record_id = $1::uuid)
         WHERE record_id = ANY($2::uuid[])",
    )
    .bind(&fresh.record_id)
    .bind(
        ids[..3]
            .iter()
            .map(|i| uuid::Uuid::parse_str(i).unwrap())
            .collect::<Vec<_>>(),
    )
    .execute(&db)
    .await?;
    for id in &ids[..3] {
        assert_eq!(
            code(
                vault
                    .client
                    .get_record(vault.call(Some(tenant), OFFICER, get(id)))
                    .await
            ),
            Code::DataLoss
        );
    }
    let got = vault
        .client
        .get_record(vault.call(Some(tenant), OFFICER, get(&fresh.record_id)))
        .await?;
    assert_eq!(got.into_inner().value, b"new@example.com");
    let other = vault
        .client
        .get_record(vault.call(Some(tenant), OFFICER, get(&ids[3])))
        .await?;
    assert_eq!(
        other.into_inner().value,
        b"z@example.com",
        "other subjects untouched"
    );

    let events = vault.events().await?;
    let shreds = payloads(&events, |p| match p {
        Payload::VaultSubjectShredded(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(shreds.len(), 1);
    assert_eq!(shreds[0].request_id, "dsr-42");
    assert_eq!(
        (
            shreds[0].records_destroyed,
            shreds[0].tokens_destroyed,
            shreds[0].data_keys_destroyed
        ),
        (3, 2, 1)
    );
    let event = events
        .iter()
        .find(|e| matches!(e.payload, Some(Payload::VaultSubjectShredded(_))))
        .unwrap();
    assert_eq!(event.subject_ref, shredded.subject_ref);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn shred_is_idempotent_and_checks_its_input() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let (tenant, other) = (TenantId::generate(), TenantId::generate());
    let record = vault
        .client
        .put_record(vault.call(Some(tenant), OFFICER, put("user-1", "a@example.com")))
        .await?
        .into_inner()
        .record
        .unwrap();
    let shred = |selector| ShredSubjectRequest {
        subject: selector,
        request_id: String::new(),
        reason: String::new(),
    };
    // Another tenant naming the same subject shreds nothing of ours.
    let theirs = vault
        .client
        .shred_subject(vault.call(Some(other), OFFICER, shred(by_id("user-1"))))
        .await?
        .into_inner();
    assert_eq!(theirs.outcome.unwrap().counts["data_keys"], 0);
    let got = vault
        .client
        .get_record(vault.call(Some(tenant), OFFICER, get(&record.record_id)))
        .await?;
    assert_eq!(got.into_inner().value, b"a@example.com");

    let by_ref = Some(SubjectSelector {
        subject: Some(Subject::SubjectRef(record.subject_ref.clone())),
    });
    let first = vault
        .client
        .shred_subject(vault.call(Some(tenant), OFFICER, shred(by_ref.clone())))
        .await?
        .into_inner();
    assert_eq!(first.outcome.unwrap().counts["records"], 1);
    let again = vault
        .client
        .shred_subject(vault.call(Some(tenant), OFFICER, shred(by_ref)))
        .await?
        .into_inner();
    assert_eq!(again.outcome.unwrap().counts["data_keys"], 0);

    let bad_ref = Some(SubjectSelector {
        subject: Some(Subject::SubjectRef("ABC".into())),
    });
    assert_eq!(
        code(
            vault
                .client
                .shred_subject(vault.call(Some(tenant), OFFICER, shred(bad_ref)))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            vault
                .client
                .shred_subject(vault.call(Some(tenant), OFFICER, shred(None)))
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            vault
                .client
                .shred_subject(vault.call(Some(tenant), &[Role::Auditor], shred(by_id("user-1"))))
                .await
        ),
        Code::PermissionDenied
    );
    Ok(())
}
