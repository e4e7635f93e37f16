//! Capped exponential backoff shared by the relay and consumers, plus error formatting.

use std::error::Error;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Doubles from `min` to `max`; `reset` after a success.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait now; the following one doubles up to the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// Waits the next delay; returns `false` if shutdown came first.
    pub(crate) async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

/// An error with its sources, `a: b: c`, cut to `max_len` bytes for storage in a row.
pub(crate) fn error_chain(error: &dyn Error, max_len: usize) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.len() > max_len {
        let mut cut = max_len;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let delays: Vec<u128> = (0..8).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(50));
    }

    #[test]
    fn error_chain_joins_sources_and_truncates_on_char_boundary() {
        let inner = std::io::Error::other("connection refused");
        let outer = crate::events::EventsError::nats("publish", inner);
        assert_eq!(
            error_chain(&outer, 200),
            "nats publish failed: connection refused"
        );
        let long = std::io::Error::other("é".repeat(10));
        assert_eq!(error_chain(&long, 5), "éé");
    }
}
