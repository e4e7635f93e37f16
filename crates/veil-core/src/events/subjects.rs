//! Event configuration and the one place that builds subject names.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::consumer::ConsumerSettings;
use super::error::EventsError;
use super::relay::RelaySettings;

/// Where events go: stream, subject prefix, stream limits, relay and consumer tuning.
///
/// Tests isolate themselves by choosing their own `stream` and `subject_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// JetStream stream name.
    pub stream: String,
    /// Dotted subject prefix; subjects are `{prefix}.{service}.{event}`.
    pub subject_prefix: String,
    /// JetStream de-duplication window on `Nats-Msg-Id`, in milliseconds.
    pub duplicate_window_ms: u64,
    /// Maximum age of stream messages in seconds; 0 keeps them until a size limit.
    pub max_age_secs: u64,
    /// Maximum stream size in bytes; -1 is unlimited. When full, publishes are refused
    /// (the outbox keeps the events) instead of discarding unconsumed data.
    pub max_bytes: i64,
    /// Stream replicas (1 on a single server).
    pub replicas: usize,
    /// Outbox relay tuning.
    pub relay: RelaySettings,
    /// Consumer tuning.
    pub consumer: ConsumerSettings,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            stream: "VEIL_EVENTS".to_owned(),
            subject_prefix: "veil.events".to_owned(),
            duplicate_window_ms: 120_000,
            max_age_secs: 0,
            max_bytes: -1,
            replicas: 1,
            relay: RelaySettings::default(),
            consumer: ConsumerSettings::default(),
        }
    }
}

impl EventsConfig {
    /// The subject of one event kind: `{prefix}.{service}.{event}`.
    pub fn subject(&self, service: &str, event: &str) -> Result<String, EventsError> {
        validate_token("service", service)?;
        validate_token("event", event)?;
        Ok(format!("{}.{service}.{event}", self.subject_prefix))
    }

    /// The filter for every event: `{prefix}.>`.
    pub fn all(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// The filter for every event of one service: `{prefix}.{service}.*`.
    pub fn service_all(&self, service: &str) -> Result<String, EventsError> {
        validate_token("service", service)?;
        Ok(format!("{}.{service}.*", self.subject_prefix))
    }

    /// Splits a subject under this prefix into `(service, event)`.
    pub fn parse<'s>(&self, subject: &'s str) -> Option<(&'s str, &'s str)> {
        parse_subject(&self.subject_prefix, subject)
    }

    /// Checks names and limits; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        validate_stream_name(&self.stream).map_err(|e| format!("stream: {e}"))?;
        validate_prefix(&self.subject_prefix).map_err(|e| format!("subject_prefix: {e}"))?;
        if let Some(key) = crate::config::too_long(&[
            (
                "duplicate_window_ms",
                Duration::from_millis(self.duplicate_window_ms),
            ),
            ("max_age_secs", Duration::from_secs(self.max_age_secs)),
        ]) {
            return Err(format!("{key}: {}", crate::config::TOO_LONG));
        }
        if self.duplicate_window_ms == 0 {
            return Err("duplicate_window_ms: must be at least 1".to_owned());
        }
        if self.max_age_secs != 0 && self.max_age_secs * 1000 < self.duplicate_window_ms {
            return Err("max_age_secs: must not be shorter than duplicate_window_ms".to_owned());
        }
        if self.max_bytes == 0 || self.max_bytes < -1 {
            return Err("max_bytes: must be positive or -1 (unlimited)".to_owned());
        }
        if self.replicas == 0 || self.replicas > 5 {
            return Err("replicas: must be between 1 and 5".to_owned());
        }
        self.relay.validate().map_err(|e| format!("relay.{e}"))?;
        self.consumer
            .validate()
            .map_err(|e| format!("consumer.{e}"))
    }
}

