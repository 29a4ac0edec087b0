//! Media health of calls: is media flowing both ways after the answer?
//!
//! One [`MediaWatch`] per open call, keyed by the call's serial, in its own fixed table
//! (as many entries as the call table: a watch opens with its call and closes with it).
//! The tracker feeds it once a second from the stream table and asks it to check the
//! answered calls; it knows neither the call table nor the stream table.

use crate::table::Table;
use crate::timer_wheel::second_after;
use crate::track::counters::Counters;
use crate::track::event::{CallId, Event, EventSink, MediaHealth, MediaProblem, Party, Ts};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};

/// Per-call media-health state. All decisions use packet time:
/// - `no_media_after_answer`: answered, not on hold, and no packet in either direction for
///   `silence` since the answer;
/// - `one_way_media`: one direction flows (a packet within half of `silence`) while the
///   other has been silent longer than `silence`;
/// - `media_stopped`: media flowed after the answer, and now both directions have been
///   silent longer than `silence`.
///
/// Silence is counted from `since` at the earliest (the answer or the call's latest
/// signalling, e.g. a resume re-INVITE), so a hold/resume or a re-negotiation restarts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaWatch {
    /// Last packet toward the caller (index 0) and toward the callee (1), with its
    /// stream's source and destination.
    last: [Option<(Instant, SocketAddr, SocketAddr)>; 2],
    /// Problems already reported (bit per `MediaProblem`).
    reported: u8,
}

impl MediaWatch {
    /// A packet flowing toward `toward` passed at `at` on stream `src` → `dst`.
    pub fn saw(&mut self, toward: Party, at: Instant, src: SocketAddr, dst: SocketAddr) {
        let i = match toward {
            Party::Caller => 0,
            Party::Callee => 1,
        };
        if let Some(last) = self.last.get_mut(i)
            && last.is_none_or(|(t, ..)| at >= t)
        {
            *last = Some((at, src, dst));
        }
    }

    /// The problem to report now, if any (each at most once per call).
    pub fn check(
        &mut self,
        now: Instant,
        since: Instant,
        silence: Duration,
        call_id: &CallId,
    ) -> Option<MediaHealth> {
        let last = |i: usize| self.last.get(i).copied().flatten();
        let after = |i: usize| last(i).filter(|(t, ..)| *t >= since);
        let quiet = |i: usize| {
            let from = after(i).map_or(since, |(t, ..)| t);
            now.saturating_duration_since(from)
        };
        // "Flowing" means a packet within half the silence threshold, so two directions
        // that stop together are one `media_stopped`, never a passing `one_way_media`.
        let flowing = |i: usize| after(i).is_some() && quiet(i) <= silence / 2;
        let (problem, dir) = if after(0).is_none() && after(1).is_none() {
            (MediaProblem::NoMediaAfterAnswer, None)
        } else if flowing(0) && flowing(1) {
            return None;
        } else if flowing(0) || flowing(1) {
            (
                MediaProblem::OneWayMedia,
                Some(if flowing(0) { 1 } else { 0 }),
            )
        } else {
            (MediaProblem::MediaStopped, None)
        };
        let silent = match dir {
            Some(i) => quiet(i),
            None => quiet(0).min(quiet(1)),
        };
        let bit = 1u8 << (problem as u8);
        if silent <= silence || self.reported & bit != 0 {
            return None;
        }
        self.reported |= bit;
        // The silent direction's addresses: its own stream if it ever had one, else the
        // reverse of the flowing one (symmetric RTP, the common case).
        let (src, dst) = match dir {
            Some(i) => match (last(i), last(1 - i)) {
                (Some((_, s, d)), _) => (Some(s), Some(d)),
                (None, Some((_, s, d))) => (Some(d), Some(s)),
                (None, None) => (None, None),
            },
            None => (None, None),
        };
        Some(MediaHealth {
            ts: Ts::from_instant(now),
            problem,
            call_id: Some(call_id.clone()),
            src,
            dst,
            silent_ms: silent.as_millis(),
        })
    }

