//! Per-key rate limits (token buckets) on every authenticated entry point: a caller over
//! its limit gets RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` saying when to come
//! back.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Governor};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use veil_proto::events::v1::AuthFailureReason;

use crate::apikeys::{Authenticator, Caller};
use crate::peer::Peer;

/// Token buckets keyed by API key id.
pub struct RateLimiter {
    buckets: Option<DefaultKeyedRateLimiter<String>>,
    /// One refusal per key and second is recorded: a caller far over its limit would
    /// otherwise write the audit log at the rate of its flood.
    reports: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl RateLimiter {
    /// `per_second` sustained calls per key with bursts up to `burst`; 0 disables limits.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let buckets = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            Governor::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            buckets,
            reports: Governor::keyed(Quota::per_second(NonZeroU32::MIN)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `caller`'s key; a refusal is recorded for audit's rules (as a
    /// `RATE_LIMITED` authentication failure), at most once per key and second.
    pub async fn admit(
        &self,
        auth: &Authenticator,
        caller: &Caller,
        peer: Peer,
        method: &str,
    ) -> Result<(), Status> {
        let Err(refused) = self.check(&caller.key_id) else {
            return Ok(());
        };
        if self.report_due(&caller.key_id) {
            auth.record_denied(caller, peer, method, AuthFailureReason::RateLimited)
                .await;
        }
        Err(refused)
    }

    fn report_due(&self, key: &str) -> bool {
        self.reports.check_key(&key.to_string()).is_ok()
    }

    /// Takes one token for `key`, or says how long to wait.
    fn check(&self, key: &str) -> Result<(), Status> {
        let Some(buckets) = &self.buckets else {
            return Ok(());
        };
        match buckets.check_key(&key.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(Status::with_error_details(
                    Code::ResourceExhausted,
                    format!(
                        "rate limit exceeded; retry in {} ms",
                        wait.as_millis().max(1)
                    ),
                    ErrorDetails::with_retry_info(Some(wait)),
                ))
            }
        }
    }
}

/// Refusals recorded per source (peer ref, else key prefix): a source sending bad
/// credentials or forbidden calls as fast as it can would otherwise write the audit log
/// at its own rate. The first [`FAILURE_BURST`] refusals of a source are recorded, then
/// [`FAILURE_RATE`] a second; audit's burst rule (20 in 60 s by default) has opened its
/// incident long before. Every refusal is still refused.
pub struct FailureRecords {
    sources: DefaultKeyedRateLimiter<String>,
}

/// Refusals of one source recorded per second once its burst is spent.
pub const FAILURE_RATE: u32 = 10;
/// Refusals of one source recorded at once.
pub const FAILURE_BURST: u32 = 50;
/// Sources tracked before idle ones are dropped (a few hundred bytes each).
const TRACKED_SOURCES: usize = 100_000;

impl Default for FailureRecords {
    fn default() -> Self {
        let rate = NonZeroU32::new(FAILURE_RATE).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(FAILURE_BURST).unwrap_or(rate);
        Self {
            sources: Governor::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }
}

impl FailureRecords {
    /// Whether this refusal of `source` is recorded.
    pub fn due(&self, source: &str) -> bool {
        if self.sources.len() >= TRACKED_SOURCES {
            self.sources.retain_recent();
        }
        self.sources.check_key(&source.to_string()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_allowed_then_refused_with_retry_info() {
        let limiter = RateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.check("k1").is_ok());
        }
        let status = limiter.check("k1").expect_err("over the burst");
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = status.get_error_details();
        assert!(details.retry_info().is_some());
        // Another key has its own bucket.
        assert!(limiter.check("k2").is_ok());
    }

    #[test]
    fn refusals_are_reported_once_per_key_and_second() {
        let limiter = RateLimiter::new(1, 1);
        assert!(limiter.report_due("k1"));
        assert!(!limiter.report_due("k1"), "within the same second");
        assert!(limiter.report_due("k2"), "another key reports its own");
    }

    #[test]
    fn a_source_past_its_burst_is_recorded_at_its_rate() {
        let records = FailureRecords::default();
        let recorded = (0..1000).filter(|_| records.due("peer_a")).count();
        // The burst, and whatever the rate refilled while the loop ran.
        assert!(
            (FAILURE_BURST as usize..FAILURE_BURST as usize + 5).contains(&recorded),
            "{recorded}"
        );
        assert!(records.due("peer_b"), "another source has its own budget");
    }

    #[test]
    fn zero_disables_limits() {
        let limiter = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert!(limiter.check("k").is_ok());
        }
    }
}
