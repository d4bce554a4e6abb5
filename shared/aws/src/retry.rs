//! Bounded exponential backoff with full jitter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How often and how patiently an adapter retries a throttled call.
///
/// Attempt `n` (0-based) that fails retryably is followed by a sleep drawn
/// uniformly from `[delay/2, delay]` where `delay = min(max_delay, base * 2^n)`
/// ("equal jitter": never zero, never in lock-step with other callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Total attempts, including the first one. At least 1.
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            max_attempts: 5,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// No retries at all.
    pub fn none() -> Backoff {
        Backoff {
            max_attempts: 1,
            base: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// The upper bound of the sleep after failed attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_delay)
    }

    /// The jittered sleep after failed attempt `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + half.mul_f64(unit_random())
    }

    /// Whether another attempt is allowed after `attempts_made` attempts.
    pub fn may_retry(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts.max(1)
    }
}

/// Runs `op` until it succeeds, fails for a reason other than throttling,
/// or `backoff`'s attempts are used up (the last error then); each retry
/// is counted in `retries`. `what` names the call in the debug log.
pub(crate) async fn retry_throttled<T, F, Fut>(
    backoff: &Backoff,
    retries: &std::sync::atomic::AtomicU64,
    what: &str,
    mut op: F,
) -> Result<T, crate::error::Classified>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::error::Classified>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(c) if c.fault == crate::error::Fault::Throttled && backoff.may_retry(attempts) => {
                let delay = backoff.delay(attempts - 1);
                tracing::debug!(what, attempts, ?delay, "throttled, backing off");
                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(delay).await;
            }
            Err(c) => return Err(c),
        }
    }
}

/// A random number in `[0, 1)`, from std's per-instance random hasher keys.
fn unit_random() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        let b = Backoff {
            max_attempts: 4,
            base: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(400));
        assert_eq!(b.ceiling(3), Duration::from_millis(500));
        assert_eq!(b.ceiling(60), Duration::from_millis(500));
        for attempt in 0..6 {
            let d = b.delay(attempt);
            assert!(
                d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt),
                "{d:?}"
            );
        }
        assert!(b.may_retry(3));
        assert!(!b.may_retry(4));
        assert!(!Backoff::none().may_retry(1));
    }

    #[test]
    fn jitter_varies() {
        let xs: Vec<f64> = (0..16).map(|_| unit_random()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.windows(2).any(|w| w[0] != w[1]));
    }
}
