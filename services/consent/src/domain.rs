//! Pure consent logic: purposes, the subject's current state and the decision per purpose.
//! No I/O here, so the hot path of `CheckConsent` is a function of cached values.

use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_proto::common::v1::{
    ConsentDecision, DecisionReason, Jurisdiction, LegalBasis, PreferenceSignalType,
    PurposeDecision,
};
use veil_proto::consent::v1::{ConsentDefault, ConsentState};

/// Key of the purpose every tenant has: using conversations to train AI models. Off
/// unless the subject opts in, everywhere.
pub const MODEL_TRAINING: &str = "model_training";

/// A purpose as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PurposeDef {
    pub key: String,
    pub name: String,
    pub description: String,
    pub legal_basis: i32,
    pub data_categories: Vec<String>,
    pub retention_secs: Option<i64>,
    pub consent_required: bool,
    /// `(jurisdiction, consent_default)` as proto enum numbers.
    #[sqlx(json)]
    pub defaults: Vec<(i32, i32)>,
    pub withdrawal_method: String,
    pub recipient_keys: Vec<String>,
    pub opted_out_by: Vec<i32>,
    pub consent_validity_secs: Option<i64>,
    pub archived: bool,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl PurposeDef {
    /// The purpose every tenant has until it defines its own `model_training`.
    pub fn builtin_model_training() -> Self {
        Self {
            key: MODEL_TRAINING.into(),
            name: "Model training".into(),
            description: "Using your conversations to train or improve AI models.".into(),
            legal_basis: LegalBasis::Consent as i32,
            data_categories: vec!["conversation_content".into()],
            retention_secs: None,
            consent_required: true,
            defaults: Vec::new(),
            withdrawal_method: "Say \"stop using my chats for training\" in the chat, or use \
                                the privacy settings."
                .into(),
            recipient_keys: Vec::new(),
            opted_out_by: vec![PreferenceSignalType::OptOutAiTraining as i32],
            consent_validity_secs: None,
            archived: false,
            version: 1,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The default for a subject without a record; a jurisdiction not listed is opt-in.
    pub fn default_for(&self, jurisdiction: i32) -> ConsentDefault {
        self.defaults
            .iter()
            .find(|(j, _)| *j == jurisdiction)
            .and_then(|(_, d)| ConsentDefault::try_from(*d).ok())
            .filter(|d| *d != ConsentDefault::Unspecified)
            .unwrap_or(ConsentDefault::OptIn)
    }
}

/// A subject's current (latest) record for one purpose.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentRecord {
    pub record_id: Uuid,
    pub purpose_key: String,
    pub state: i32,
    pub event_time: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub notice_version: i32,
}

impl CurrentRecord {
    /// Whether this record grants the purpose at `now`.
    pub fn grants_at(&self, now: OffsetDateTime) -> bool {
        self.state == ConsentState::Granted as i32 && self.expires_at.is_none_or(|at| at > now)
    }
}

/// A subject's latest value of one preference signal.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalState {
    pub signal: i32,
    pub enabled: bool,
    pub observed_at: OffsetDateTime,
}

/// What decisions about one subject depend on: the latest record per purpose and the
/// latest value of each preference signal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubjectState {
    pub records: Vec<CurrentRecord>,
    pub signals: Vec<SignalState>,
}

impl SubjectState {
    /// The current record for `purpose_key`.
    pub fn record(&self, purpose_key: &str) -> Option<&CurrentRecord> {
        self.records.iter().find(|r| r.purpose_key == purpose_key)
    }

    /// When the newest enabled signal among `signals` was observed, if any is enabled.
    pub fn opted_out_since(&self, signals: &[i32]) -> Option<OffsetDateTime> {
        self.signals
            .iter()
            .filter(|s| s.enabled && signals.contains(&s.signal))
            .map(|s| s.observed_at)
            .max()
    }
}