/// Splits `{prefix}.{service}.{event}` into `(service, event)`; `None` if the subject is
/// not an event subject under `prefix`.
pub fn parse_subject<'s>(prefix: &str, subject: &'s str) -> Option<(&'s str, &'s str)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let (service, event) = rest.split_once('.')?;
    if validate_token("service", service).is_err() || validate_token("event", event).is_err() {
        return None;
    }
    Some((service, event))
}

/// Checks one subject token: 1 to 64 of `[A-Za-z0-9_-]`, so no spaces, dots or wildcards.
pub fn validate_token(what: &'static str, value: &str) -> Result<(), EventsError> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > 64 {
        Some("must be at most 64 characters")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Some("may only contain letters, digits, '_' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(EventsError::InvalidName {
            what,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn validate_prefix(prefix: &str) -> Result<(), EventsError> {
    prefix
        .split('.')
        .try_for_each(|token| validate_token("subject prefix", token))
}

fn validate_stream_name(name: &str) -> Result<(), EventsError> {
    validate_token("stream", name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn builds_subjects_under_the_prefix() {
        let config = EventsConfig::default();
        assert_eq!(
            config.subject("consent", "withdrawn").unwrap(),
            "veil.events.consent.withdrawn"
        );
        assert_eq!(config.all(), "veil.events.>");
        assert_eq!(config.service_all("vault").unwrap(), "veil.events.vault.*");
        let custom = EventsConfig {
            subject_prefix: "t123.veil.events".into(),
            ..EventsConfig::default()
        };
        assert_eq!(
            custom.subject("audit", "tree_head_signed").unwrap(),
            "t123.veil.events.audit.tree_head_signed"
        );
    }

    #[test]
    fn rejects_tokens_that_would_change_the_subject_shape() {
        let config = EventsConfig::default();
        for bad in ["", "a.b", "a b", "*", ">", "a*", "tab\t", "ü"] {
            assert!(config.subject(bad, "x").is_err(), "service {bad:?}");
            assert!(config.subject("x", bad).is_err(), "event {bad:?}");
        }
        assert!(config.subject(&"a".repeat(65), "x").is_err());
        assert!(config.subject("request-state_changed2", "x").is_ok());
    }

    #[test]
    fn parses_only_subjects_under_the_prefix() {
        let config = EventsConfig::default();
        assert_eq!(
            config.parse("veil.events.consent.granted"),
            Some(("consent", "granted"))
        );
        assert_eq!(config.parse("veil.eventsx.consent.granted"), None);
        assert_eq!(config.parse("veil.events.consent"), None);
        assert_eq!(config.parse("veil.events.consent.a.b"), None);
        assert_eq!(config.parse("other.consent.granted"), None);
    }

    #[test]
    fn default_config_is_valid_and_bad_values_name_their_key() {
        assert_eq!(EventsConfig::default().validate(), Ok(()));
        let bad_prefix = EventsConfig {
            subject_prefix: "veil..events".into(),
            ..EventsConfig::default()
        };
        assert!(
            bad_prefix
                .validate()
                .unwrap_err()
                .starts_with("subject_prefix")
        );
        let bad_stream = EventsConfig {
            stream: "VEIL.EVENTS".into(),
            ..EventsConfig::default()
        };
        assert!(bad_stream.validate().unwrap_err().starts_with("stream"));
        let bad_age = EventsConfig {
            max_age_secs: 1,
            ..EventsConfig::default()
        };
        assert!(bad_age.validate().unwrap_err().starts_with("max_age_secs"));
    }

    #[test]
    fn deserializes_partial_config_with_defaults() {
        let config: EventsConfig =
            serde_json::from_str(r#"{"stream":"S1","relay":{"batch_size":7}}"#).unwrap();
        assert_eq!(config.stream, "S1");
        assert_eq!(config.subject_prefix, "veil.events");
        assert_eq!(config.relay.batch_size, 7);
        assert_eq!(
            config.relay.poll_interval_ms,
            RelaySettings::default().poll_interval_ms
        );
    }
}