    /// The second of the next [`MediaWatch::check`] that could differ from one now, if
    /// nothing else changes (no packet, no new `since`): `check` compares how long each
    /// direction has been quiet with `silence / 2` and `silence` only, so its answer is
    /// the same until one of those thresholds passes. `None`: none is left to pass.
    pub fn next_change(&self, now: Instant, since: Instant, silence: Duration) -> Option<u64> {
        let (now, since) = (now.as_micros(), since.as_micros());
        let (half, full) = ((silence / 2).as_micros(), silence.as_micros());
        let mut next: Option<u64> = None;
        let mut consider = |from: u64, after: u64| {
            let t = from.saturating_add(after);
            if t >= now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(since, full);
        for (t, ..) in self.last.iter().flatten() {
            let t = t.as_micros();
            if t >= since {
                consider(t, half);
                consider(t, full);
            }
        }
        next.map(|t| second_after(t, 0))
    }
}

/// The watches of every open call.
pub struct Health {
    watches: Table<u64, MediaWatch>,
    silence: Duration,
}

impl Health {
    /// Room for `calls` open calls; a direction silent for `silence` is reported.
    pub fn new(calls: usize, silence: Duration) -> Health {
        Health {
            watches: Table::new("media_health", calls),
            silence,
        }
    }

    /// Heap bytes `new(calls, _)` allocates.
    pub fn memory_bytes(calls: usize) -> usize {
        Table::<u64, MediaWatch>::memory_bytes(calls)
    }

    /// Call `serial` opened: watch it.
    pub fn open(&mut self, serial: u64) {
        // Never full: a watch lives exactly as long as its open call, and the call table
        // has the same capacity (its evictions close the old call first).
        // Were it full, nothing is evicted (classes below 0: none) and the watch refused.
        let _ = self.watches.insert(serial, MediaWatch::default(), 0, 0);
    }

    /// Call `serial` closed (or was evicted): stop watching it.
    pub fn close(&mut self, serial: u64) {
        self.watches.discard(&serial);
    }

    /// A packet of call `serial` toward `toward` passed at `at` (see [`MediaWatch::saw`]).
    pub fn saw(
        &mut self,
        serial: u64,
        toward: Party,
        at: Instant,
        src: SocketAddr,
        dst: SocketAddr,
    ) {
        if let Some(w) = self.watches.get_mut(&serial) {
            w.saw(toward, at, src, dst);
        }
    }

