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
    fn zero_disables_limits() {
        let limiter = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert!(limiter.check("k").is_ok());
        }
    }
}
