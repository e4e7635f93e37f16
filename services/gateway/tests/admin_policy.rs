//! Privacy policies through the admin API: defaults, versions, optimistic concurrency,
//! validation errors that name the field, roles, tenant isolation and the change event.

#![allow(clippy::unwrap_used)]

mod admin_support;

use admin_support::{BOOTSTRAP, Gateway, bearer, code};
use tonic::Code;
use veil_proto::common::v1::{Operator, Role as ProtoRole};
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::custom_recognizer::Matcher;
use veil_proto::gateway::v1::{
    ConsentFallback, CustomRecognizer, EntityRule, GetPrivacyPolicyRequest, MaskOptions,
    PrivacyPolicy, PurposeConsentRule, RegexPattern, SetPrivacyPolicyRequest, WordList,
};

fn regex(name: &str, pattern: &str) -> CustomRecognizer {
    CustomRecognizer {
        name: name.into(),
        entity_type: "ORDER_ID".into(),
        matcher: Some(Matcher::Regex(RegexPattern {
            pattern: pattern.into(),
            case_insensitive: true,
        })),
        score: 0.9,
        context_words: vec!["order".into()],
    }
}

fn policy() -> PrivacyPolicy {
    PrivacyPolicy {
        entity_rules: vec![EntityRule {
            entity_type: "EMAIL_ADDRESS".into(),
            operator: Operator::Mask as i32,
            mask: Some(MaskOptions {
                masking_char: "#".into(),
                keep_last: 4,
                keep_first: 0,
            }),
            ..Default::default()
        }],
        default_operator: Operator::Redact as i32,
        score_threshold: 0.6,
        allow_list: vec!["support@example.com".into()],
        custom_recognizers: vec![regex("order", r"ORD-\d{6}")],
        consent_rules: vec![PurposeConsentRule {
            purpose_key: "marketing".into(),
            fallback: ConsentFallback::DropPurpose as i32,
        }],
        store_raw_in_vault: false,
        ..Default::default()
    }
}

