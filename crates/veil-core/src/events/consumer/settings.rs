//! Consumer tuning.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Consumer tuning; durations in the unit their name says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Messages requested per pull.
    pub batch_size: usize,
    /// How long the server holds a pull open when there is nothing to deliver.
    pub fetch_expires_ms: u64,
    /// Redelivery after this long without an ack (a crashed or stuck handler).
    pub ack_wait_secs: u64,
    /// Delivery attempts before JetStream gives up; -1 is unlimited.
    pub max_deliver: i64,
    /// Unacknowledged messages outstanding at once.
    pub max_ack_pending: i64,
    /// First redelivery delay after a retryable handler error; doubles per delivery.
    pub retry_delay_ms: u64,
    /// Cap of the redelivery delay.
    pub retry_delay_max_ms: u64,
    /// First wait after a NATS or database failure of the loop itself.
    pub backoff_min_ms: u64,
    /// Cap of that wait.
    pub backoff_max_ms: u64,
    /// How often the lag gauge is refreshed.
    pub lag_refresh_ms: u64,
    /// `processed_events` rows are kept this many days (must outlast any redelivery).
    pub processed_retention_days: u64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            batch_size: 64,
            fetch_expires_ms: 2_000,
            ack_wait_secs: 30,
            max_deliver: -1,
            max_ack_pending: 1_000,
            retry_delay_ms: 500,
            retry_delay_max_ms: 60_000,
            backoff_min_ms: 50,
            backoff_max_ms: 2_000,
            lag_refresh_ms: 5_000,
            processed_retention_days: 30,
        }
    }
}

impl ConsumerSettings {
    /// Checks the values; the error starts with the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1_000).contains(&self.batch_size) {
            return Err("batch_size: must be between 1 and 1000".to_owned());
        }
        if self.fetch_expires_ms < 100 {
            return Err("fetch_expires_ms: must be at least 100".to_owned());
        }
        if self.ack_wait_secs == 0 {
            return Err("ack_wait_secs: must be at least 1".to_owned());
        }
        if self.max_deliver == 0 || self.max_deliver < -1 {
            return Err("max_deliver: must be positive or -1 (unlimited)".to_owned());
        }
        if self.max_ack_pending < 1 {
            return Err("max_ack_pending: must be at least 1".to_owned());
        }
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            return Err(
                "backoff_min_ms: must be at least 1 and not above backoff_max_ms".to_owned(),
            );
        }
        if self.lag_refresh_ms == 0 {
            return Err("lag_refresh_ms: must be at least 1".to_owned());
        }
        let ms = Duration::from_millis;
        let days = self.processed_retention_days.saturating_mul(86_400);
        if let Some(key) = crate::config::too_long(&[
            ("fetch_expires_ms", ms(self.fetch_expires_ms)),
            ("ack_wait_secs", Duration::from_secs(self.ack_wait_secs)),
            ("retry_delay_ms", ms(self.retry_delay_ms)),
            ("retry_delay_max_ms", ms(self.retry_delay_max_ms)),
            ("backoff_max_ms", ms(self.backoff_max_ms)),
            ("lag_refresh_ms", ms(self.lag_refresh_ms)),
            ("processed_retention_days", Duration::from_secs(days)),
        ]) {
            return Err(format!("{key}: {}", crate::config::TOO_LONG));
        }
        Ok(())
    }

    pub(super) fn retry_delay(&self, delivered: u64) -> Duration {
        let doublings = delivered.saturating_sub(1).min(20) as u32;
        let delay = self.retry_delay_ms.saturating_mul(1 << doublings);
        Duration::from_millis(delay.min(self.retry_delay_max_ms))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn retry_delay_doubles_per_delivery_up_to_the_cap() {
        let settings = ConsumerSettings {
            retry_delay_ms: 100,
            retry_delay_max_ms: 1_000,
            ..ConsumerSettings::default()
        };
        let delays: Vec<u128> = (1..=6)
            .map(|n| settings.retry_delay(n).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(settings.retry_delay(u64::MAX).as_millis(), 1_000);
    }

    #[test]
    fn default_settings_are_valid() {
        assert_eq!(ConsumerSettings::default().validate(), Ok(()));
        let bad = ConsumerSettings {
            max_deliver: 0,
            ..ConsumerSettings::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("max_deliver"));
    }
}
