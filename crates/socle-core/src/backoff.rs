//! One backoff for every retry in socle: HTTP requests of the connectors, task retries of
//! pipelines and writers that lost a commit race.
//!
//! The wait after `n` failures is `base × 2^(n-1)`, capped at `max`, then spread by a
//! random factor so that clients failing together do not retry in lockstep. The
//! randomness comes from the operating system ([`getrandom`]), not from the clock: two
//! processes that failed at the same moment get different waits.
//!
//! [`Jitter::Below`] spreads the wait down from the capped value ("equal jitter": at
//! least half of it); [`Jitter::Above`] spreads it up, for delays configured as a
//! minimum (a task's `retry_delay`), never past `max`.

use std::time::Duration;

/// How the wait is spread around its capped value `d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Uniform in `[d × (1 - f), d)`.
    Below(f64),
    /// Uniform in `[d, d × (1 + f)]`, at most `max`.
    Above(f64),
}

/// Exponential backoff with a cap and jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure (before jitter).
    pub base: Duration,
    /// The longest wait before jitter ([`Jitter::Below`]) or at all ([`Jitter::Above`]).
    pub max: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// The wait before try `failures + 1`, after `failures` failures (`0` is taken as 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let capped = self
            .base
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max);
        match self.jitter {
            Jitter::Below(f) => scaled(capped, 1.0 - f.clamp(0.0, 1.0) * random_unit()).min(capped),
            Jitter::Above(f) => {
                scaled(capped, 1.0 + f.max(0.0) * random_unit()).min(self.max.max(capped))
            }
        }
    }
}

/// `d × factor`, saturating at `Duration::MAX` (`Duration::mul_f64` panics past it, and a
/// wait configured near it rounds past it as `f64` seconds).
fn scaled(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// A uniform random number in `[0, 1)`.
pub fn random_unit() -> f64 {
    let r = getrandom::u64().unwrap_or(u64::MAX / 2);
    (r >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    #[test]
    fn doubles_up_to_the_cap_and_spreads_below() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: Jitter::Below(0.5),
        };
        for (failures, full) in [(0, 100), (1, 100), (2, 200), (3, 400), (4, 500), (99, 500)] {
            let waits: Vec<u64> = (0..50).map(|_| ms(b.delay(failures))).collect();
            assert!(
                waits.iter().all(|&d| d >= full / 2 && d <= full),
                "{failures}: {waits:?}"
            );
            // Spread, not one value.
            assert!(waits.iter().min() < waits.iter().max(), "{waits:?}");
        }
    }

    #[test]
    fn spreads_above_a_minimum_but_never_past_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(60),
            jitter: Jitter::Above(0.1),
        };
        for _ in 0..50 {
            let d1 = ms(b.delay(1));
            assert!((10_000..=11_000).contains(&d1), "{d1}");
            let d2 = ms(b.delay(2));
            assert!((20_000..=22_000).contains(&d2), "{d2}");
            assert_eq!(ms(b.delay(4)), 60_000);
        }
        let no_jitter = Backoff {
            jitter: Jitter::Above(0.0),
            ..b
        };
        assert_eq!(ms(no_jitter.delay(3)), 40_000);
    }

    #[test]
    fn a_huge_count_does_not_overflow() {
        let b = Backoff {
            base: Duration::from_secs(u64::MAX / 4),
            max: Duration::from_secs(3600),
            jitter: Jitter::Below(0.5),
        };
        assert!(b.delay(u32::MAX) <= Duration::from_secs(3600));
    }

    /// Found while writing the property tests: a wait configured near `Duration::MAX`
    /// (`retry_delay: 18446744073709551615`) panicked in `Duration::mul_f64`.
    #[test]
    fn regression_a_wait_near_the_largest_duration_saturates() {
        for jitter in [Jitter::Above(0.1), Jitter::Below(0.5), Jitter::Above(0.0)] {
            let b = Backoff {
                base: Duration::MAX,
                max: Duration::MAX,
                jitter,
            };
            let d = b.delay(3);
            assert!(d > Duration::from_secs(u64::MAX / 4), "{jitter:?}: {d:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Below: at most the capped wait; above: at least the capped wait (less `f64`
        /// rounding) and at most `max` (or the capped wait when the base is larger).
        #[test]
        fn delays_stay_within_their_bounds(
            base_s in any::<u64>(),
            base_ns in 0u32..1_000_000_000,
            max_s in any::<u64>(),
            failures in any::<u32>(),
            f in 0.0f64..=1.0,
        ) {
            let base = Duration::new(base_s, base_ns);
            let max = Duration::from_secs(max_s);
            let capped = base
                .saturating_mul(1u32 << failures.saturating_sub(1).min(30))
                .min(max);
            let below = Backoff { base, max, jitter: Jitter::Below(f) }.delay(failures);
            prop_assert!(below <= capped, "{:?} > {:?}", below, capped);
            let above = Backoff { base, max, jitter: Jitter::Above(f) }.delay(failures);
            prop_assert!(above <= max.max(capped), "{:?}", above);
            prop_assert!(
                above.as_secs_f64() + 1e-6 >= capped.as_secs_f64() * (1.0 - 1e-9),
                "{:?} < {:?}",
                above,
                capped
            );
        }
    }
}