fn set(policy: PrivacyPolicy, expected_version: i64) -> SetPrivacyPolicyRequest {
    SetPrivacyPolicyRequest {
        tenant_id: String::new(),
        policy: Some(policy),
        expected_version,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_are_versioned_and_checked_for_concurrent_edits() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (tenant, admin_key) = gw.tenant("policy").await?;
    let (_, officer) = gw.key(&admin_key, &[ProtoRole::PrivacyOfficer]).await?;
    let (_, auditor) = gw.key(&admin_key, &[ProtoRole::Auditor]).await?;
    let (_, bot) = gw.key(&admin_key, &[ProtoRole::Bot]).await?;
    let mut admin = gw.admin();
    let get = |version: i64, token: &str| {
        bearer(
            GetPrivacyPolicyRequest {
                tenant_id: String::new(),
                version,
            },
            token,
        )
    };

    // Until one is set, the default applies (version 0).
    let default = admin
        .get_privacy_policy(get(0, &auditor))
        .await?
        .into_inner();
    let default = default.policy.unwrap();
    assert_eq!(default.version, 0);
    assert_eq!(default.default_operator, Operator::Pseudonymize as i32);
    assert_eq!(
        code(admin.get_privacy_policy(get(0, &bot)).await),
        Code::PermissionDenied
    );

    // Each set makes the next version; the officer may set it, the auditor may not.
    let v1 = admin
        .set_privacy_policy(bearer(set(policy(), 0), &officer))
        .await?
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(v1.version, 1);
    assert!(v1.updated_at.is_some());
    assert_eq!(v1.updated_by.as_ref().unwrap().tenant_id, tenant);
    assert_eq!(
        code(
            admin
                .set_privacy_policy(bearer(set(policy(), 0), &auditor))
                .await
        ),
        Code::PermissionDenied
    );
    let mut second = policy();
    second.allow_list.push("help@example.com".into());
    second.store_raw_in_vault = true;
    let v2 = admin
        .set_privacy_policy(bearer(set(second.clone(), 1), &admin_key))
        .await?
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(v2.version, 2);
    // A writer that read version 1 loses against the one that wrote version 2.
    let stale = admin
        .set_privacy_policy(bearer(set(policy(), 1), &admin_key))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // Current and past versions read back as stored.
    let current = admin
        .get_privacy_policy(get(0, &officer))
        .await?
        .into_inner();
    let current = current.policy.unwrap();
    assert_eq!(current.version, 2);
    assert_eq!(current.allow_list, second.allow_list);
    assert_eq!(current.custom_recognizers, second.custom_recognizers);
    assert_eq!(current.entity_rules, second.entity_rules);
    let first = admin
        .get_privacy_policy(get(1, &officer))
        .await?
        .into_inner();
    assert!(!first.policy.unwrap().store_raw_in_vault);
    assert_eq!(
        code(admin.get_privacy_policy(get(9, &officer)).await),
        Code::NotFound
    );
    assert_eq!(
        code(admin.get_privacy_policy(get(-1, &officer)).await),
        Code::InvalidArgument
    );

    // One event per version, naming what changed.
    let events = gw.events("policy_changed").await?;
    let changes: Vec<_> = events
        .iter()
        .map(|e| match &e.payload {
            Some(Payload::GatewayPolicyChanged(c)) => c.clone(),
            other => panic!("unexpected payload {other:?}"),
        })
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        (changes[0].previous_version, changes[0].policy_version),
        (0, 1)
    );
    assert!(
        changes[0]
            .changed_fields
            .contains(&"entity_rules".to_string())
    );
    assert_eq!(
        changes[1].changed_fields,
        ["allow_list", "store_raw_in_vault"]
    );

    // The pipeline reads the current version and compiles it for the engine.
    let pool = gw.env.db.pool("gateway").await?;
    let stored = veil_gateway::policy_store::current_policy(&pool, tenant.parse()?).await?;
    assert_eq!(stored.version, 2);
    let engine = veil_gateway::policy_store::to_pii_policy(&stored.proto)?;
    let email = veil_pii::EntityType::parse("EMAIL_ADDRESS").unwrap();
    assert_eq!(
        engine.operator_for(&email),
        &veil_pii::Operator::Mask {
            keep_last: 4,
            mask_char: '#'
        }
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_policies_are_refused_naming_the_field() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (_, admin_key) = gw.tenant("policy-bad").await?;
    let mut admin = gw.admin();
    let mut cases: Vec<(&str, PrivacyPolicy)> = Vec::new();
    let mut p = policy();
    p.custom_recognizers = vec![regex("a", "A-\\d+"), regex("b", "B-\\d+"), regex("c", "(")];
    cases.push(("policy.custom_recognizers[2].pattern", p));
    let mut p = policy();
    p.custom_recognizers[0].entity_type = "order id".into();
    cases.push(("policy.custom_recognizers[0].entity_type", p));
    // Each compiles to up to 1 MiB: a policy holds at most 100, and none too large.
    let mut p = policy();
    p.custom_recognizers = (0..101)
        .map(|i| regex(&format!("r{i}"), "X-\\d+"))
        .collect();
    cases.push(("policy.custom_recognizers", p));
    let mut p = policy();
    p.custom_recognizers = vec![regex("big", "\\w{5000}")];
    cases.push(("policy.custom_recognizers[0].pattern", p));
    let mut p = policy();
    p.custom_recognizers.push(CustomRecognizer {
        name: "words".into(),
        entity_type: "PROJECT".into(),
        matcher: Some(Matcher::WordList(WordList::default())),
        ..Default::default()
    });
    cases.push(("policy.custom_recognizers[1].word_list.words", p));
    let mut p = policy();
    p.custom_recognizers.push(regex("order", "X"));
    cases.push(("policy.custom_recognizers[1].name", p));
    let mut p = policy();
    p.score_threshold = 1.5;
    cases.push(("policy.score_threshold", p));
    let mut p = policy();
    p.entity_rules[0].operator = 99;
    cases.push(("policy.entity_rules[0].operator", p));
    let mut p = policy();
    p.entity_rules[0].mask.as_mut().unwrap().masking_char = "##".into();
    cases.push(("policy.entity_rules[0].mask.masking_char", p));
    let mut p = policy();
    p.entity_rules.push(p.entity_rules[0].clone());
    cases.push(("policy.entity_rules[1].entity_type", p));
    let mut p = policy();
    p.enabled_entity_types = vec!["EMAIL_ADDRESS".into(), "not a type".into()];
    cases.push(("policy.enabled_entity_types[1]", p));
    let mut p = policy();
    p.consent_rules[0].purpose_key = "Marketing!".into();
    cases.push(("policy.consent_rules[0].purpose_key", p));
    let mut p = policy();
    p.allow_list.push(" ".into());
    cases.push(("policy.allow_list[1]", p));
    let mut p = policy();
    p.auto_act_on_privacy_commands = true;
    cases.push(("policy.auto_act_on_privacy_commands", p));
    for (field, bad) in cases {
        let status = admin
            .set_privacy_policy(bearer(set(bad, 0), &admin_key))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().contains(&format!("invalid {field}:")),
            "{field}: {}",
            status.message()
        );
    }
    let missing = SetPrivacyPolicyRequest::default();
    assert_eq!(
        code(admin.set_privacy_policy(bearer(missing, &admin_key)).await),
        Code::InvalidArgument
    );
    // Nothing was stored.
    assert!(gw.events("policy_changed").await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn other_tenants_policies_are_invisible() -> anyhow::Result<()> {
    let gw = Gateway::start().await?;
    let (a, a_admin) = gw.tenant("policy-a").await?;
    let (_, b_admin) = gw.tenant("policy-b").await?;
    let mut admin = gw.admin();
    let for_a = |policy: PrivacyPolicy| SetPrivacyPolicyRequest {
        tenant_id: a.clone(),
        policy: Some(policy),
        expected_version: 0,
    };
    assert_eq!(
        code(
            admin
                .set_privacy_policy(bearer(for_a(policy()), &b_admin))
                .await
        ),
        Code::NotFound
    );
    let read_a = GetPrivacyPolicyRequest {
        tenant_id: a.clone(),
        version: 0,
    };
    assert_eq!(
        code(
            admin
                .get_privacy_policy(bearer(read_a.clone(), &b_admin))
                .await
        ),
        Code::NotFound
    );
    // The platform administrator names the tenant; the tenant's admin sees the result.
    let stored = admin
        .set_privacy_policy(bearer(for_a(policy()), BOOTSTRAP))
        .await?
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(stored.version, 1);
    let seen = admin
        .get_privacy_policy(bearer(read_a, &a_admin))
        .await?
        .into_inner()
        .policy
        .unwrap();
    assert_eq!(seen.version, 1);
    Ok(())
}
