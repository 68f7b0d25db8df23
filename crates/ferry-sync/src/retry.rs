//! When to send a request again after the network failed, and how long to wait first.

use ferry_model::arbitrary::SplitMix64;

/// Attempts of one request when the network fails, the first included.
pub const SEND_ATTEMPTS_MAX: u32 = 3;
/// The wait before the first retry, in milliseconds; it doubles for each further one. Each wait
/// is jittered to between half and all of it, so devices cut off together do not come back
/// together.
pub const RETRY_DELAY_MS: u64 = 200;

/// The status of an answer from a server too busy to take a request (over its limit of
/// connections or requests at once, or a gateway that could not reach it): nothing was done, and
/// the request goes again as after a network failure.
pub const BUSY_STATUS: u16 = 503;

/// The retry policy of one job: seeded, so a run's waits are a function of its seed.
#[derive(Clone, Debug)]
pub struct Retry {
    random: SplitMix64,
}

impl Retry {
    /// A policy whose jitter comes from `seed`.
    pub fn new(seed: u64) -> Retry {
        Retry { random: SplitMix64::new(seed) }
    }

    /// The wait before attempt `failed + 1`, after `failed` attempts failed in the network;
    /// `None` when no attempt is left.
    pub fn delay_ms(&mut self, failed: u32) -> Option<u64> {
        if failed >= SEND_ATTEMPTS_MAX {
            return None;
        }
        let full = RETRY_DELAY_MS << failed.saturating_sub(1).min(16);
        let half = full / 2;
        Some(half + self.random.next_u64() % (half + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_within_their_jitter_until_the_attempts_are_spent() {
        let mut retry = Retry::new(7);
        let first = retry.delay_ms(1).expect("a second attempt");
        let second = retry.delay_ms(2).expect("a third attempt");
        assert!((100..=200).contains(&first), "{first}");
        assert!((200..=400).contains(&second), "{second}");
        assert_eq!(retry.delay_ms(SEND_ATTEMPTS_MAX), None);
    }

    #[test]
    fn the_same_seed_waits_the_same() {
        let waits = |seed| {
            let mut retry = Retry::new(seed);
            (1..SEND_ATTEMPTS_MAX).map(|n| retry.delay_ms(n)).collect::<Vec<_>>()
        };
        assert_eq!(waits(3), waits(3));
        assert_ne!(waits(3), waits(4));
    }
}
