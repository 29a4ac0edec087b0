//! Call KPIs per period (one minute by default), computed from the call events published.
//!
//! Each call is counted once, on its final event, when everything about it is known:
//! answered if it got a 2xx (setup time or duration present, or ended by BYE); failed by
//! final code; cancelled; otherwise abandoned (timed out, evicted, open at stop).

use crate::publish::payload::Kpi;
use crate::track::event::{CallEvent, CallEventKind, Ts};
use std::collections::BTreeMap;

/// Final codes that mean the network did its job and the user declined (E.411's "user
/// busy", "no answer", "rejection").
const USER_OUTCOMES: [u16; 4] = [480, 486, 600, 603];

#[derive(Debug)]
pub struct KpiAcc {
    period_us: u64,
    start: Option<Ts>,
    attempted: u32,
    answered: u32,
    failed: u32,
    cancelled: u32,
    abandoned: u32,
    user_outcomes: u32,
    by_code: BTreeMap<u16, u32>,
    duration_ms_sum: u64,
    durations: u32,
    pdd_ms_sum: u64,
    pdds: u32,
}

impl KpiAcc {
    pub fn new(period_s: u32) -> KpiAcc {
        KpiAcc {
            period_us: u64::from(period_s.max(1)) * 1_000_000,
            start: None,
            attempted: 0,
            answered: 0,
            failed: 0,
            cancelled: 0,
            abandoned: 0,
            user_outcomes: 0,
            by_code: BTreeMap::new(),
            duration_ms_sum: 0,
            durations: 0,
            pdd_ms_sum: 0,
            pdds: 0,
        }
    }

    fn align(&self, t: Ts) -> Ts {
        Ts(t.0 - t.0 % self.period_us)
    }

    pub fn observe(&mut self, c: &CallEvent) {
        if self.start.is_none() {
            self.start = Some(self.align(c.ts));
        }
        if !c.event.is_final() {
            return;
        }
        self.attempted += 1;
        if let Some(p) = c.pdd_ms {
            self.pdd_ms_sum += u64::from(p);
            self.pdds += 1;
        }
        let answered =
            c.setup_ms.is_some() || c.duration_ms.is_some() || c.event == CallEventKind::Ended;
        if answered {
            self.answered += 1;
            if let Some(d) = c.duration_ms {
                self.duration_ms_sum += d;
                self.durations += 1;
            }
            return;
        }
        match c.event {
            CallEventKind::Failed => {
                self.failed += 1;
                if let Some(code) = c.code {
                    *self.by_code.entry(code).or_insert(0) += 1;
                    if USER_OUTCOMES.contains(&code) {
                        self.user_outcomes += 1;
                    }
                }
            }
            CallEventKind::Cancelled => {
                self.cancelled += 1;
                self.user_outcomes += 1;
            }
            _ => self.abandoned += 1,
        }
    }

    /// The finished period's figures once `now` has passed its end (then starts the next).
    pub fn roll(&mut self, now: Ts) -> Option<Kpi> {
        let start = *self.start.get_or_insert(self.align(now));
        if now.0 < start.0 + self.period_us {
            return None;
        }
        let k = self.take(start);
        self.start = Some(self.align(now));
        Some(k)
    }

    /// Whatever has been counted so far (at shutdown), if anything.
    pub fn flush(&mut self) -> Option<Kpi> {
        let start = self.start?;
        (self.attempted > 0).then(|| self.take(start))
    }

    fn take(&mut self, start: Ts) -> Kpi {
        let pct =
            |n: u32| (self.attempted > 0).then(|| 100.0 * f64::from(n) / f64::from(self.attempted));
        let k = Kpi {
            ts: start,
            period_s: (self.period_us / 1_000_000) as u32,
            attempted: self.attempted,
            answered: self.answered,
            failed: self.failed,
            cancelled: self.cancelled,
            abandoned: self.abandoned,
            failed_by_code: self.by_code.iter().map(|(c, n)| (*c, *n)).collect(),
            asr_pct: pct(self.answered),
            ner_pct: pct(self.answered + self.user_outcomes),
            acd_s: (self.durations > 0)
                .then(|| self.duration_ms_sum as f64 / 1000.0 / f64::from(self.durations)),
            pdd_mean_ms: (self.pdds > 0).then(|| self.pdd_ms_sum as f64 / f64::from(self.pdds)),
        };
        *self = KpiAcc::new(k.period_s);
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::payload::tests::samples;
    use crate::track::event::Event;

    fn call(
        kind: CallEventKind,
        code: Option<u16>,
        dur: Option<u64>,
        pdd: Option<u32>,
        t: u64,
    ) -> CallEvent {
        let Event::Call(mut c) = samples().remove(0) else {
            unreachable!()
        };
        c.ts = Ts(t * 1_000_000);
        c.event = kind;
        c.code = code;
        c.duration_ms = dur;
        c.setup_ms = dur.map(|_| 1000);
        c.pdd_ms = pdd;
        c
    }

    #[test]
    fn asr_ner_acd_pdd_over_one_minute() {
        let mut k = KpiAcc::new(60);
        k.observe(&call(CallEventKind::Invite, None, None, None, 600));
        k.observe(&call(
            CallEventKind::Ended,
            Some(200),
            Some(60_000),
            Some(1000),
            610,
        ));
        k.observe(&call(
            CallEventKind::Ended,
            Some(200),
            Some(120_000),
            Some(3000),
            620,
        ));
        k.observe(&call(
            CallEventKind::Failed,
            Some(486),
            None,
            Some(2000),
            630,
        ));
        k.observe(&call(CallEventKind::Failed, Some(503), None, None, 640));
        assert!(k.roll(Ts(659_000_000)).is_none());
        let r = k.roll(Ts(660_000_000)).unwrap();
        assert_eq!(r.ts, Ts(600_000_000));
        assert_eq!((r.attempted, r.answered, r.failed), (4, 2, 2));
        assert_eq!(r.failed_by_code, vec![(486, 1), (503, 1)]);
        assert_eq!(r.asr_pct, Some(50.0));
        assert_eq!(r.ner_pct, Some(75.0));
        assert_eq!(r.acd_s, Some(90.0));
        assert_eq!(r.pdd_mean_ms, Some(2000.0));
        let next = k.roll(Ts(720_000_000)).unwrap();
        assert_eq!(next.attempted, 0);
        assert_eq!(next.asr_pct, None);
    }
}
