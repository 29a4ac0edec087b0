//! Reconnect backoff: doubling from a minimum to a maximum, each wait jittered ±25 % so a
//! fleet of sensors does not reconnect in step after a broker restart. The randomness is
//! ring's system RNG (already in the tree for TLS and hashing).

use ring::rand::{SecureRandom, SystemRandom};
use std::time::Duration;

pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: SystemRandom,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            next: min,
            rng: SystemRandom::new(),
        }
    }

    /// After a success: the next failure waits the minimum again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// The wait before the next attempt; doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let mut b = [0u8; 2];
        // Without randomness (never on Linux) the wait is simply not jittered.
        let r = self
            .rng
            .fill(&mut b)
            .map(|_| u16::from_le_bytes(b))
            .unwrap_or(1 << 15);
        d.mul_f64(0.75 + f64::from(r) / 131_072.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_max_within_the_jitter_band() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(700));
        for base in [100u64, 200, 400, 700, 700] {
            let w = b.next_wait();
            assert!(
                w >= ms(base * 3 / 4) && w < ms(base * 5 / 4),
                "{w:?} for {base}"
            );
        }
        b.reset();
        assert!(b.next_wait() < ms(125));
    }

    #[test]
    fn jitter_varies_between_waits() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let waits: std::collections::HashSet<_> = (0..16).map(|_| b.next_wait()).collect();
        assert!(waits.len() > 1, "{waits:?}");
    }
}
