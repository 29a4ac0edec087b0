//! The live policy, sans-IO: from the clock, the tracker's events and figures and the
//! capture's health samples, decide what to warn about, when metrics carry
//! `capture_loss`, and when `health` is due. `run` feeds it wall time and interface
//! samples; `replay` feeds it packet time and no interfaces, so the same rules run on
//! captures. It reads no clock and does no I/O: callers log and publish what it returns.

pub mod loss;
pub mod warnings;

use crate::capture::health::IfHealth;
use crate::track::event::Event;
use crate::track::mirror::{self, CallSides, DirectionStats, Warning};
use loss::LossHold;
use std::collections::VecDeque;
pub use warnings::Change;

/// Seconds of TLS-record history for "signalling not visible".
pub const TLS_WINDOW: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Seconds without a frame on an interface before "no mirror traffic".
    pub no_traffic_s: u64,
    /// `health` period, seconds.
    pub health_interval_s: u32,
}

/// One capture interface as seen this second.
pub struct Iface<'a> {
    pub health: &'a IfHealth,
    /// Seconds since its last frame (or since it started capturing); `None` while it is not
    /// capturing.
    pub quiet_for_s: Option<u64>,
}

/// The once-a-second verdict.
#[derive(Debug, Default)]
pub struct Second {
    /// Metrics now carry `capture_loss`.
    pub loss: bool,
    /// Warnings raised or cleared this second, to log.
    pub changes: Vec<Change>,
    /// The `health` period has elapsed.
    pub health_due: bool,
}

pub struct Policy {
    cfg: PolicyConfig,
    loss: LossHold,
    tls_hist: VecDeque<u64>,
    sides: CallSides,
    warnings: Vec<Warning>,
    last_health_us: u64,
}

impl Policy {
    /// Starting at `now_us` (the first `health` is one period later).
    pub fn new(cfg: PolicyConfig, now_us: u64) -> Policy {
        Policy {
            cfg,
            loss: LossHold::default(),
            tls_hist: VecDeque::with_capacity(TLS_WINDOW + 1),
            sides: CallSides::default(),
            warnings: Vec::new(),
            last_health_us: now_us,
        }
    }

    /// A reloaded configuration.
    pub fn set_config(&mut self, cfg: PolicyConfig) {
        self.cfg = cfg;
    }

    /// Every event the tracker emits (answered calls with one-way media).
    pub fn on_event(&mut self, ev: &Event) {
        self.sides.on_event(ev);
    }

    /// The capture reported drops at `now_us`.
    pub fn capture_dropped(&mut self, now_us: u64) {
        self.loss.dropped(now_us);
    }

    /// Whether metrics at `now_us` carry `capture_loss`.
    pub fn loss(&self, now_us: u64) -> bool {
        self.loss.active(now_us)
    }

    pub fn sides(&self) -> CallSides {
        self.sides
    }

