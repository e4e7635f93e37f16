//! Purposes, recipients and controller settings: CRUD, validation codes, roles, events.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tonic::Code;
use veil_core::types::TenantId;
use veil_proto::common::v1::{DecisionReason, Jurisdiction, LegalBasis, PreferenceSignalType};
use veil_proto::consent::v1::*;

#[tokio::test(flavor = "multi_thread")]
async fn purposes_are_created_changed_listed_and_versioned() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let mut support = consent_purpose("support");
    support.legal_basis = LegalBasis::Contract as i32;
    let created = client
        .upsert_purpose(h.req(
            UpsertPurposeRequest {
                purpose: Some(support.clone()),
            },
            ADMIN,
        ))
        .await?
        .into_inner();
    assert!(created.created);
    let stored = created.purpose.unwrap();
    assert_eq!(stored.version, 1);
    assert!(!stored.consent_required);

    // The same values again change nothing; a real change bumps the version.
    let again = client
        .upsert_purpose(h.req(
            UpsertPurposeRequest {
                purpose: Some(support.clone()),
            },
            ADMIN,
        ))
        .await?
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.purpose.unwrap().version, 1);
    support.description = "Answering your questions.".into();
    let changed = h.purpose(support).await?;
    assert_eq!(changed.version, 2);

    let analytics = h.purpose(consent_purpose("analytics")).await?;
    assert!(
        analytics.consent_required,
        "consent basis implies consent_required"
    );
    assert!(
        !analytics.withdrawal_method.is_empty(),
        "a withdrawal method is always stated"
    );

    let listed = client
        .list_purposes(h.req(ListPurposesRequest::default(), BOT))
        .await?
        .into_inner();
    let keys: Vec<&str> = listed.purposes.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["analytics", "model_training", "support"]);

    // Only real changes were announced.
    let kinds = h.outbox_kinds().await?;
    assert_eq!(kinds, vec!["purpose_changed"; 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn model_training_exists_for_every_tenant_and_is_off() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let decisions = h.check("user-1", &["model_training"]).await?;
    assert_eq!(
        decisions,
        vec![(false, DecisionReason::NoRecordOptIn as i32)]
    );
    // A tenant cannot make it opt-out anywhere, nor move it off consent.
    let mut training = consent_purpose("model_training");
    training.defaults = vec![JurisdictionDefault {
        jurisdiction: Jurisdiction::UsCaCcpa as i32,
        consent_default: ConsentDefault::OptOut as i32,
    }];
    assert_eq!(
        code(h.purpose(training).await.map_err(status)),
        Code::InvalidArgument
    );
    let mut contract = consent_purpose("model_training");
    contract.legal_basis = LegalBasis::Contract as i32;
    assert_eq!(
        code(h.purpose(contract).await.map_err(status)),
        Code::InvalidArgument
    );
    // Renaming it is fine and comes after the built-in version 1.
    let mut renamed = consent_purpose("model_training");
    renamed.name = "Improving our assistant".into();
    assert_eq!(h.purpose(renamed).await?.version, 2);
    Ok(())
}

fn status(error: anyhow::Error) -> tonic::Status {
    error.downcast::<tonic::Status>().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_purposes_are_rejected_with_the_field_named() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let cases: Vec<(Purpose, &str)> = vec![
        (
            Purpose {
                key: "Bad Key".into(),
                ..consent_purpose("x")
            },
            "purpose.key",
        ),
        (
            Purpose {
                name: " ".into(),
                ..consent_purpose("x")
            },
            "purpose.name",
        ),
        (
            Purpose {
                legal_basis: 0,
                ..consent_purpose("x")
            },
            "purpose.legal_basis",
        ),
        (
            Purpose {
                legal_basis: LegalBasis::Contract as i32,
                consent_required: true,
                ..consent_purpose("x")
            },
            "purpose.consent_required",
        ),
        (
            Purpose {
                defaults: vec![JurisdictionDefault {
                    jurisdiction: Jurisdiction::EuGdpr as i32,
                    consent_default: ConsentDefault::OptOut as i32,
                }],
                ..consent_purpose("x")
            },
            "purpose.defaults[0]",
        ),
        (
            Purpose {
                legal_basis: LegalBasis::Contract as i32,
                opted_out_by: vec![PreferenceSignalType::Gpc as i32],
                ..consent_purpose("x")
            },
            "purpose.opted_out_by",
        ),
        (
            Purpose {
                retention_period: Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..consent_purpose("x")
            },
            "purpose.retention_period",
        ),
        (
            Purpose {
                data_categories: vec!["a".into(), "a".into()],
                ..consent_purpose("x")
            },
            "purpose.data_categories[1]",
        ),
    ];
    for (purpose, field) in cases {
        let status = client
            .upsert_purpose(h.req(
                UpsertPurposeRequest {
                    purpose: Some(purpose),
                },
                ADMIN,
            ))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(field),
            "{field}: {}",
            status.message()
        );
    }
    let status = client
        .upsert_purpose(h.req(UpsertPurposeRequest { purpose: None }, ADMIN))
        .await
        .expect_err("missing purpose");
    assert_eq!(status.code(), Code::InvalidArgument);

    // A purpose naming an unknown recipient is refused and nothing is written.
    let mut shared = consent_purpose("crm_sync");
    shared.recipient_keys = vec!["crm".into()];
    let status = client
        .upsert_purpose(h.req(
            UpsertPurposeRequest {
                purpose: Some(shared),
            },
            ADMIN,
        ))
        .await
        .expect_err("unknown recipient");
    assert_eq!(status.code(), Code::NotFound);
    assert!(h.outbox().await?.is_empty(), "no event for refused writes");

    // Bots may not define purposes.
    let status = client
        .upsert_purpose(h.req(
            UpsertPurposeRequest {
                purpose: Some(consent_purpose("y")),
            },
            BOT,
        ))
        .await
        .expect_err("bot");
    assert_eq!(status.code(), Code::PermissionDenied);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn recipients_are_registered_and_show_the_purposes_they_serve() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let llm = Recipient {
        key: "llm_provider".into(),
        name: "Example LLM Inc.".into(),
        kind: RecipientKind::Processor as i32,
        country: "us".into(),
        transfer_mechanism: "scc".into(),
        data_sharing_terms: "DPA 2024-03; inputs are not used for training".into(),
        url: "https://llm.example/dpa".into(),
        ..Default::default()
    };
    let created = client
        .upsert_recipient(h.req(
            UpsertRecipientRequest {
                recipient: Some(llm.clone()),
            },
            ADMIN,
        ))
        .await?
        .into_inner();
    assert!(created.created);
    assert_eq!(created.recipient.unwrap().country, "US");
    let mut support = consent_purpose("support");
    support.recipient_keys = vec!["llm_provider".into()];
    h.purpose(support).await?;
    let listed = client
        .list_recipients(h.req(ListRecipientsRequest::default(), BOT))
        .await?
        .into_inner();
    assert_eq!(listed.recipients.len(), 1);
    assert_eq!(
        listed.recipients[0].purpose_keys,
        vec!["support".to_string()]
    );
    assert_eq!(
        listed.recipients[0].data_sharing_terms,
        llm.data_sharing_terms
    );

    for (recipient, field) in [
        (
            Recipient {
                kind: 0,
                ..llm.clone()
            },
            "recipient.kind",
        ),
        (
            Recipient {
                country: "USA".into(),
                ..llm.clone()
            },
            "recipient.country",
        ),
        (
            Recipient {
                url: "ftp://x".into(),
                ..llm.clone()
            },
            "recipient.url",
        ),
    ] {
        let status = client
            .upsert_recipient(h.req(
                UpsertRecipientRequest {
                    recipient: Some(recipient),
                },
                ADMIN,
            ))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(status.message().contains(field), "{}", status.message());
    }

    // Another tenant sees none of it.
    let other = client
        .list_recipients(h.req_as(TenantId::generate(), ListRecipientsRequest::default(), BOT))
        .await?
        .into_inner();
    assert!(other.recipients.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_settings_set_the_default_jurisdiction() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let mut ads = consent_purpose("ad_sharing");
    ads.defaults = vec![JurisdictionDefault {
        jurisdiction: Jurisdiction::UsCaCcpa as i32,
        consent_default: ConsentDefault::OptOut as i32,
    }];
    h.purpose(ads).await?;
    let unspecified = Jurisdiction::Unspecified;
    let before = check_on(&h.client, &h, "u1", &["ad_sharing"], unspecified).await?;
    assert_eq!(before, vec![(false, DecisionReason::NoRecordOptIn as i32)]);
    let set = client
        .set_controller(h.req(
            SetControllerRequest {
                controller: Some(Controller {
                    name: "Example Shop GmbH".into(),
                    contact: "privacy@shop.example".into(),
                    default_locale: "de".into(),
                    default_jurisdiction: Jurisdiction::UsCaCcpa as i32,
                    ..Default::default()
                }),
            },
            ADMIN,
        ))
        .await?
        .into_inner();
    assert_eq!(set.controller.unwrap().tenant_id, h.tenant.to_string());
    // Takes effect at once, cache or not.
    let after = check_on(&h.client, &h, "u1", &["ad_sharing"], unspecified).await?;
    assert_eq!(after, vec![(true, DecisionReason::NoRecordOptOut as i32)]);
    let got = client
        .get_controller(h.req(GetControllerRequest {}, BOT))
        .await?
        .into_inner()
        .controller
        .unwrap();
    assert_eq!(got.default_locale, "de");
    let status = client
        .set_controller(h.req(
            SetControllerRequest {
                controller: Some(Controller {
                    tenant_id: TenantId::generate().to_string(),
                    ..Default::default()
                }),
            },
            ADMIN,
        ))
        .await
        .expect_err("other tenant");
    assert_eq!(status.code(), Code::PermissionDenied);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_defines_at_most_a_thousand_purposes() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    // 999 purposes straight into the schema, plus one through the API: 1,000.
    sqlx::query(
        "INSERT INTO purposes (tenant_id, key, name, legal_basis, consent_required)
         SELECT $1, 'seeded_' || i, 'Seeded', 1, false FROM generate_series(1, 999) AS i",
    )
    .bind(h.tenant.as_uuid())
    .execute(&h.db().await?)
    .await?;
    h.purpose(consent_purpose("last_one")).await?;

    let refused = h
        .purpose(consent_purpose("one_too_many"))
        .await
        .unwrap_err();
    let status = refused.downcast_ref::<tonic::Status>().expect("a status");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("at most 1000"),
        "{}",
        status.message()
    );

    // An existing purpose can still be changed, and another tenant is not affected.
    let mut changed = consent_purpose("last_one");
    changed.description = "Changed.".into();
    assert_eq!(h.purpose(changed).await?.version, 2);
    let other = TenantId::generate();
    h.client
        .clone()
        .upsert_purpose(h.req_as(
            other,
            UpsertPurposeRequest {
                purpose: Some(consent_purpose("one_too_many")),
            },
            ADMIN,
        ))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_names_at_most_a_thousand_recipients() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    // 999 recipients straight into the schema, plus one through the API: 1,000.
    sqlx::query(
        "INSERT INTO recipients (tenant_id, key, name, kind)
         SELECT $1, 'seeded_' || i, 'Seeded', 1 FROM generate_series(1, 999) AS i",
    )
    .bind(h.tenant.as_uuid())
    .execute(&h.db().await?)
    .await?;
    let recipient = |key: &str| UpsertRecipientRequest {
        recipient: Some(Recipient {
            key: key.into(),
            name: "Example Processor".into(),
            kind: RecipientKind::Processor as i32,
            country: "DE".into(),
            ..Default::default()
        }),
    };
    let mut client = h.client.clone();
    assert!(
        client
            .upsert_recipient(h.req(recipient("last_one"), ADMIN))
            .await?
            .into_inner()
            .created
    );
    let refused = client
        .upsert_recipient(h.req(recipient("one_too_many"), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("at most 1000 recipients"),
        "{}",
        refused.message()
    );
    // An existing recipient can still be changed.
    let changed = client
        .upsert_recipient(h.req(recipient("seeded_7"), ADMIN))
        .await?
        .into_inner();
    assert!(!changed.created);
    Ok(())
}
