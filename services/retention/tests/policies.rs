//! Retention policies: upsert by (category, purpose), period bounds and caps, actions
//! per category, paging, roles, tenants and the policy_changed events.

mod policies_common;

use policies_common::*;
use veil_core::types::TenantId;
use veil_proto::common::v1::{DataCategory, PageRequest, RetentionAction};
use veil_proto::events::v1::RetentionPolicyChanged;
use veil_proto::events::v1::event::Payload;
use veil_proto::retention::v1::*;

const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread")]
async fn set_policy_upserts_by_category_and_purpose_and_emits_only_changes() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let first = h
        .set_policy(
            DataCategory::Transcript,
            "",
            30 * DAY,
            RetentionAction::Delete,
        )
        .await?;
    assert!(first.created);
    let created = first.policy.unwrap_or_default();
    assert_eq!(created.period.as_ref().map(|p| p.seconds), Some(30 * DAY));
    assert_eq!(
        created.updated_by.as_ref().map(|a| a.principal_id.as_str()),
        Some("test-officer")
    );

    // Same key, new period: replaced in place (same id), not created.
    let second = h
        .set_policy(
            DataCategory::Transcript,
            "",
            7 * DAY,
            RetentionAction::Anonymize,
        )
        .await?;
    assert!(!second.created);
    let updated = second.policy.unwrap_or_default();
    assert_eq!(updated.policy_id, created.policy_id);
    assert_eq!(updated.action, RetentionAction::Anonymize as i32);

    // Identical: nothing changes, no event.
    let third = h
        .set_policy(
            DataCategory::Transcript,
            "",
            7 * DAY,
            RetentionAction::Anonymize,
        )
        .await?;
    assert!(!third.created);
    assert_eq!(
        third.policy.unwrap_or_default().updated_at,
        updated.updated_at
    );

    // Another purpose is another policy.
    let marketing = h
        .set_policy(
            DataCategory::Transcript,
            "marketing",
            90 * DAY,
            RetentionAction::Delete,
        )
        .await?;
    assert!(marketing.created);

    let events: Vec<_> = h
        .outbox()
        .await?
        .into_iter()
        .filter(|(kind, _)| kind == "policy_changed")
        .collect();
    assert_eq!(
        events.len(),
        3,
        "create, change, create; the no-op emits nothing"
    );
    match &events[1].1.payload {
        Some(Payload::RetentionPolicyChanged(changed)) => {
            assert_eq!(changed.policy_id, created.policy_id);
            assert_eq!(changed.period.as_ref().map(|p| p.seconds), Some(7 * DAY));
            assert!(!changed.deleted);
        }
        other => panic!("unexpected payload {other:?}"),
    }
    assert_eq!(events[1].1.tenant_id, h.tenant.to_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn periods_caps_and_actions_are_validated_naming_the_field() -> anyhow::Result<()> {
    let h = Harness::start_with(|s| s.caps.transcript_days = 30).await?;
    let cases = [
        (
            DataCategory::Transcript,
            "",
            3599,
            RetentionAction::Delete,
            "policy.period",
        ),
        (
            DataCategory::Transcript,
            "",
            31 * DAY,
            RetentionAction::Delete,
            "policy.period",
        ),
        (
            DataCategory::Transcript,
            "",
            DAY,
            RetentionAction::CryptoShred,
            "policy.action",
        ),
        (
            DataCategory::AuditEvent,
            "",
            DAY,
            RetentionAction::Delete,
            "policy.action",
        ),
        (
            DataCategory::DsrRecord,
            "",
            700 * DAY,
            RetentionAction::Delete,
            "policy.action",
        ),
        (
            DataCategory::Unspecified,
            "",
            DAY,
            RetentionAction::Delete,
            "policy.category",
        ),
        (
            DataCategory::Transcript,
            "No Way",
            DAY,
            RetentionAction::Delete,
            "policy.purpose_key",
        ),
        (
            DataCategory::Export,
            "marketing",
            DAY,
            RetentionAction::Delete,
            "policy.purpose_key",
        ),
    ];
    for (category, purpose, period, action, field) in cases {
        let status = h
            .set_policy(category, purpose, period, action)
            .await
            .expect_err("must be refused");
        assert_eq!(
            invalid_field(&status),
            field,
            "{category:?} {period} {action:?}"
        );
    }
    // The bounds themselves are fine.
    h.set_policy(DataCategory::Transcript, "", 3600, RetentionAction::Delete)
        .await?;
    h.set_policy(
        DataCategory::Transcript,
        "",
        30 * DAY,
        RetentionAction::Delete,
    )
    .await?;
    h.set_policy(
        DataCategory::VaultRecord,
        "",
        DAY,
        RetentionAction::CryptoShred,
    )
    .await?;
    let missing = h
        .client
        .clone()
        .set_policy(h.req(SetPolicyRequest { policy: None }, OFFICER))
        .await
        .expect_err("a policy is required");
    assert_eq!(invalid_field(&missing), "policy");
    // Nothing refused was stored.
    let pool = h.db().await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM policies")
        .fetch_one(&pool)
        .await?;
    assert_eq!(stored, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_filters_and_delete_removes_within_the_tenant() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.set_policy(
        DataCategory::Transcript,
        "",
        30 * DAY,
        RetentionAction::Delete,
    )
    .await?;
    h.set_policy(
        DataCategory::Transcript,
        "support",
        7 * DAY,
        RetentionAction::Delete,
    )
    .await?;
    h.set_policy(
        DataCategory::VaultRecord,
        "",
        90 * DAY,
        RetentionAction::CryptoShred,
    )
    .await?;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .client
            .clone()
            .list_policies(h.req(
                ListPoliciesRequest {
                    category: 0,
                    page: Some(PageRequest {
                        page_size: 2,
                        page_token: token.clone(),
                    }),
                },
                AUDITOR,
            ))
            .await?
            .into_inner();
        assert!(page.policies.len() <= 2);
        seen.extend(
            page.policies
                .iter()
                .map(|p| (p.category, p.purpose_key.clone())),
        );
        token = page.page.unwrap_or_default().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            (DataCategory::Transcript as i32, String::new()),
            (DataCategory::Transcript as i32, "support".to_string()),
            (DataCategory::VaultRecord as i32, String::new()),
        ]
    );

    let vault_only = h
        .client
        .clone()
        .list_policies(h.req(
            ListPoliciesRequest {
                category: DataCategory::VaultRecord as i32,
                page: None,
            },
            ADMIN,
        ))
        .await?
        .into_inner()
        .policies;
    assert_eq!(vault_only.len(), 1);
    let vault_policy = vault_only[0].policy_id.clone();

    // Another tenant sees nothing and cannot delete this tenant's policy.
    let other = TenantId::generate();
    let foreign = h
        .client
        .clone()
        .list_policies(h.req_as(other, ListPoliciesRequest::default(), OFFICER))
        .await?
        .into_inner();
    assert!(foreign.policies.is_empty());
    let status = h
        .client
        .clone()
        .delete_policy(h.req_as(
            other,
            DeletePolicyRequest {
                policy_id: vault_policy.clone(),
            },
            OFFICER,
        ))
        .await
        .expect_err("not this tenant's");
    assert_eq!(status.code(), tonic::Code::NotFound);

    let deleted = h
        .client
        .clone()
        .delete_policy(h.req(
            DeletePolicyRequest {
                policy_id: vault_policy.clone(),
            },
            OFFICER,
        ))
        .await?
        .into_inner()
        .policy
        .unwrap_or_default();
    assert_eq!(deleted.policy_id, vault_policy);
    let again = h
        .client
        .clone()
        .delete_policy(h.req(
            DeletePolicyRequest {
                policy_id: vault_policy,
            },
            OFFICER,
        ))
        .await
        .expect_err("already gone");
    assert_eq!(again.code(), tonic::Code::NotFound);
    let last = h.outbox().await?.pop().map(|(_, e)| e.payload);
    assert!(matches!(
        last,
        Some(Some(Payload::RetentionPolicyChanged(
            RetentionPolicyChanged { deleted: true, .. }
        )))
    ));

    let bad_token = h
        .client
        .clone()
        .list_policies(h.req(
            ListPoliciesRequest {
                category: 0,
                page: Some(PageRequest {
                    page_size: 1,
                    page_token: "bm90LWEtY3Vyc29y".into(),
                }),
            },
            OFFICER,
        ))
        .await
        .expect_err("a token not from this api");
    assert_eq!(invalid_field(&bad_token), "page.page_token");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn only_privacy_officers_change_policies() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for roles in [BOT, AUDITOR, ADMIN] {
        let status = h
            .client
            .clone()
            .set_policy(h.req(
                SetPolicyRequest {
                    policy: Some(policy(
                        DataCategory::Transcript,
                        "",
                        DAY,
                        RetentionAction::Delete,
                    )),
                },
                roles,
            ))
            .await
            .expect_err("not an officer");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{roles:?}");
    }
    let status = h
        .client
        .clone()
        .list_policies(h.req(ListPoliciesRequest::default(), BOT))
        .await
        .expect_err("bots do not read policies");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    Ok(())
}
