use time::Duration;

use super::*;

fn purpose(consent_required: bool) -> PurposeDef {
    PurposeDef {
        key: "marketing".into(),
        legal_basis: if consent_required {
            LegalBasis::Consent as i32
        } else {
            LegalBasis::Contract as i32
        },
        consent_required,
        ..PurposeDef::builtin_model_training()
    }
}

fn record(
    state: ConsentState,
    at: OffsetDateTime,
    expires: Option<OffsetDateTime>,
) -> CurrentRecord {
    CurrentRecord {
        record_id: Uuid::now_v7(),
        purpose_key: "marketing".into(),
        state: state as i32,
        event_time: at,
        expires_at: expires,
        notice_version: 3,
    }
}

fn state(records: Vec<CurrentRecord>, signals: Vec<SignalState>) -> SubjectState {
    SubjectState { records, signals }
}

fn gpc(at: OffsetDateTime, enabled: bool) -> SignalState {
    SignalState {
        signal: PreferenceSignalType::Gpc as i32,
        enabled,
        observed_at: at,
    }
}

fn reason(d: &PurposeDecision) -> (bool, DecisionReason) {
    (
        d.decision == ConsentDecision::Allowed as i32,
        DecisionReason::try_from(d.reason).unwrap_or(DecisionReason::Unspecified),
    )
}

const EU: i32 = Jurisdiction::EuGdpr as i32;
const CCPA: i32 = Jurisdiction::UsCaCcpa as i32;

#[test]
fn other_legal_basis_is_allowed_without_a_record() {
    let now = OffsetDateTime::now_utc();
    let d = decide(&purpose(false), &SubjectState::default(), EU, now);
    assert_eq!(reason(&d), (true, DecisionReason::OtherLegalBasis));
    assert!(d.record_id.is_empty());
}

#[test]
fn consent_without_record_follows_the_jurisdiction_default() {
    let now = OffsetDateTime::now_utc();
    let mut p = purpose(true);
    p.defaults = vec![(CCPA, ConsentDefault::OptOut as i32)];
    let none = SubjectState::default();
    assert_eq!(
        reason(&decide(&p, &none, EU, now)),
        (false, DecisionReason::NoRecordOptIn)
    );
    assert_eq!(
        reason(&decide(&p, &none, CCPA, now)),
        (true, DecisionReason::NoRecordOptOut)
    );
    assert_eq!(
        reason(&decide(&p, &none, 0, now)),
        (false, DecisionReason::NoRecordOptIn)
    );
}

#[test]
fn the_current_record_decides() {
    let now = OffsetDateTime::now_utc();
    let p = purpose(true);
    let granted = record(ConsentState::Granted, now - Duration::minutes(1), None);
    let d = decide(&p, &state(vec![granted.clone()], vec![]), EU, now);
    assert_eq!(reason(&d), (true, DecisionReason::Granted));
    assert_eq!(d.record_id, granted.record_id.to_string());
    assert_eq!(d.notice_version, 3);
    for (s, expected) in [
        (ConsentState::Withdrawn, DecisionReason::Withdrawn),
        (ConsentState::Denied, DecisionReason::Denied),
        (ConsentState::Expired, DecisionReason::Expired),
    ] {
        let r = record(s, now, None);
        let d = decide(&p, &state(vec![r.clone()], vec![]), CCPA, now);
        assert_eq!(reason(&d), (false, expected));
        assert_eq!(d.record_id, r.record_id.to_string());
    }
}

#[test]
fn a_grant_past_its_expiry_is_expired() {
    let now = OffsetDateTime::now_utc();
    let r = record(
        ConsentState::Granted,
        now - Duration::days(2),
        Some(now - Duration::seconds(1)),
    );
    let d = decide(&purpose(true), &state(vec![r], vec![]), EU, now);
    assert_eq!(reason(&d), (false, DecisionReason::Expired));
    let later = record(ConsentState::Granted, now, Some(now + Duration::days(1)));
    let d = decide(&purpose(true), &state(vec![later], vec![]), EU, now);
    assert_eq!(reason(&d), (true, DecisionReason::Granted));
}

