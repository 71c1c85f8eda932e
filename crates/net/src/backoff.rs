//! Reconnect delays: exponential with a cap, and "equal jitter" (half the
//! delay fixed, half random) from a seeded RNG so that peers that lost each
//! other at the same instant do not redial in lockstep, yet a run with the
//! same seed waits the same.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Self { initial, max: max.max(initial), attempt: 0, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The delay before the next attempt; each call doubles the base.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        let base = self.initial.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(self.rng.random_range(0..=spread))
    }

    /// After a successful connection the next loss starts from `initial`.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_jitters_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000), 7);
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, d) in d.iter().enumerate() {
            let base = (ms(100) * (1 << i)).min(ms(1000));
            assert!(*d >= base / 2 && *d <= base, "attempt {i}: {d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= ms(100));
        // Same seed, same delays.
        let mut a = Backoff::new(ms(100), ms(1000), 7);
        let mut c = Backoff::new(ms(100), ms(1000), 7);
        assert_eq!(a.next_delay(), c.next_delay());
    }
}
