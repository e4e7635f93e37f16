//! `Purge`: the retention sweep's deletion of expired records, with holds, dry runs and
//! batch limits.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestVault, code, status};
use tonic::Code;
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::{DataCategory, PurgeCriteria, RetentionAction};
use veil_proto::vault::v1::{GetRecordRequest, PurgeRequest, PutRecordRequest};

fn purge(criteria: PurgeCriteria) -> PurgeRequest {
    PurgeRequest {
        criteria: Some(criteria),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn purges_expired_records_outside_holds_in_batches() -> anyhow::Result<()> {
    let mut vault = TestVault::start().await?;
    let tenant = TenantId::generate();
    let mut records = Vec::new();
    for (subject, purpose) in [
        ("user-1", "support"),
        ("user-1", "support"),
        ("user-1", "marketing"),
        ("user-2", "support"),
        ("user-3", "support"),
    ] {
        let record = vault
            .client
            .put_record(vault.call(
                Some(tenant),
                &[Role::Service],
                PutRecordRequest {
                    subject_id: subject.into(),
                    category: "contact".into(),
                    field: "email".into(),
                    value: b"x@example.com".to_vec(),
                    purpose_keys: vec![purpose.into()],
                    ..Default::default()
                },
            ))
            .await?
            .into_inner()
            .record
            .unwrap();
        records.push(record);
    }
    let db = vault.db().await?;
    // Everything but user-3's record is 40 days old.
    sqlx::query(
        "UPDATE records SET created_at = now() - interval '40 days' WHERE subject_ref <> $1",
    )
    .bind(&records[4].subject_ref)
    .execute(&db)
    .await?;
    let cutoff =
        veil_core::convert::timestamp(time::OffsetDateTime::now_utc() - time::Duration::days(30));
    let criteria = PurgeCriteria {
        category: DataCategory::VaultRecord as i32,
        purpose_key: "support".into(),
        cutoff: Some(cutoff),
        action: RetentionAction::Delete as i32,
        held_subject_refs: vec![records[3].subject_ref.clone()],
        dry_run: true,
        batch_limit: 1,
        sweep_id: "sweep-1".into(),
    };
    let dry = vault
        .client
        .purge(vault.call(Some(tenant), &[Role::Service], purge(criteria.clone())))
        .await?
        .into_inner()
        .outcome
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        (dry.counts["records"], dry.held_skipped, dry.more_remaining),
        (1, 1, true)
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&db)
        .await?;
    assert_eq!(left, 5, "a dry run changes nothing");

    let mut purged = 0;
    loop {
        let outcome = vault
            .client
            .purge(vault.call(
                Some(tenant),
                &[Role::Service],
                purge(PurgeCriteria {
                    dry_run: false,
                    ..criteria.clone()
                }),
            ))
            .await?
            .into_inner()
            .outcome
            .unwrap();
        purged += outcome.counts["records"];
        if !outcome.more_remaining {
            break;
        }
    }
    assert_eq!(purged, 2, "user-1's two old support records");
    for (i, record) in records.iter().enumerate() {
        let found = vault
            .client
            .get_record(vault.call(
                Some(tenant),
                &[Role::PrivacyOfficer],
                GetRecordRequest {
                    record_id: record.record_id.clone(),
                    purpose: "audit".into(),
                },
            ))
            .await;
        assert_eq!(found.is_ok(), i >= 2, "record {i}");
    }
    let count: i64 =
        sqlx::query_scalar("SELECT record_count FROM subject_keys WHERE subject_ref = $1")
            .bind(&records[0].subject_ref)
            .fetch_one(&db)
            .await?;
    assert_eq!(count, 1);

    let wrong = status(
        vault
            .client
            .purge(vault.call(
                Some(tenant),
                &[Role::Service],
                purge(PurgeCriteria {
                    category: DataCategory::Transcript as i32,
                    ..criteria.clone()
                }),
            ))
            .await,
    );
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert!(wrong.message().contains("criteria.category"));
    assert_eq!(
        code(
            vault
                .client
                .purge(vault.call(Some(tenant), &[Role::PrivacyOfficer], purge(criteria)))
                .await
        ),
        Code::PermissionDenied
    );
    Ok(())
}
