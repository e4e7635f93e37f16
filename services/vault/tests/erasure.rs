//! The erasure saga over NATS: `retention.erasure_requested` shreds the subject and the
//! vault answers with `vault.erasure_completed`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestVault, code, outbox, payloads};
use tonic::Code;
use veil_core::emit::{EventContext, emit};
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::VeilService;
use veil_proto::events::v1::RetentionErasureRequested;
use veil_proto::events::v1::event::Payload;
use veil_proto::vault::v1::{GetRecordRequest, PutRecordRequest};
use veil_testkit::eventually;

#[tokio::test(flavor = "multi_thread")]
async fn erasure_requested_shreds_the_subject_and_reports_completion() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let record = vault
        .client
        .put_record(vault.call(
            Some(tenant),
            &[Role::Service],
            PutRecordRequest {
                subject_id: "user-1".into(),
                category: "contact".into(),
                field: "email".into(),
                value: b"a@example.com".to_vec(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .record
        .unwrap();

    // The retention service's event, published through the real relay and NATS (it is
    // written to the vault's outbox only because no retention service runs here).
    let db = vault.db().await?;
    emit(
        &db,
        &vault.env.events(),
        &EventContext {
            tenant: Some(tenant),
            subject_ref: Some(record.subject_ref.parse()?),
            actor: None,
            request_id: "req-1".into(),
        },
        Payload::RetentionErasureRequested(RetentionErasureRequested {
            request_id: "dsr-9".into(),
            expected_services: vec![VeilService::Vault as i32, VeilService::Consent as i32],
        }),
    )
    .await?;

    let completed = eventually(Duration::from_secs(30), || {
        let db = db.clone();
        async move {
            let events = outbox(&db).await.ok()?;
            payloads(&events, |p| match p {
                Payload::VaultErasureCompleted(e) => Some(e.clone()),
                _ => None,
            })
            .pop()
        }
    })
    .await?;
    assert_eq!(completed.request_id, "dsr-9");
    let outcome = completed.outcome.unwrap();
    assert_eq!(outcome.service, VeilService::Vault as i32);
    assert_eq!(
        (outcome.counts["records"], outcome.counts["data_keys"]),
        (1, 1)
    );
    assert_eq!(
        code(
            vault
                .client
                .get_record(vault.call(
                    Some(tenant),
                    &[Role::PrivacyOfficer],
                    GetRecordRequest {
                        record_id: record.record_id.clone(),
                        purpose: "dsr_access".into(),
                    },
                ))
                .await
        ),
        Code::FailedPrecondition
    );
    let shredded = payloads(&vault.events().await?, |p| match p {
        Payload::VaultSubjectShredded(e) => Some(e.request_id.clone()),
        _ => None,
    });
    assert_eq!(shredded, vec!["dsr-9".to_string()]);
    Ok(())
}