#[test]
fn preference_signal_beats_defaults_and_earlier_grants() {
    let now = OffsetDateTime::now_utc();
    let mut p = purpose(true);
    p.defaults = vec![(CCPA, ConsentDefault::OptOut as i32)];
    p.opted_out_by = vec![PreferenceSignalType::Gpc as i32];
    let signal = gpc(now - Duration::minutes(5), true);
    let none = state(vec![], vec![signal.clone()]);
    assert_eq!(
        reason(&decide(&p, &none, CCPA, now)),
        (false, DecisionReason::PreferenceSignal)
    );
    let earlier = record(ConsentState::Granted, now - Duration::minutes(10), None);
    let d = decide(&p, &state(vec![earlier], vec![signal.clone()]), CCPA, now);
    assert_eq!(reason(&d), (false, DecisionReason::PreferenceSignal));
    // A later, explicit grant is the subject's own specific choice and wins.
    let later = record(ConsentState::Granted, now - Duration::minutes(1), None);
    let d = decide(&p, &state(vec![later], vec![signal]), CCPA, now);
    assert_eq!(reason(&d), (true, DecisionReason::Granted));
    // A removed signal no longer applies.
    let off = state(vec![], vec![gpc(now, false)]);
    assert_eq!(
        reason(&decide(&p, &off, CCPA, now)),
        (true, DecisionReason::NoRecordOptOut)
    );
}

#[test]
fn signals_only_touch_purposes_that_name_them() {
    let now = OffsetDateTime::now_utc();
    let s = state(vec![], vec![gpc(now, true)]);
    let d = decide(&purpose(false), &s, EU, now);
    assert_eq!(reason(&d), (true, DecisionReason::OtherLegalBasis));
    let mut objectable = purpose(false);
    objectable.opted_out_by = vec![PreferenceSignalType::Gpc as i32];
    let d = decide(&objectable, &s, EU, now);
    assert_eq!(reason(&d), (false, DecisionReason::PreferenceSignal));
}

#[test]
fn model_training_is_off_by_default_everywhere() {
    let now = OffsetDateTime::now_utc();
    let p = PurposeDef::builtin_model_training();
    for j in [0, EU, CCPA, Jurisdiction::Other as i32] {
        let d = decide(&p, &SubjectState::default(), j, now);
        assert_eq!(d.decision, ConsentDecision::Denied as i32);
    }
}

#[test]
fn keys_and_locales_are_checked() {
    assert!(validate_key("k", "support_2").is_ok());
    assert!(validate_key("k", "Support").is_err());
    assert!(validate_key("k", "").is_err());
    assert!(validate_keys("k", &["a".into(), "a".into()], 5).is_err());
    assert_eq!(validate_locale("de-at").as_deref(), Ok("de-AT"));
    assert_eq!(validate_locale("zh_hant_tw").as_deref(), Ok("zh-Hant-TW"));
    assert!(validate_locale("english!").is_err());
    assert!(validate_locale("").is_err());
    assert_eq!(locale_chain("de-AT", "en"), vec!["de-AT", "de", "en"]);
    assert_eq!(locale_chain("en", "en"), vec!["en"]);
}

#[test]
fn texts_and_urls_are_checked() {
    assert!(validate_text("t", "line\nline", 20).is_ok());
    assert!(validate_text("t", "bell\u{7}", 20).is_err());
    assert!(validate_text("t", "too long", 3).is_err());
    assert!(validate_url("u", "").is_ok());
    assert!(validate_url("u", "https://example.com/privacy").is_ok());
    assert!(validate_url("u", "javascript:alert(1)").is_err());
    assert_eq!(enum_label("LEGAL_BASIS_CONSENT", "LEGAL_BASIS_"), "consent");
}
