//! The shape of a stream's loss: runs of consecutive lost packets, the gaps of received
//! packets between losses, and the two-state Markov (Gilbert) transition counts from which
//! ITU-T G.107 takes its burst ratio.
//!
//! Listeners hear bursts, not averages: 2 % lost one packet at a time sounds far better
//! than 2 % lost in runs of five. `BurstR = 1 / (p + q)` with `p` = P(lost | previous
//! received) and `q` = P(received | previous lost) (G.107 §7.2 note to eq. 7-29, G.113
//! Appendix I): 1 for random loss, above 1 for loss burstier than random.
//!
//! A sequence number is *settled* — judged received or lost — once the highest sequence
//! number is [`SETTLE_LAG`] ahead of it, so a packet reordered by fewer positions is not a
//! loss here either. A packet later than that counts as received in the RFC 3550 `lost`
//! figure (a difference of counts, which needs no lag) but stays a loss in the shape. The
//! lag is short (80 ms at 20 ms packets) so a second's losses are judged in that second
//! and its MOS can use its own burst ratio; the stream's end settles the rest. Fixed size,
//! O(1) per packet (a jump settles its gap arithmetically).
// No panic on packet data by construction: every index, unwrap and expect here is a
// checked one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

/// Sequence numbers the highest must be ahead before one is judged received or lost.
pub const SETTLE_LAG: u64 = 4;

/// Upper bounds (inclusive) of the loss-run length buckets; the last bucket is open:
/// 1, 2, 3, 4–5, 6–10, 11+.
pub const RUN_BUCKETS: [u64; 6] = [1, 2, 3, 5, 10, u64::MAX];
/// Upper bounds (inclusive) of the gap length buckets (received packets between two
/// losses): 1–4, 5–15, 16–49, 50–99, 100–499, 500+. 16 is RFC 3611's default Gmin, the
/// gap below which XR counts loss as part of a burst.
pub const GAP_BUCKETS: [u64; 6] = [4, 15, 49, 99, 499, u64::MAX];

/// Loss shape over some span (an interval or the whole stream). Counts saturate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossShape {
    /// Loss runs by length, buckets [`RUN_BUCKETS`].
    pub runs: [u32; 6],
    /// Gaps between two losses by length, buckets [`GAP_BUCKETS`].
    pub gaps: [u32; 6],
    /// Settled packets judged lost.
    pub lost: u32,
    /// Settled packets judged received.
    pub received: u32,
    /// Received packets followed by a lost one (numerator of `p`).
    pub recv_to_lost: u32,
    /// Received packets that had a settled successor (denominator of `p`).
    pub recv_with_next: u32,
    /// Lost packets followed by a received one (numerator of `q`).
    pub lost_to_recv: u32,
    /// Lost packets that had a settled successor (denominator of `q`).
    pub lost_with_next: u32,
}

fn bucket(bounds: &[u64; 6], len: u64) -> usize {
    bounds
        .iter()
        .position(|&b| len <= b)
        .unwrap_or(bounds.len() - 1)
}

fn add(c: &mut u32, n: u64) {
    *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

impl LossShape {
    /// `p` = P(lost | previous received), if any received packet had a successor.
    pub fn p(&self) -> Option<f64> {
        (self.recv_with_next > 0)
            .then(|| f64::from(self.recv_to_lost) / f64::from(self.recv_with_next))
    }

    /// `q` = P(received | previous lost), if any lost packet had a successor.
    pub fn q(&self) -> Option<f64> {
        (self.lost_with_next > 0)
            .then(|| f64::from(self.lost_to_recv) / f64::from(self.lost_with_next))
    }

    /// G.107 BurstR = 1/(p+q); `None` while no loss (or no reception) was settled, where
    /// the burst ratio is undefined and the E-model uses 1.
    pub fn burst_r(&self) -> Option<f64> {
        let (p, q) = (self.p()?, self.q()?);
        (p + q > 0.0).then(|| 1.0 / (p + q))
    }

    /// Adds another span's shape (e.g. another stream of the same call direction).
    pub fn merge(&mut self, o: &LossShape) {
        for (a, b) in self.runs.iter_mut().zip(o.runs) {
            *a = a.saturating_add(b);
        }
        for (a, b) in self.gaps.iter_mut().zip(o.gaps) {
            *a = a.saturating_add(b);
        }
        for (a, b) in [
            (&mut self.lost, o.lost),
            (&mut self.received, o.received),
            (&mut self.recv_to_lost, o.recv_to_lost),
            (&mut self.recv_with_next, o.recv_with_next),
            (&mut self.lost_to_recv, o.lost_to_recv),
            (&mut self.lost_with_next, o.lost_with_next),
        ] {
            *a = a.saturating_add(b);
        }
    }

    /// Number of loss runs (bursts of any length).
    pub fn run_count(&self) -> u32 {
        self.runs.iter().fold(0u32, |a, &r| a.saturating_add(r))
    }

    fn record_run(&mut self, len: u64) {
        if let Some(n) = self.runs.get_mut(bucket(&RUN_BUCKETS, len)) {
            add(n, 1);
        }
    }

    fn record_gap(&mut self, len: u64) {
        if let Some(n) = self.gaps.get_mut(bucket(&GAP_BUCKETS, len)) {
            add(n, 1);
        }
    }
}

fn transition(s: &mut LossShape, prev: Option<bool>, received: bool) {
    match prev {
        Some(true) => {
            add(&mut s.recv_with_next, 1);
            if !received {
                add(&mut s.recv_to_lost, 1);
            }
        }
        Some(false) => {
            add(&mut s.lost_with_next, 1);
            if received {
                add(&mut s.lost_to_recv, 1);
            }
        }
        None => {}
    }
}

/// Settling state, kept beside a stream's RFC 3550 sequence state. `repr(C)`: the
/// per-packet part first, `total` (taken once a second) last.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct LossPattern {
    /// Next extended sequence number to settle; `None` before the stream starts.
    next: Option<u64>,
    /// State of the last settled packet (`true` = received).
    prev: Option<bool>,
    /// Length of the loss run being settled.
    run: u64,
    /// Received packets since the last loss; counted as a gap once the next loss comes.
    gap: u64,
    /// A loss was settled since the (re)start: the received run after it is a gap.
    seen_loss: bool,
    interval: LossShape,
    total: LossShape,
}

