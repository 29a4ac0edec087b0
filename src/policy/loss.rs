//! Capture-loss hold: once the capture drops packets, metrics stay flagged
//! `capture_loss` for a while (a second's intervals straddle two statistics reads).

/// How long one drop keeps the flag up.
pub const LOSS_HOLD_US: u64 = 2_000_000;

#[derive(Debug, Default, Clone, Copy)]
pub struct LossHold {
    until_us: u64,
}

impl LossHold {
    /// The capture dropped packets at `now_us`.
    pub fn dropped(&mut self, now_us: u64) {
        self.until_us = self.until_us.max(now_us + LOSS_HOLD_US);
    }

    /// Whether metrics at `now_us` carry `capture_loss`.
    pub fn active(&self, now_us: u64) -> bool {
        now_us < self.until_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_flags_the_next_two_seconds_only() {
        let mut h = LossHold::default();
        assert!(!h.active(1_000_000));
        h.dropped(10_000_000);
        assert!(h.active(10_000_000));
        assert!(h.active(11_999_999));
        assert!(!h.active(12_000_000));
    }

    #[test]
    fn an_older_drop_reported_late_does_not_shorten_the_hold() {
        let mut h = LossHold::default();
        h.dropped(10_000_000);
        h.dropped(9_000_000);
        assert!(h.active(11_500_000));
    }
}
