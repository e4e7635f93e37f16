//! `ExportSubject`: a subject's decrypted records and tokens, streamed in chunks of
//! complete JSON Lines.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{TestVault, code, payloads};
use tonic::Code;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::SubjectSelector;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::events::v1::RevealKind;
use veil_proto::events::v1::event::Payload;
use veil_proto::vault::v1::{
    ExportSubjectRequest, PutRecordRequest, TokenizeItem, TokenizeRequest,
};

fn export(subject: &str) -> ExportSubjectRequest {
    ExportSubjectRequest {
        subject: Some(SubjectSelector {
            subject: Some(Subject::SubjectId(subject.into())),
        }),
        request_id: "dsr-7".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_every_record_and_token_of_the_subject_in_chunks() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let mut expected = BTreeSet::new();
    for i in 0..120 {
        let value = format!("note {i}: {}", "x".repeat(1200));
        vault
            .client
            .put_record(vault.call(
                Some(tenant),
                &[Role::Service],
                PutRecordRequest {
                    subject_id: "user-1".into(),
                    category: "notes".into(),
                    field: "text".into(),
                    value: value.clone().into_bytes(),
                    ..Default::default()
                },
            ))
            .await?;
        expected.insert(value);
    }
    vault
        .client
        .put_record(vault.call(
            Some(tenant),
            &[Role::Service],
            PutRecordRequest {
                subject_id: "user-2".into(),
                category: "notes".into(),
                field: "text".into(),
                value: b"someone else".to_vec(),
                ..Default::default()
            },
        ))
        .await?;
    vault
        .client
        .tokenize(vault.call(
            Some(tenant),
            &[Role::Service],
            TokenizeRequest {
                items: vec![
                    TokenizeItem {
                        subject_id: "user-1".into(),
                        entity_type: "EMAIL_ADDRESS".into(),
                        value: "one@example.com".into(),
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
        .await?;

    let mut stream = vault
        .client
        .export_subject(vault.call(Some(tenant), &[Role::Service], export("user-1")))
        .await?
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(message) = stream.message().await? {
        chunks.push(message.chunk.unwrap());
    }
    assert!(
        chunks.len() > 2,
        "120 records of ~1.2 KB need several chunks"
    );
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.sequence, i as i64);
        assert_eq!(chunk.last, i == chunks.len() - 1);
        assert!(chunk.json_lines.ends_with(b"\n"), "complete lines only");
    }
    let mut records = BTreeSet::new();
    let mut tokens = Vec::new();
    for chunk in &chunks {
        for line in String::from_utf8(chunk.json_lines.clone())?.lines() {
            let value: serde_json::Value = serde_json::from_str(line)?;
            match chunk.section.as_str() {
                "vault_records" => {
                    assert_eq!(value["field"], "text");
                    records.insert(value["value"].as_str().unwrap().to_string());
                }
                "vault_tokens" => tokens.push(value["value"].as_str().unwrap().to_string()),
                other => panic!("unexpected section {other}"),
            }
        }
    }
    assert_eq!(records, expected);
    tokens.sort();
    assert_eq!(tokens, vec!["Alice", "one@example.com"]);

    let reveals = payloads(&vault.events().await?, |p| match p {
        Payload::VaultRevealed(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(reveals.len(), 1);
    assert_eq!(reveals[0].kind, RevealKind::Export as i32);
    assert_eq!(reveals[0].counts["records"], 120);
    assert_eq!(reveals[0].counts["tokens"], 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_subjects_and_other_roles_are_refused() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    assert_eq!(
        code(
            vault
                .client
                .export_subject(vault.call(Some(tenant), &[Role::Service], export("nobody")))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            vault
                .client
                .export_subject(vault.call(Some(tenant), &[Role::PrivacyOfficer], export("nobody")))
                .await
        ),
        Code::PermissionDenied
    );
    Ok(())
}