impl LossPattern {
    pub const fn new() -> Self {
        const ZERO: LossShape = LossShape {
            runs: [0; 6],
            gaps: [0; 6],
            lost: 0,
            received: 0,
            recv_to_lost: 0,
            recv_with_next: 0,
            lost_to_recv: 0,
            lost_with_next: 0,
        };
        LossPattern {
            next: None,
            prev: None,
            run: 0,
            gap: 0,
            seen_loss: false,
            total: ZERO,
            interval: ZERO,
        }
    }

    /// Starts (or restarts after a resynchronisation) at extended sequence `first`.
    pub fn start(&mut self, first: u64) {
        self.next = Some(first);
        self.prev = None;
        self.run = 0;
        self.gap = 0;
        self.seen_loss = false;
    }

    /// Before the highest sequence `max` advances by `by`: settles what falls `SETTLE_LAG`
    /// behind the new highest. `window` bit i: `max - i` was received (i < 128).
    pub fn advance(&mut self, max: u64, window: u128, by: u64) {
        let target = (max + by).checked_sub(SETTLE_LAG);
        if let Some(target) = target {
            self.settle_through(max, window, target);
        }
    }

    /// Settles everything up to and including the highest sequence `max` (stream end,
    /// or before a resynchronisation).
    pub fn flush(&mut self, max: u64, window: u128) {
        self.settle_through(max, window, max);
    }

    fn settle_through(&mut self, max: u64, window: u128, target: u64) {
        let Some(next) = self.next else { return };
        if target < next {
            return;
        }
        // Sequence numbers up to `max` are judged by the window (all within SETTLE_LAG of
        // `max`, since earlier ones were settled before), those beyond it are the gap a
        // jump leaves: lost.
        let known_end = target.min(max);
        let mut s = next;
        while s <= known_end {
            let back = max - s;
            let seen = back < 128 && window & (1u128 << back) != 0;
            self.settle(seen, 1);
            s += 1;
        }
        if target > max {
            self.settle(false, target - max);
        }
        self.next = Some(target + 1);
    }

    /// Settles `n` packets of the same state.
    fn settle(&mut self, received: bool, n: u64) {
        if n == 0 {
            return;
        }
        // Only the interval is counted here (per packet); `total` takes each interval when
        // it closes (once a second): saturating sums of counts merge exactly.
        // The transition from the previous packet into the first of these, then n-1 within.
        let s = &mut self.interval;
        transition(s, self.prev, received);
        if received {
            add(&mut s.received, n);
            add(&mut s.recv_with_next, n - 1);
        } else {
            add(&mut s.lost, n);
            add(&mut s.lost_with_next, n - 1);
        }
        if received {
            if self.run > 0 {
                self.interval.record_run(self.run);
                self.run = 0;
            }
            if self.seen_loss {
                self.gap += n;
            }
        } else {
            if self.gap > 0 {
                self.interval.record_gap(self.gap);
                self.gap = 0;
            }
            self.run += n;
            self.seen_loss = true;
        }
        self.prev = Some(received);
    }

    /// The shape settled since the last call, and starts a new interval.
    pub fn take_interval(&mut self) -> LossShape {
        let interval = std::mem::take(&mut self.interval);
        self.total.merge(&interval);
        interval
    }