    /// Checks answered, open call `serial`; emits each problem at most once per call.
    /// Returns the second by which it must be checked again if no packet or message comes
    /// first (see [`MediaWatch::next_change`]); the caller need not check it before.
    pub fn check(
        &mut self,
        now: Instant,
        serial: u64,
        call_id: &CallId,
        since: Instant,
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Option<u64> {
        let silence = self.silence;
        let w = self.watches.get_mut(&serial)?;
        if let Some(h) = w.check(now, since, silence, call_id) {
            counters.rtp.health_events += 1;
            out.emit(&Event::MediaHealth(h));
        }
        w.next_change(now, since, silence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::event::fill;

    const SILENCE: Duration = Duration::from_secs(5);

    fn s(t: u64) -> Instant {
        Instant::from_secs(t)
    }

    fn at(a: &str) -> SocketAddr {
        a.parse().unwrap()
    }

    fn id() -> CallId {
        let mut c = CallId::new();
        fill(&mut c, "c1");
        c
    }

    fn problems(out: &[Event]) -> Vec<(MediaProblem, Option<SocketAddr>, u64)> {
        out.iter()
            .filter_map(|e| match e {
                Event::MediaHealth(h) => Some((h.problem, h.src, h.silent_ms)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn no_media_after_the_answer_is_reported_once_past_the_silence() {
        let mut h = Health::new(4, SILENCE);
        let (mut c, mut out) = (Counters::default(), Vec::new());
        h.open(1);
        h.check(s(15), 1, &id(), s(10), &mut c, &mut out);
        assert!(out.is_empty(), "5 s is not longer than the threshold");
        h.check(s(16), 1, &id(), s(10), &mut c, &mut out);
        h.check(s(17), 1, &id(), s(10), &mut c, &mut out);
        assert_eq!(
            problems(&out),
            [(MediaProblem::NoMediaAfterAnswer, None, 6000)]
        );
        assert_eq!(c.rtp.health_events, 1);
    }

    #[test]
    fn one_way_media_names_the_silent_direction_from_the_flowing_one() {
        let mut h = Health::new(4, SILENCE);
        let (mut c, mut out) = (Counters::default(), Vec::new());
        h.open(1);
        let (caller, callee) = (at("10.0.0.1:4000"), at("10.0.0.2:5000"));
        // Only the callee's media flows toward the caller, up to second 20.
        for t in 11..=20 {
            h.saw(1, Party::Caller, s(t), callee, caller);
            h.check(s(t), 1, &id(), s(10), &mut c, &mut out);
        }
        assert_eq!(
            problems(&out),
            [(MediaProblem::OneWayMedia, Some(caller), 6000)]
        );
    }

    #[test]
    fn media_that_stops_both_ways_is_media_stopped() {
        let mut h = Health::new(4, SILENCE);
        let (mut c, mut out) = (Counters::default(), Vec::new());
        h.open(1);
        let (a, b) = (at("10.0.0.1:4000"), at("10.0.0.2:5000"));
        h.saw(1, Party::Caller, s(12), b, a);
        h.saw(1, Party::Callee, s(12), a, b);
        h.check(s(14), 1, &id(), s(10), &mut c, &mut out);
        h.check(s(18), 1, &id(), s(10), &mut c, &mut out);
        assert_eq!(problems(&out), [(MediaProblem::MediaStopped, None, 6000)]);
    }

    #[test]
    fn only_open_calls_are_watched() {
        let mut h = Health::new(4, SILENCE);
        let (mut c, mut out) = (Counters::default(), Vec::new());
        h.saw(9, Party::Caller, s(1), at("10.0.0.1:1"), at("10.0.0.2:2"));
        h.check(s(60), 9, &id(), s(0), &mut c, &mut out);
        h.open(1);
        h.close(1);
        h.check(s(60), 1, &id(), s(0), &mut c, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.watches.len(), 0);
    }

    /// Runs one call's packets (`flows[t]`: which directions carried a packet in second
    /// `t`) through a watch checked every second, and through one checked only when its
    /// streams had packets or at the second `next_change` named: the events must match.
    fn every_second_and_lazily(flows: &[[bool; 2]]) -> (Vec<Event>, Vec<Event>, usize) {
        let (a, b) = (at("10.0.0.1:4000"), at("10.0.0.2:5000"));
        let since = s(10);
        let (mut every, mut lazy) = (Health::new(2, SILENCE), Health::new(2, SILENCE));
        every.open(1);
        lazy.open(1);
        let (mut c, mut out_every, mut out_lazy) = (Counters::default(), vec![], vec![]);
        let mut wake = Some(10);
        let mut checks = 0;
        for (i, f) in flows.iter().enumerate() {
            let t = 10 + i as u64;
            // The tick at the start of second t, after packets of second t - 1.
            let now = Instant::from_micros(t * 1_000_000 + 1_000);
            let fed = f.iter().any(|x| *x);
            for (d, toward) in [(0, Party::Caller), (1, Party::Callee)] {
                if f[d] {
                    let p = Instant::from_micros(t * 1_000_000 - 400_000);
                    every.saw(1, toward, p, a, b);
                    lazy.saw(1, toward, p, a, b);
                }
            }
            every.check(now, 1, &id(), since, &mut c, &mut out_every);
            if fed || wake.is_some_and(|w| w <= t) {
                checks += 1;
                wake = lazy.check(now, 1, &id(), since, &mut c, &mut out_lazy);
                if wake.is_some_and(|w| w <= t) {
                    wake = Some(t + 1);
                }
            }
        }
        (out_every, out_lazy, checks)
    }

    #[test]
    fn checking_only_when_something_can_change_reports_what_checking_every_second_does() {
        let mut x: u32 = 0x1234_5678;
        let mut events = 0;
        let mut saved = 0;
        for case in 0..300 {
            let mut flows = vec![[false; 2]; 60];
            // Runs of flowing and silent seconds per direction, different in every case.
            for d in 0..2 {
                let mut on = case % 3 != 0;
                let mut t = 0;
                while t < flows.len() {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let run = 1 + (x >> 16) as usize % 12;
                    for f in flows.iter_mut().skip(t).take(run) {
                        f[d] = on;
                    }
                    t += run;
                    on = !on;
                }
            }
            let (every, lazy, checks) = every_second_and_lazily(&flows);
            assert_eq!(every, lazy, "case {case}: {flows:?}");
            events += every.len();
            saved += flows.len() - checks;
        }
        assert!(events > 100, "the cases report problems: {events}");
        assert!(saved > 1000, "and skip most silent seconds: {saved}");
        // A call that never gets media is checked when the threshold passes, then never.
        let (every, lazy, checks) = every_second_and_lazily(&[[false; 2]; 60]);
        assert_eq!((every.len(), lazy.len(), checks), (1, 1, 2));
    }
}
