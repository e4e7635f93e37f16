//! A Tokenize in flight across a shred of its subject: refused rather than sealing what
//! it read before the shred under a new key that no erasure looks at.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestVault, code};
use time::{Duration, OffsetDateTime};
use tonic::Code;
use veil_core::convert::timestamp;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::SubjectSelector;
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::vault::v1::{PutRecordRequest, ShredSubjectRequest, TokenizeItem, TokenizeRequest};

fn tokenize(subject: &str, value: &str, started: OffsetDateTime) -> TokenizeRequest {
    TokenizeRequest {
        items: vec![TokenizeItem {
            subject_id: subject.into(),
            entity_type: "PERSON".into(),
            value: value.into(),
        }],
        store_value: true,
        started_at: Some(timestamp(started)),
    }
}

async fn shred(vault: &mut TestVault, tenant: TenantId, subject: &str) -> String {
    vault
        .client
        .shred_subject(vault.call(
            Some(tenant),
            &[Role::Service],
            ShredSubjectRequest {
                subject: Some(SubjectSelector {
                    subject: Some(Subject::SubjectId(subject.into())),
                }),
                request_id: "dsr-1".into(),
                reason: "erasure request".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .subject_ref
}

/// (data keys, token rows) of the tenant.
async fn stored(vault: &TestVault, tenant: TenantId) -> (i64, i64) {
    let db = vault.db().await.unwrap();
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM subject_keys WHERE tenant_id = $1),
                (SELECT count(*) FROM tokens WHERE tenant_id = $1)",
    )
    .bind(tenant.as_uuid())
    .fetch_one(&db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tokenize_begun_before_its_subjects_shred_is_refused() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let service = &[Role::Service];
    let before = OffsetDateTime::now_utc();
    let first = vault
        .client
        .tokenize(vault.call(Some(tenant), service, tokenize("user-1", "Alice", before)))
        .await;
    assert!(first.is_ok(), "{first:?}");
    shred(&mut vault, tenant, "user-1").await;
    assert_eq!(stored(&vault, tenant).await, (0, 0));

    // Begun before the shred: no new key, no token; nor a record stored within the
    // allowed clock skew after it.
    let record = PutRecordRequest {
        subject_id: "user-1".into(),
        category: "contact".into(),
        field: "email".into(),
        value: b"bob@example.com".to_vec(),
        ..Default::default()
    };
    let put = vault
        .client
        .put_record(vault.call(Some(tenant), &[Role::PrivacyOfficer], record))
        .await;
    assert_eq!(code(put), Code::FailedPrecondition);
    let late = vault
        .client
        .tokenize(vault.call(Some(tenant), service, tokenize("user-1", "Bob", before)))
        .await;
    assert_eq!(code(late), Code::FailedPrecondition);
    assert_eq!(stored(&vault, tenant).await, (0, 0));

    // Begun after it (beyond the allowed skew): the subject's new data, under a new key.
    let after = OffsetDateTime::now_utc() + Duration::seconds(5);
    let fresh = vault
        .client
        .tokenize(vault.call(Some(tenant), service, tokenize("user-1", "Carl", after)))
        .await;
    assert!(fresh.is_ok(), "{fresh:?}");
    assert_eq!(stored(&vault, tenant).await, (1, 1));

    // The new key is cached now; a call begun before the shred is refused on that path
    // too.
    let stale = vault
        .client
        .tokenize(vault.call(Some(tenant), service, tokenize("user-1", "Dora", before)))
        .await;
    assert_eq!(code(stale), Code::FailedPrecondition);
    assert_eq!(stored(&vault, tenant).await, (1, 1));

    let bad = TokenizeRequest {
        started_at: Some(prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        }),
        ..tokenize("user-1", "Eve", after)
    };
    let status = vault
        .client
        .tokenize(vault.call(Some(tenant), service, bad))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("started_at"), "{status:?}");
    Ok(())
}

/// A shred holds its subject's lock until it commits: a Tokenize that would create the
/// subject's key waits for it, then reads the fence committed while it waited.
#[tokio::test(flavor = "multi_thread")]
async fn a_tokenize_waits_for_a_shred_in_progress_and_is_refused() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let subject_ref = shred(&mut vault, tenant, "user-9").await;
    let began = OffsetDateTime::now_utc() + Duration::seconds(5);

    // A second shred in progress: the lock taken, the fence moved, not committed.
    let db = vault.db().await?;
    let mut shredding = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(subject_lock_key($1, $2))")
        .bind(tenant.as_uuid())
        .bind(&subject_ref)
        .execute(&mut *shredding)
        .await?;
    sqlx::query("UPDATE subject_erasures SET erased_at = $1 WHERE subject_ref = $2")
        .bind(began + Duration::seconds(5))
        .bind(&subject_ref)
        .execute(&mut *shredding)
        .await?;
    let racing = {
        let mut client = vault.client.clone();
        let request = vault.call(
            Some(tenant),
            &[Role::Service],
            tokenize("user-9", "Ann", began),
        );
        tokio::spawn(async move { client.tokenize(request).await })
    };
    veil_testkit::db::until_a_session_waits_for(&db, "advisory").await?;
    shredding.commit().await?;
    assert_eq!(code(racing.await?), Code::FailedPrecondition);
    assert_eq!(stored(&vault, tenant).await, (0, 0));
    Ok(())
}