    /// The whole stream's shape settled so far.
    pub fn total(&self) -> LossShape {
        let mut t = self.total;
        t.merge(&self.interval);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a received/lost pattern (in sequence order, highest packet received) the way
    /// `StreamStats` does: every received packet advances the highest.
    fn run(pattern: &[bool]) -> LossPattern {
        run_taking(pattern, usize::MAX).0
    }

    /// [`run`], taking the interval after every `every` packets; also returns the sum of
    /// the intervals taken (the last one included).
    fn run_taking(pattern: &[bool], every: usize) -> (LossPattern, LossShape) {
        assert!(pattern[0] && *pattern.last().unwrap());
        let mut taken = LossShape::default();
        let mut lp = LossPattern::default();
        lp.start(0);
        let (mut max, mut window) = (0u64, 1u128);
        for (i, &r) in pattern.iter().enumerate().skip(1) {
            if r {
                let by = i as u64 - max;
                lp.advance(max, window, by);
                window = if by >= 128 { 1 } else { (window << by) | 1 };
                max = i as u64;
            }
            if i % every == 0 {
                taken.merge(&lp.take_interval());
            }
        }
        lp.flush(max, window);
        let total = lp.total();
        taken.merge(&lp.take_interval());
        assert_eq!(
            lp.total(),
            total,
            "taking the last interval changes no total"
        );
        (lp, taken)
    }

    fn pattern(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '.').collect()
    }

    #[test]
    fn runs_and_gaps_are_bucketed_by_length() {
        // . received, x lost: runs 1, 2, 5, 12; gaps between losses 3, 4, 20.
        let p = pattern(&format!("..x...xx....xxxxx{}xxxxxxxxxxxx.", ".".repeat(20)));
        let s = run(&p).total();
        assert_eq!(s.runs, [1, 1, 0, 1, 0, 1]);
        assert_eq!(s.gaps, [2, 0, 1, 0, 0, 0]);
        assert_eq!(s.lost, 20);
        assert_eq!(s.received as usize, p.len() - 20);
    }

    #[test]
    fn transitions_give_gilbert_p_and_q() {
        // 4 received-then-lost transitions, 4 lost-then-received.
        let s = run(&pattern("..x...xx....xxxxx....x.")).total();
        assert_eq!((s.recv_to_lost, s.lost_to_recv), (4, 4));
        // Every packet but the last has a successor.
        assert_eq!(s.recv_with_next + s.lost_with_next, 22);
        let (p, q) = (s.p().unwrap(), s.q().unwrap());
        assert!((p - 4.0 / 13.0).abs() < 1e-12, "{p}");
        assert!((q - 4.0 / 9.0).abs() < 1e-12, "{q}");
        assert!((s.burst_r().unwrap() - 1.0 / (p + q)).abs() < 1e-12);
    }

    #[test]
    fn no_loss_has_no_burst_ratio() {
        let s = run(&[true; 100]).total();
        assert_eq!(s.burst_r(), None);
        assert_eq!(s.run_count(), 0);
        assert_eq!(s.received, 100);
    }

    #[test]
    fn a_long_jump_settles_its_gap_at_once() {
        let mut p = vec![true; 10];
        p.extend(std::iter::repeat_n(false, 2000));
        p.extend([true; 40]);
        let s = run(&p).total();
        assert_eq!(s.lost, 2000);
        assert_eq!(s.runs, [0, 0, 0, 0, 0, 1]);
        assert_eq!(s.lost_with_next, 2000);
        assert_eq!(s.lost_to_recv, 1);
    }

    #[test]
    fn settling_lags_the_highest_sequence() {
        let mut lp = LossPattern::default();
        lp.start(0);
        // Highest 0..=9 received in order: all but the last SETTLE_LAG are settled.
        let mut window = 1u128;
        for max in 0..9u64 {
            lp.advance(max, window, 1);
            window = (window << 1) | 1;
        }
        assert_eq!(u64::from(lp.total().received), 10 - SETTLE_LAG);
        lp.flush(9, window);
        assert_eq!(lp.total().received, 10);
        assert_eq!(lp.take_interval().received, 10);
        assert_eq!(lp.take_interval().received, 0);
    }

    #[test]
    fn the_total_is_the_same_however_often_intervals_are_taken() {
        let p = pattern("..x...xx....xxxxx....x...xxxxxxxxxxxxxxxxxxxxxx..x.x.x.x....xx.");
        let whole = run(&p).total();
        assert!(whole.lost > 0 && whole.run_count() > 3);
        for every in [1, 2, 3, 7, 50] {
            let (lp, taken) = run_taking(&p, every);
            assert_eq!(lp.total(), whole, "intervals taken every {every} packets");
            assert_eq!(
                taken, whole,
                "the intervals add up to the total (every {every})"
            );
        }
    }
}
