//! Records: encryption at rest, AAD binding, tampering, tenant isolation, bad input,
//! replacement, deletion, listing and their events.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestVault, code, payloads, status};
use tonic::Code;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::{PageRequest, SubjectSelector, subject_selector::Subject};
use veil_proto::events::v1::RevealKind;
use veil_proto::events::v1::event::Payload;
use veil_proto::vault::v1::{
    DeleteRecordRequest, GetRecordRequest, ListRecordsRequest, PutRecordRequest,
};

const OFFICER: &[Role] = &[Role::PrivacyOfficer];

fn put(subject: &str, field: &str, value: &[u8]) -> PutRecordRequest {
    PutRecordRequest {
        subject_id: subject.into(),
        category: "contact".into(),
        field: field.into(),
        value: value.to_vec(),
        content_type: "text/plain".into(),
        purpose_keys: vec!["support".into()],
        labels: [("source".to_string(), "chat".to_string())].into(),
        ..Default::default()
    }
}

fn get(record_id: &str) -> GetRecordRequest {
    GetRecordRequest {
        record_id: record_id.into(),
        purpose: "dsr_access".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_only_ciphertext_and_reveals_with_an_audited_purpose() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let stored = vault
        .client
        .put_record(vault.call(
            Some(tenant),
            &[Role::Service],
            put("user-1", "email", b"alice@example.com"),
        ))
        .await?
        .into_inner();
    assert!(stored.created);
    let record = stored.record.unwrap();
    assert_eq!(record.size_bytes, 17);
    assert_eq!(record.tenant_key_version, 1);
    assert_eq!(record.subject_ref.len(), 64);

    // Nothing readable at rest: not the value, not the subject id.
    let db = vault.db().await?;
    let dump: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT convert_to(r::text, 'UTF8') FROM records r UNION ALL
         SELECT convert_to(k::text, 'UTF8') FROM subject_keys k",
    )
    .fetch_all(&db)
    .await?;
    for row in &dump {
        let text = String::from_utf8_lossy(row);
        assert!(!text.contains("alice"), "plaintext at rest: {text}");
        assert!(!text.contains("user-1"), "subject id at rest: {text}");
    }
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM records")
        .fetch_one(&db)
        .await?;
    assert_eq!(sealed.len(), 12 + 17 + 16, "nonce || ciphertext || tag");

    let got = vault
        .client
        .get_record(vault.call(Some(tenant), OFFICER, get(&record.record_id)))
        .await?
        .into_inner();
    assert_eq!(got.value, b"alice@example.com");
    assert_eq!(got.record.unwrap().labels["source"], "chat");

    let events = vault.events().await?;
    let stored = payloads(&events, |p| match p {
        Payload::VaultRecordStored(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record_id, record.record_id);
    let reveals = payloads(&events, |p| match p {
        Payload::VaultRevealed(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(reveals.len(), 1);
    assert_eq!(reveals[0].kind, RevealKind::GetRecord as i32);
    assert_eq!(reveals[0].purpose, "dsr_access");
    assert_eq!(reveals[0].counts["email"], 1);
    for event in &events {
        assert_eq!(event.tenant_id, tenant.to_string());
        assert_eq!(event.subject_ref, record.subject_ref);
        let bytes = prost::Message::encode_to_vec(event);
        assert!(!String::from_utf8_lossy(&bytes).contains("alice"));
        assert!(!String::from_utf8_lossy(&bytes).contains("user-1"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ciphertext_copied_to_another_row_or_tampered_does_not_decrypt() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let mut ids = Vec::new();
    for (subject, field, value) in [
        ("user-1", "email", "a@example.com"),
        ("user-1", "email", "b@example.com"),
        ("user-1", "phone", "+4930123456"),
        ("user-2", "email", "c@example.com"),
    ] {
        let record = vault
            .client
            .put_record(vault.call(Some(tenant), OFFICER, put(subject, field, value.as_bytes())))
            .await?
            .into_inner()
            .record
            .unwrap();
        ids.push(record.record_id);
    }
    let db = vault.db().await?;
    // Copy record 0's ciphertext into the other rows: another record id, another field,
    // another subject. Each must fail authentication rather than reveal record 0.
    for target in &ids[1..] {
        sqlx::query(
            "UPDATE records SET sealed = (SELECT sealed FROM records WHERE record_id = $1::uuid)
             WHERE record_id = $2::uuid",
        )
        .bind(&ids[0])
        .bind(target)
        .execute(&db)
        .await?;
        let failure = status(
            vault
                .client
                .get_record(vault.call(Some(tenant), OFFICER, get(target)))
                .await,
        );
        assert_eq!(failure.code(), Code::DataLoss, "{failure:?}");
        assert!(!failure.message().contains("a@example.com"));
    }
    // Record 0 itself still opens; one flipped bit or a truncation does not.
    let got = vault
        .client
        .get_record(vault.call(Some(tenant), OFFICER, get(&ids[0])))
        .await?;
    assert_eq!(got.into_inner().value, b"a@example.com");
    sqlx::query("UPDATE records SET sealed = set_byte(sealed, 20, get_byte(sealed, 20) # 1) WHERE record_id = $1::uuid")
        .bind(&ids[0])
        .execute(&db)
        .await?;
    assert_eq!(
        code(
            vault
                .client
                .get_record(vault.call(Some(tenant), OFFICER, get(&ids[0])))
                .await
        ),
        Code::DataLoss
    );
    sqlx::query(
        "UPDATE records SET sealed = substring(sealed from 1 for 28) WHERE record_id = $1::uuid",
    )
    .bind(&ids[0])
    .execute(&db)
    .await?;
    assert_eq!(
        code(
            vault
                .client
                .get_record(vault.call(Some(tenant), OFFICER, get(&ids[0])))
                .await
        ),
        Code::DataLoss
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_ids_are_not_found() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let (mine, theirs) = (TenantId::generate(), TenantId::generate());
    let record = vault
        .client
        .put_record(vault.call(
            Some(mine),
            OFFICER,
            put("user-1", "email", b"x@example.com"),
        ))
        .await?
        .into_inner()
        .record
        .unwrap();
    let id = record.record_id.clone();
    assert_eq!(
        code(
            vault
                .client
                .get_record(vault.call(Some(theirs), OFFICER, get(&id)))
                .await
        ),
        Code::NotFound
    );
    let mut replace = put("user-1", "email", b"evil");
    replace.record_id = id.clone();
    assert_eq!(
        code(
            vault
                .client
                .put_record(vault.call(Some(theirs), OFFICER, replace))
                .await
        ),
        Code::NotFound
    );
    let deleted = vault
        .client
        .delete_record(vault.call(
            Some(theirs),
            OFFICER,
            DeleteRecordRequest {
                record_id: id.clone(),
                reason: String::new(),
            },
        ))
        .await?
        .into_inner();
    assert!(!deleted.deleted);
    let listed = vault
        .client
        .list_records(vault.call(Some(theirs), OFFICER, ListRecordsRequest::default()))
        .await?
        .into_inner();
    assert!(listed.records.is_empty());
    // Still intact for its owner.
    let got = vault
        .client
        .get_record(vault.call(Some(mine), OFFICER, get(&id)))
        .await?;
    assert_eq!(got.into_inner().value, b"x@example.com");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_precise_codes_and_stores_nothing() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let cases: Vec<(PutRecordRequest, Code, &str)> = vec![
        (put("user-1", "email", b""), Code::InvalidArgument, "value"),
        (
            put("user-1", "email", &vec![b'x'; 1024 * 1024 + 1]),
            Code::ResourceExhausted,
            "value",
        ),
        (put("", "email", b"x"), Code::InvalidArgument, "subject_id"),
        (
            put("user-1", "E Mail", b"x"),
            Code::InvalidArgument,
            "field",
        ),
        (
            PutRecordRequest {
                record_id: "not-a-uuid".into(),
                ..put("user-1", "email", b"x")
            },
            Code::InvalidArgument,
            "record_id",
        ),
        (
            PutRecordRequest {
                record_id: uuid::Uuid::now_v7().to_string(),
                ..put("user-1", "email", b"x")
            },
            Code::NotFound,
            "record",
        ),
    ];
    for (request, expected, field) in cases {
        let failure = status(
            vault
                .client
                .put_record(vault.call(Some(tenant), OFFICER, request))
                .await,
        );
        assert_eq!(failure.code(), expected, "{failure:?}");
        assert!(failure.message().contains(field), "{failure:?}");
    }
    let failure = status(
        vault
            .client
            .get_record(vault.call(
                Some(tenant),
                OFFICER,
                GetRecordRequest {
                    record_id: uuid::Uuid::now_v7().to_string(),
                    purpose: String::new(),
                },
            ))
            .await,
    );
    assert_eq!(failure.code(), Code::InvalidArgument);
    assert!(failure.message().contains("purpose"));
    // Roles and credentials.
    assert_eq!(
        code(
            vault
                .client
                .put_record(vault.call(Some(tenant), &[Role::Agent], put("u", "email", b"x")))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            vault
                .client
                .get_record(vault.call(
                    Some(tenant),
                    &[Role::Service],
                    get(&uuid::Uuid::now_v7().to_string())
                ))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            vault
                .client
                .put_record(vault.call(None, OFFICER, put("u", "email", b"x")))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            vault
                .client
                .put_record(tonic::Request::new(put("u", "email", b"x")))
                .await
        ),
        Code::Unauthenticated
    );
    let db = vault.db().await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&db)
        .await?;
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_keys")
        .fetch_one(&db)
        .await?;
    assert_eq!((rows, keys), (0, 0));
    assert!(vault.events().await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn replaces_deletes_and_lists_with_paging() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let mut ids = Vec::new();
    for i in 0..5 {
        let subject = if i < 3 { "user-1" } else { "user-2" };
        let record = vault
            .client
            .put_record(vault.call(
                Some(tenant),
                OFFICER,
                put(subject, "email", format!("v{i}").as_bytes()),
            ))
            .await?
            .into_inner()
            .record
            .unwrap();
        ids.push(record.record_id);
    }
    let mut replace = put("user-1", "email", b"replaced");
    replace.record_id = ids[0].clone();
    let replaced = vault
        .client
        .put_record(vault.call(Some(tenant), OFFICER, replace.clone()))
        .await?
        .into_inner();
    assert!(!replaced.created);
    let got = vault
        .client
        .get_record(vault.call(Some(tenant), OFFICER, get(&ids[0])))
        .await?;
    assert_eq!(got.into_inner().value, b"replaced");
    // Another subject cannot take the record over.
    replace.subject_id = "user-2".into();
    assert_eq!(
        code(
            vault
                .client
                .put_record(vault.call(Some(tenant), OFFICER, replace))
                .await
        ),
        Code::NotFound
    );

    let user1 = SubjectSelector {
        subject: Some(Subject::SubjectId("user-1".into())),
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = vault
            .client
            .list_records(vault.call(
                Some(tenant),
                &[Role::Auditor],
                ListRecordsRequest {
                    subject: Some(user1.clone()),
                    page: Some(PageRequest {
                        page_size: 2,
                        page_token: token.clone(),
                    }),
                    ..Default::default()
                },
            ))
            .await?
            .into_inner();
        seen.extend(page.records.into_iter().map(|r| r.record_id));
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ids[..3].to_vec());

    let delete = |id: &str| DeleteRecordRequest {
        record_id: id.into(),
        reason: "customer asked".into(),
    };
    let first = vault
        .client
        .delete_record(vault.call(Some(tenant), &[Role::Service], delete(&ids[1])))
        .await?;
    assert!(first.into_inner().deleted);
    let again = vault
        .client
        .delete_record(vault.call(Some(tenant), &[Role::Service], delete(&ids[1])))
        .await?;
    assert!(!again.into_inner().deleted);
    assert_eq!(
        code(
            vault
                .client
                .get_record(vault.call(Some(tenant), OFFICER, get(&ids[1])))
                .await
        ),
        Code::NotFound
    );
    let count: i64 = sqlx::query_scalar(
        "SELECT record_count FROM subject_keys ORDER BY record_count DESC LIMIT 1",
    )
    .fetch_one(&vault.db().await?)
    .await?;
    assert_eq!(
        count, 2,
        "user-1 keeps two records after the replace and the delete"
    );
    let deleted = payloads(&vault.events().await?, |p| match p {
        Payload::VaultRecordDeleted(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].record_id, ids[1]);
    Ok(())
}
