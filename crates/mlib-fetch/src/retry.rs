//! Backoff: exponential from a base, capped, with jitter so many pods restarting together do
//! not hammer a hub in lockstep; a server's `Retry-After` wins (up to a cap).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub retries: u32,
    pub base: Duration,
    pub max: Duration,
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn from_config(config: &crate::FetchConfig) -> RetryPolicy {
        RetryPolicy {
            retries: config.retries,
            base: config.backoff_base,
            max: config.backoff_max,
            max_retry_after: config.max_retry_after,
        }
    }

    /// The pause before attempt `attempt + 1` (`attempt` counts from 1).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        // Full jitter in [50%, 100%]: spreads retries without ever retrying instantly.
        exp.mul_f64(0.5 + 0.5 * unit_random())
    }
}

/// A number in [0, 1) that differs between threads and calls; quality is irrelevant here.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After` as seconds or as an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = (when.as_second() - now.as_second()).max(0);
    Some(Duration::from_secs(secs as u64))
}

/// The seconds until a rate-limit window resets, from a `RateLimit` header as the Hub sends
/// it (`"resolvers";r=0;t=89`).
pub(crate) fn parse_ratelimit_reset(value: &str) -> Option<Duration> {
    value
        .split(';')
        .find_map(|part| part.trim().strip_prefix("t="))
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// `RateLimit-Policy` (`"fixed window";"resolvers";q=5000;w=300`) in words: "5000 requests
/// per 300 s".
pub(crate) fn describe_policy(value: &str) -> Option<String> {
    let field = |name: &str| {
        value
            .split(';')
            .find_map(|part| part.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(format!("{} requests per {} s", field("q=")?, field("w=")?))
}

/// Traces a retry: which file or request, the attempt, the pause, and why (`reason` must
/// already be redacted: it is shown as it is).
pub(crate) fn trace_retry(label: &str, attempt: u32, retries: u32, delay: Duration, reason: &str) {
    tracing::debug!(
        what = label,
        attempt,
        of = retries,
        delay = ?delay,
        reason,
        "retrying"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            retries: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(350),
            max_retry_after: Duration::from_secs(2),
        };
        let d1 = p.delay(1, None);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d3 = p.delay(3, None);
        assert!(d3 >= Duration::from_millis(175) && d3 <= Duration::from_millis(350));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
