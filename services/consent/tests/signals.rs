//! Preference signals: GPC and do-not-sell opt-outs before defaults, conflicts recorded.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tonic::Code;
use veil_proto::common::v1::{
    CollectionMethod, DecisionReason, Jurisdiction, PreferenceSignalType,
};
use veil_proto::consent::v1::*;

fn signal(subject: &str, kind: PreferenceSignalType, enabled: bool) -> SetPreferenceSignalRequest {
    SetPreferenceSignalRequest {
        subject_id: subject.into(),
        signal: kind as i32,
        enabled,
        source: CollectionMethod::Gpc as i32,
        observed_at: None,
    }
}

/// A CCPA "sale/share" purpose: opt-out in California, opt-in in the EU, off under GPC.
fn ad_sharing() -> Purpose {
    Purpose {
        defaults: vec![JurisdictionDefault {
            jurisdiction: Jurisdiction::UsCaCcpa as i32,
            consent_default: ConsentDefault::OptOut as i32,
        }],
        opted_out_by: vec![
            PreferenceSignalType::Gpc as i32,
            PreferenceSignalType::DoNotSell as i32,
        ],
        ..consent_purpose("ad_sharing")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gpc_opts_out_before_the_default_and_conflicts_are_recorded() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.purpose(ad_sharing()).await?;
    h.purpose(consent_purpose("newsletter")).await?;
    let ca = Jurisdiction::UsCaCcpa;
    let mut client = h.client.clone();
    let before = check_on(&h.client, &h, "gina", &["ad_sharing"], ca).await?;
    assert_eq!(before, vec![(true, DecisionReason::NoRecordOptOut as i32)]);
    let eu = check_on(&h.client, &h, "gina", &["ad_sharing"], Jurisdiction::EuGdpr).await?;
    assert_eq!(eu, vec![(false, DecisionReason::NoRecordOptIn as i32)]);

    let set = client
        .set_preference_signal(h.req(signal("gina", PreferenceSignalType::Gpc, true), BOT))
        .await?
        .into_inner();
    assert_eq!(set.affected_purpose_keys, vec!["ad_sharing".to_string()]);
    let after = check_on(&h.client, &h, "gina", &["ad_sharing", "newsletter"], ca).await?;
    assert_eq!(
        after,
        vec![
            (false, DecisionReason::PreferenceSignal as i32),
            (false, DecisionReason::NoRecordOptIn as i32)
        ],
        "the signal touches only the purposes it opts out of"
    );

    // The subject then explicitly opts in: the later, specific choice is kept and
    // flagged as contradicting GPC.
    let grant = RecordConsentRequest {
        notice_id: String::new(),
        jurisdiction: ca as i32,
        ..grant("gina", &["ad_sharing"], &Notice::default())
    };
    let granted = client.record_consent(h.req(grant, BOT)).await?.into_inner();
    assert!(granted.records[0].preference_conflict);
    let decided = check_on(&h.client, &h, "gina", &["ad_sharing"], ca).await?;
    assert_eq!(decided, vec![(true, DecisionReason::Granted as i32)]);
    let events = h.outbox().await?;
    let (_, granted_event) = events
        .iter()
        .find(|(s, _)| s.ends_with(".granted"))
        .unwrap();
    match granted_event.payload.as_ref().unwrap() {
        veil_proto::events::v1::event::Payload::ConsentGranted(changed) => {
            assert_eq!(
                changed.preference_conflict_purpose_keys,
                vec!["ad_sharing".to_string()]
            );
        }
        other => panic!("unexpected payload {other:?}"),
    }

    // A newer signal wins over the earlier grant again; removing it restores the grant.
    client
        .set_preference_signal(h.req(signal("gina", PreferenceSignalType::DoNotSell, true), BOT))
        .await?;
    let dns = check_on(&h.client, &h, "gina", &["ad_sharing"], ca).await?;
    assert_eq!(dns, vec![(false, DecisionReason::PreferenceSignal as i32)]);
    for kind in [PreferenceSignalType::DoNotSell, PreferenceSignalType::Gpc] {
        client
            .set_preference_signal(h.req(signal("gina", kind, false), BOT))
            .await?;
    }
    let cleared = check_on(&h.client, &h, "gina", &["ad_sharing"], ca).await?;
    assert_eq!(cleared, vec![(true, DecisionReason::Granted as i32)]);

    let state = client
        .get_consent_state(h.req(
            GetConsentStateRequest {
                subject_id: "gina".into(),
                jurisdiction: ca as i32,
            },
            BOT,
        ))
        .await?
        .into_inner();
    assert_eq!(state.signals.len(), 2);
    assert!(state.signals.iter().all(|s| !s.enabled));
    assert_eq!(
        h.outbox_kinds()
            .await?
            .iter()
            .filter(|k| *k == "preference_signal")
            .count(),
        4
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_training_opt_out_signal_turns_model_training_off() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let notice = h.notice().await?;
    h.grant("hal", &["model_training"], &notice).await?;
    let mut client = h.client.clone();
    client
        .set_preference_signal(h.req(
            SetPreferenceSignalRequest {
                source: CollectionMethod::Chat as i32,
                ..signal("hal", PreferenceSignalType::OptOutAiTraining, true)
            },
            BOT,
        ))
        .await?;
    let decided = h.check("hal", &["model_training"]).await?;
    assert_eq!(
        decided,
        vec![(false, DecisionReason::PreferenceSignal as i32)]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signals_are_rejected() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut client = h.client.clone();
    let future = prost_types::Timestamp {
        seconds: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
        nanos: 0,
    };
    for (request, field) in [
        (
            signal("x", PreferenceSignalType::Unspecified, true),
            "signal",
        ),
        (
            SetPreferenceSignalRequest {
                source: 0,
                ..signal("x", PreferenceSignalType::Gpc, true)
            },
            "source",
        ),
        (
            SetPreferenceSignalRequest {
                observed_at: Some(future),
                ..signal("x", PreferenceSignalType::Gpc, true)
            },
            "observed_at",
        ),
        (signal("", PreferenceSignalType::Gpc, true), "subject_id"),
    ] {
        let status = client
            .set_preference_signal(h.req(request, BOT))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(status.message().contains(field), "{}", status.message());
    }
    assert!(h.outbox().await?.is_empty());
    Ok(())
}
