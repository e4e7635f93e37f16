//! Latencies and errors of one phase, and their summary.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinError;

/// Everything one phase measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every answered message, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Messages that failed.
    pub errors: u64,
    /// The first failure (a gRPC status code and message; never message text).
    pub first_error: Option<String>,
    /// Wall time of the phase.
    pub elapsed: Duration,
}

impl Outcome {
    /// Records one message.
    pub fn record(&mut self, latency: Duration, error: Option<tonic::Status>) {
        match error {
            None => self
                .latencies_us
                .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)),
            Some(status) => self.fail(format!("{:?}: {}", status.code(), status.message())),
        }
    }

    /// Records a result from a request task.
    pub fn joined(&mut self, joined: Result<(Duration, Option<tonic::Status>), JoinError>) {
        match joined {
            Ok((latency, error)) => self.record(latency, error),
            Err(error) => self.fail(format!("request task failed: {error}")),
        }
    }

    /// Records a failure.
    pub fn fail(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    /// Adds another worker's outcome (the elapsed time is the caller's to set).
    pub fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Percentiles and rate.
    pub fn summary(mut self) -> Summary {
        self.latencies_us.sort_unstable();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let ok = self.latencies_us.len() as u64;
        let at = |q: f64| percentile(&self.latencies_us, q);
        Summary {
            ok,
            errors: self.errors,
            first_error: self.first_error,
            seconds: secs,
            per_second: ok as f64 / secs,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: self
                .latencies_us
                .last()
                .map_or(0.0, |us| *us as f64 / 1000.0),
        }
    }
}

/// The nearest-rank percentile `q` of sorted microseconds, in milliseconds.
fn percentile(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

/// A phase's figures.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Messages answered.
    pub ok: u64,
    /// Messages failed.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Answered messages per second.
    pub per_second: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile latency.
    pub p90_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Slowest message.
    pub max_ms: f64,
}

impl Summary {
    /// One human line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{:>8.0} msg/s  {} ok in {:.1} s  p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            self.per_second,
            self.ok,
            self.seconds,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms
        );
        if self.errors > 0 {
            line.push_str(&format!(
                "  {} errors (first: {})",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        line
    }

    /// The figures as JSON.
    pub fn json(&self) -> Value {
        json!({
            "ok": self.ok,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(self.seconds),
            "messages_per_second": round(self.per_second),
            "p50_ms": round(self.p50_ms),
            "p90_ms": round(self.p90_ms),
            "p99_ms": round(self.p99_ms),
            "max_ms": round(self.max_ms),
        })
    }
}

/// Two decimals are plenty for milliseconds and rates.
pub fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let us: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(percentile(&us, 0.50), 50.0);
        assert_eq!(percentile(&us, 0.99), 99.0);
        assert_eq!(percentile(&us, 1.0), 100.0);
        assert_eq!(percentile(&[7000], 0.5), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn summary_counts_errors_apart_from_latencies() {
        let mut outcome = Outcome::default();
        outcome.record(Duration::from_millis(2), None);
        outcome.record(Duration::from_millis(4), None);
        outcome.record(
            Duration::from_millis(1),
            Some(tonic::Status::unavailable("down")),
        );
        outcome.elapsed = Duration::from_secs(1);
        let summary = outcome.summary();
        assert_eq!((summary.ok, summary.errors), (2, 1));
        assert_eq!(summary.per_second, 2.0);
        assert_eq!(summary.max_ms, 4.0);
        assert!(
            summary
                .first_error
                .unwrap_or_default()
                .contains("Unavailable")
        );
    }
}
