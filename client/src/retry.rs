//! How idempotent calls are retried when no node could serve them: capped exponential backoff
//! with jitter, so many clients that lost the same node do not all come back in lockstep.
//!
//! A retry is a whole new round over every configured node (the round itself already fails over);
//! only calls that are safe to repeat are retried: `GET`, `HEAD`, `PUT`, `DELETE`, and uploads,
//! which always carry an `Idempotency-Key`.

use std::time::Duration;

/// Retry policy of idempotent calls that failed with [`ClientError::Unavailable`](crate::ClientError::Unavailable)
/// on every node (connection errors, `502`, `503`).
///
/// Before retry `n` (counting from 1) the client sleeps for a random duration between half and
/// all of `min(cap, base × 2^(n-1))`.
///
/// ```
/// use std::time::Duration;
/// use artstore_client::RetryPolicy;
///
/// let policy = RetryPolicy { max_attempts: 6, base: Duration::from_millis(100), cap: Duration::from_secs(2) };
/// assert!(policy.delay(1) <= Duration::from_millis(100));
/// assert!(policy.delay(10) <= Duration::from_secs(2));
/// assert!(policy.delay(10) >= Duration::from_secs(1));
/// // No retries at all:
/// let _ = RetryPolicy::none();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Rounds over the node list in total, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter).
    pub base: Duration,
    /// Upper bound of any single backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 250 ms doubling up to 4 s: long enough to ride out a leader election.
    fn default() -> Self {
        Self { max_attempts: 5, base: Duration::from_millis(250), cap: Duration::from_secs(4) }
    }
}

impl RetryPolicy {
    /// A single attempt: fail over across the nodes once, never wait and retry.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The sleep before retry number `retry` (1 for the first retry), jitter included.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap_with_jitter() {
        let p = RetryPolicy { max_attempts: 10, base: Duration::from_millis(100), cap: Duration::from_millis(1000) };
        for _ in 0..100 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100), "{d1:?}");
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400), "{d3:?}");
            let d9 = p.delay(9);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_millis(1000), "{d9:?}");
        }
        let distinct: std::collections::HashSet<Duration> = (0..20).map(|_| p.delay(4)).collect();
        assert!(distinct.len() > 1, "jitter varies the delay");
        assert!(p.delay(u32::MAX) <= p.cap, "no overflow on large retry numbers");
    }
}