    /// The warnings standing since the last [`second`](Self::second).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The once-a-second evaluation: the tracker's TLS-record count and mirror directions,
    /// and the capture interfaces (none for a file).
    pub fn second(
        &mut self,
        now_us: u64,
        tls_records: u64,
        dirs: &DirectionStats,
        ifs: &[Iface<'_>],
    ) -> Second {
        self.tls_hist.push_back(tls_records);
        if self.tls_hist.len() > TLS_WINDOW {
            self.tls_hist.pop_front();
        }
        let tls_window = tls_records - self.tls_hist.front().copied().unwrap_or(0);
        let mut new = mirror::warnings(dirs, &self.sides, tls_window);
        for i in ifs {
            warnings::interface(i.health, i.quiet_for_s, self.cfg.no_traffic_s, &mut new);
        }
        let loss = self.loss(now_us);
        if loss {
            new.push(warnings::capture_loss());
        }
        let changes = warnings::changes(&self.warnings, &new);
        self.warnings = new;
        let health_due = now_us.saturating_sub(self.last_health_us)
            >= u64::from(self.cfg.health_interval_s) * 1_000_000;
        if health_due {
            self.last_health_us = now_us;
        }
        Second {
            loss,
            changes,
            health_due,
        }
    }
}

/// Logs changes as the operator sees them: live, raised as warnings and cleared as
/// information; in a replay both at debug level, so its stderr stays as it was
/// (`RUST_LOG=debug` shows them).
pub fn log_changes(changes: &[Change], live: bool) {
    use log::Level::{Debug, Info, Warn};
    for c in changes {
        match c {
            Change::Raised(w) => log::log!(if live { Warn } else { Debug }, "{}", w.message),
            Change::Cleared(w) => {
                log::log!(if live { Info } else { Debug }, "cleared: {}", w.message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::health::IfState;

    const CFG: PolicyConfig = PolicyConfig {
        no_traffic_s: 10,
        health_interval_s: 10,
    };
    const S: u64 = 1_000_000;

    fn codes(p: &Policy) -> Vec<&'static str> {
        p.warnings().iter().map(|w| w.code).collect()
    }

    #[test]
    fn a_drop_raises_capture_loss_and_it_clears_when_the_hold_ends() {
        let mut p = Policy::new(CFG, 0);
        let d = DirectionStats::default();
        assert!(p.second(S, 0, &d, &[]).changes.is_empty());
        p.capture_dropped(S + 500_000);
        let s = p.second(2 * S, 0, &d, &[]);
        assert!(s.loss);
        assert!(matches!(&s.changes[..], [Change::Raised(w)] if w.code == "capture_loss"));
        assert!(
            p.second(3 * S, 0, &d, &[]).changes.is_empty(),
            "raised once"
        );
        let s = p.second(4 * S, 0, &d, &[]);
        assert!(!s.loss);
        assert!(matches!(&s.changes[..], [Change::Cleared(w)] if w.code == "capture_loss"));
    }

    #[test]
    fn health_is_due_once_per_period() {
        let mut p = Policy::new(CFG, 100 * S);
        let d = DirectionStats::default();
        let due: Vec<u64> = (101..=125)
            .filter(|t| p.second(t * S, 0, &d, &[]).health_due)
            .collect();
        assert_eq!(due, [110, 120]);
    }

    #[test]
    fn interfaces_warn_when_quiet_or_down_and_clear_when_back() {
        let d = DirectionStats::default();
        let mut h = IfHealth::new("eth1");
        h.state = IfState::Capturing;
        let mut p2 = Policy::new(CFG, 0);
        let one = |p: &mut Policy, h: &IfHealth, q| {
            let ifs = [Iface {
                health: h,
                quiet_for_s: q,
            }];
            p.second(S, 0, &d, &ifs)
        };
        one(&mut p2, &h, Some(3));
        assert!(codes(&p2).is_empty());
        one(&mut p2, &h, Some(10));
        assert_eq!(codes(&p2), ["no_mirror_traffic"]);
        h.state = IfState::Absent;
        one(&mut p2, &h, None);
        assert_eq!(codes(&p2), ["interface_down"]);
        h.state = IfState::Capturing;
        let s = one(&mut p2, &h, Some(0));
        assert!(codes(&p2).is_empty());
        assert!(matches!(&s.changes[..], [Change::Cleared(w)] if w.code == "interface_down"));
    }

    #[test]
    fn tls_records_without_sip_warn_signalling_not_visible() {
        let mut p = Policy::new(CFG, 0);
        let d = DirectionStats::default();
        let mut raised = false;
        for t in 1..=TLS_WINDOW as u64 {
            raised |= p
                .second(t * S, t * 1000, &d, &[])
                .changes
                .iter()
                .any(|c| matches!(c, Change::Raised(w) if w.code == "signalling_not_visible"));
        }
        assert!(raised, "{:?}", p.warnings());
    }

    #[test]
    fn a_healthy_two_way_capture_raises_nothing_and_its_calls_are_watched() {
        use crate::track::event::EventSink;
        use crate::track::tracker::{Tracker, TrackerConfig};
        struct Watch<'a>(&'a mut Policy);
        impl EventSink for Watch<'_> {
            fn emit(&mut self, ev: &Event) {
                self.0.on_event(ev);
            }
        }
        let mut b = crate::fixture::Builder::new();
        crate::fixture::demo(&mut b);
        let mut t = Tracker::new(TrackerConfig::default());
        let link = crate::wire::LinkType::from_dlt(b.link().linktype().0).unwrap();
        let frames: Vec<(u64, Vec<u8>)> =
            b.frames().iter().map(|(ts, f)| (*ts, f.to_vec())).collect();
        let mut p = Policy::new(CFG, frames[0].0);
        let mut second = 0;
        let mut changes = Vec::new();
        for (ts, f) in &frames {
            t.on_frame(
                embassy_time::Instant::from_micros(*ts),
                link,
                f,
                &mut Watch(&mut p),
            );
            if ts / S != second {
                second = ts / S;
                let tls = t.counters().sip.tls_records;
                changes.extend(p.second(*ts, tls, &t.mirror().directions(), &[]).changes);
            }
        }
        t.finish("end_of_capture", &mut Watch(&mut p));
        assert!(changes.is_empty(), "{changes:?}");
        assert!(p.sides().answered_ended > 0, "{:?}", p.sides());
    }
}
