//! Retry delays while etcd is away: capped exponential backoff with jitter.
//!
//! Hundreds of announcers lose etcd at the same moment when it restarts; the
//! jitter spreads their returns so etcd is not hit by all of them at once,
//! and the cap (1 s) keeps the key's return within a second or so of etcd's.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
pub const CAP: Duration = Duration::from_secs(1);

/// The delays of one run of failures; `reset` after a success.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay before the next attempt: 100 ms doubling up to [`CAP`],
    /// each drawn uniformly from its upper half.
    pub fn next_delay(&mut self) -> Duration {
        let full = FIRST.saturating_mul(1 << self.failures.min(10)).min(CAP);
        self.failures = self.failures.saturating_add(1);
        let half = full / 2;
        half + half.mul_f64(random_unit())
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Backoff {
    /// A number that differs between processes and calls; std's randomly
    /// seeded hasher is plenty for spreading retries.
    #[must_use]
    pub fn random_u64() -> u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        h.finish()
    }
}

/// A number in [0, 1).
fn random_unit() -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let unit = (Backoff::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= FIRST / 2 && first <= FIRST, "{first:?}");
        let growing: Vec<Duration> = (0..4).map(|_| b.next_delay()).collect();
        assert!(growing.windows(2).all(|w| w[1] >= w[0] / 2), "{growing:?}");
        let later: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(later.iter().all(|d| *d >= CAP / 2 && *d <= CAP));
        assert!(later.windows(2).any(|w| w[0] != w[1]), "jitter varies");
        b.reset();
        assert!(b.next_delay() <= FIRST);
    }
}