/// The decision for one purpose. Order: preference signals first (a later, explicit
/// grant still wins and is flagged when recorded), then other legal bases, then the
/// subject's record, then the jurisdiction default.
pub fn decide(
    purpose: &PurposeDef,
    state: &SubjectState,
    jurisdiction: i32,
    now: OffsetDateTime,
) -> PurposeDecision {
    let mut decision = PurposeDecision {
        purpose_key: purpose.key.clone(),
        legal_basis: purpose.legal_basis,
        ..Default::default()
    };
    let record = state.record(&purpose.key);
    let justify = |decision: &mut PurposeDecision, record: &CurrentRecord| {
        decision.record_id = record.record_id.to_string();
        decision.notice_version = record.notice_version;
    };
    let (allowed, reason) = if let Some(signal_at) = state.opted_out_since(&purpose.opted_out_by) {
        match record {
            Some(r) if r.grants_at(now) && r.event_time > signal_at => {
                justify(&mut decision, r);
                (true, DecisionReason::Granted)
            }
            _ => (false, DecisionReason::PreferenceSignal),
        }
    } else if !purpose.consent_required {
        (true, DecisionReason::OtherLegalBasis)
    } else if let Some(r) = record {
        justify(&mut decision, r);
        match ConsentState::try_from(r.state) {
            Ok(ConsentState::Granted) if r.grants_at(now) => (true, DecisionReason::Granted),
            Ok(ConsentState::Granted | ConsentState::Expired) => (false, DecisionReason::Expired),
            Ok(ConsentState::Withdrawn) => (false, DecisionReason::Withdrawn),
            _ => (false, DecisionReason::Denied),
        }
    } else {
        match purpose.default_for(jurisdiction) {
            ConsentDefault::OptOut => (true, DecisionReason::NoRecordOptOut),
            _ => (false, DecisionReason::NoRecordOptIn),
        }
    };
    decision.decision = if allowed {
        ConsentDecision::Allowed
    } else {
        ConsentDecision::Denied
    } as i32;
    decision.reason = reason as i32;
    decision
}

/// `at` cut to whole microseconds, the precision Postgres keeps, so what is signed into
/// a receipt is exactly what is stored.
pub fn to_micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap_or(at)
}

/// The current time at microsecond precision.
pub fn now() -> OffsetDateTime {
    to_micros(OffsetDateTime::now_utc())
}

/// Jurisdictions whose law requires consent to be opted into.
pub fn requires_opt_in(jurisdiction: i32) -> bool {
    [
        Jurisdiction::EuGdpr as i32,
        Jurisdiction::UkGdpr as i32,
        Jurisdiction::BrLgpd as i32,
    ]
    .contains(&jurisdiction)
}

pub use veil_core::validate::{validate_key, validate_keys, validate_locale};

/// Checks free text: at most `max` bytes, no control characters except newlines and tabs.
pub fn validate_text(field: &str, text: &str, max: usize) -> Result<(), ServiceError> {
    if text.len() > max {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ServiceError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks an optional URL: empty, or http(s) without spaces, at most 2048 bytes.
pub fn validate_url(field: &str, url: &str) -> Result<(), ServiceError> {
    if url.is_empty() {
        return Ok(());
    }
    let ok = url.len() <= 2048
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            "must be an http(s) URL of at most 2048 bytes",
        ))
    }
}

/// Locales to try for a notice: the exact tag, then its language, then the fallback.
pub fn locale_chain(locale: &str, fallback: &str) -> Vec<String> {
    let mut chain = vec![locale.to_string()];
    if let Some((language, _)) = locale.split_once('-') {
        chain.push(language.to_string());
    }
    if !chain.iter().any(|l| l == fallback) {
        chain.push(fallback.to_string());
    }
    chain
}

/// `LEGAL_BASIS_CONSENT` -> `consent`: the readable name of an enum value for receipts
/// and exports.
pub fn enum_label(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

#[cfg(test)]
#[path = "domain_tests.rs"]
mod tests;
