//! Backoff between attempts.

use std::time::Duration;

/// Exponential backoff with jitter, bounded by `base` and `max`.
///
/// The n-th retry waits about `base × 2^(n−1)`, spread by ±25 % so that a
/// burst of failures does not come back as a burst, and always between
/// `base` and `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The shortest wait (default 1 s).
    pub base: Duration,
    /// The longest wait (default 2 min).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before the execution that follows failed execution number
    /// `attempt` (1 for the first).
    pub fn delay(&self, attempt: i32) -> Duration {
        let exponent = attempt.saturating_sub(1).clamp(0, 30) as u32;
        let nominal = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let spread = 0.75 + fastrand::f64() * 0.5;
        nominal
            .mul_f64(spread)
            .clamp(self.base, self.max.max(self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_always_lies_between_base_and_max() {
        let policy = RetryPolicy::default();
        for attempt in -1..=100 {
            for _ in 0..50 {
                let delay = policy.delay(attempt);
                assert!(delay >= policy.base, "attempt {attempt}: {delay:?}");
                assert!(delay <= policy.max, "attempt {attempt}: {delay:?}");
            }
        }
    }

    #[test]
    fn delay_grows_with_attempts_until_max() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(60),
        };
        // Attempt 5 nominally waits 1.6 s, so at least 1.2 s; attempt 2 at most 250 ms.
        for _ in 0..50 {
            assert!(policy.delay(2) <= Duration::from_millis(250));
            assert!(policy.delay(5) >= Duration::from_millis(1200));
            assert!(policy.delay(40) >= Duration::from_secs(45));
        }
    }

    #[test]
    fn a_max_below_base_does_not_panic() {
        let policy = RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(1),
        };
        assert_eq!(policy.delay(3), Duration::from_secs(5));
    }
}
