//! Bounded per-sensor state for the pages: status and since when, calls now, the last
//! hour in one-minute buckets (ASR, MOS, loss), active warnings, the last calls and the
//! per-second figures of the most recent calls. Every collection has a fixed cap
//! ([`Limits`]), so memory grows with the sensor count (itself capped), never with traffic.

use crate::publish::payload::State;
use crate::track::event::{CallEvent, CallEventKind, RtpInterval, Ts};
use core::net::SocketAddr;
use std::collections::VecDeque;

/// Caps on what is kept (`[limits]` in noc.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Sensors tracked; messages from more are counted and dropped.
    pub max_sensors: usize,
    /// Calls listed on a site page, per sensor.
    pub calls_per_sensor: usize,
    /// Most recent calls per sensor whose per-second figures are kept for the chart.
    pub charted_calls: usize,
    /// Streams charted per call.
    pub streams_per_call: usize,
    /// Seconds kept per charted stream (the last ones).
    pub chart_seconds: usize,
    /// Warnings kept per sensor.
    pub warnings_per_sensor: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sensors: 10_000,
            calls_per_sensor: 20,
            charted_calls: 3,
            streams_per_call: 2,
            chart_seconds: 300,
            warnings_per_sensor: 8,
        }
    }
}

/// One minute of one sensor's traffic (for the "last hour" columns).
#[derive(Debug, Clone, Copy, Default)]
pub struct Minute {
    pub minute: u64,
    pub attempted: u32,
    pub answered: u32,
    pub mos_sum: f64,
    pub mos_n: u32,
    pub expected: u64,
    pub lost: u64,
}

/// One row of a site page's call list.
#[derive(Debug, Clone)]
pub struct CallRow {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub start: Ts,
    /// The latest event of the call.
    pub last: CallEventKind,
    pub code: Option<u16>,
    pub setup_ms: Option<u32>,
    pub duration_ms: Option<u64>,
    /// MOS mean caller→callee and callee→caller (final event).
    pub mos: [Option<f64>; 2],
    pub lost: [i64; 2],
    pub packets: [u64; 2],
}

/// One stream-second, as charted.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub ts: Ts,
    pub packets: u32,
    pub lost: i32,
    pub jitter_ms: f32,
    /// NaN when the codec has no MOS.
    pub mos: f32,
}

#[derive(Debug, Clone)]
pub struct StreamSeries {
    pub ssrc: u32,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub codec: String,
    pub points: VecDeque<Point>,
}

#[derive(Debug, Clone)]
pub struct CallSeries {
    pub call_id: String,
    pub streams: Vec<StreamSeries>,
}

/// A warning shown on the pages: a stable code and the sensor's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Sensor {
    pub site: String,
    pub sensor: String,
    pub state: Option<State>,
    pub version: String,
    pub interfaces: Vec<String>,
    pub clock_synced: bool,
    /// The publisher's start (tells a restart apart from a redelivery).
    pub started: Ts,
    /// Wall seconds when the status last changed, and of the last message.
    pub since: u64,
    pub last_heard: u64,
    pub calls_now: u32,
    /// Highest `calls` seq seen in this publisher run.
    pub last_seq: u64,
    /// Newest packet time seen (the "last hour" is relative to it: replays work too).
    pub newest: Ts,
    pub minutes: [Minute; 60],
    /// From the latest `health` (the sensor's view) and media problems of the last hour.
    pub warnings: Vec<Warning>,
    pub media_problems: Vec<(Ts, String)>,
    pub calls: VecDeque<CallRow>,
    pub series: VecDeque<CallSeries>,
}

/// Last-hour figures of one sensor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hour {
    pub attempted: u32,
    pub answered: u32,
    pub asr: Option<f64>,
    pub mos: Option<f64>,
    pub loss_pct: Option<f64>,
}

impl Sensor {
    pub fn new(site: &str, sensor: &str, now: u64) -> Sensor {
        Sensor {
            site: site.into(),
            sensor: sensor.into(),
            state: None,
            version: String::new(),
            interfaces: Vec::new(),
            clock_synced: false,
            started: Ts(0),
            since: now,
            last_heard: now,
            calls_now: 0,
            last_seq: 0,
            newest: Ts(0),
            minutes: [Minute::default(); 60],
            warnings: Vec::new(),
            media_problems: Vec::new(),
            calls: VecDeque::new(),
            series: VecDeque::new(),
        }
    }

    pub fn online(&self) -> bool {
        self.state == Some(State::Online)
    }

    fn minute(&mut self, ts: Ts) -> &mut Minute {
        if ts > self.newest {
            self.newest = ts;
        }
        let m = ts.0 / 60_000_000;
        let slot = &mut self.minutes[(m % 60) as usize];
        if slot.minute != m {
            *slot = Minute {
                minute: m,
                ..Minute::default()
            };
        }
        slot
    }

    /// The last 60 minutes of packet time before the newest message.
    pub fn hour(&self) -> Hour {
        let newest = self.newest.0 / 60_000_000;
        let mut h = Hour::default();
        let (mut mos_sum, mut mos_n, mut exp, mut lost) = (0.0, 0u64, 0u64, 0u64);
        for m in self.minutes.iter().filter(|m| {
            m.minute <= newest
                && newest - m.minute < 60
                && (m.mos_n > 0 || m.expected > 0 || m.attempted > 0)
        }) {
            h.attempted += m.attempted;
            h.answered += m.answered;
            mos_sum += m.mos_sum;
            mos_n += u64::from(m.mos_n);
            exp += m.expected;
            lost += m.lost;
        }
        h.asr = (h.attempted > 0).then(|| f64::from(h.answered) / f64::from(h.attempted));
        h.mos = (mos_n > 0).then(|| mos_sum / mos_n as f64);
        h.loss_pct = (exp > 0).then(|| 100.0 * lost as f64 / exp as f64);
        h
    }

    /// A call event: the list row, calls now, the hour's ASR.
    pub fn on_call(&mut self, e: &CallEvent, lim: &Limits) {
        let id = e.call_id.as_str();
        if e.event == CallEventKind::Invite {
            self.calls_now = self.calls_now.saturating_add(1);
        }
        if e.event.is_final() {
            self.calls_now = self.calls_now.saturating_sub(1);
            let answered = answered(e);
            let m = self.minute(e.ts);
            m.attempted += 1;
            m.answered += u32::from(answered);
        } else if e.ts > self.newest {
            self.newest = e.ts;
        }
        let row = match self.calls.iter_mut().find(|r| r.call_id == id) {
            Some(r) => r,
            None => {
                if self.calls.len() >= lim.calls_per_sensor.max(1) {
                    self.calls.pop_front();
                }
                self.calls.push_back(CallRow {
                    call_id: id.into(),
                    caller: e.caller.as_str().into(),
                    callee: e.callee.as_str().into(),
                    start: e.ts,
                    last: e.event,
                    code: None,
                    setup_ms: None,
                    duration_ms: None,
                    mos: [None; 2],
                    lost: [0; 2],
                    packets: [0; 2],
                });
                self.calls.back_mut().expect("just pushed")
            }
        };
        row.last = e.event;
        if e.code.is_some() && e.event != CallEventKind::Ended {
            row.code = e.code;
        }
        row.setup_ms = e.setup_ms.or(row.setup_ms);
        row.duration_ms = e.duration_ms.or(row.duration_ms);
        for (i, q) in [&e.quality_caller, &e.quality_callee]
            .into_iter()
            .enumerate()
        {
            if let Some(q) = q {
                row.mos[i] = q.mos_mean;
                row.lost[i] = q.lost;
                row.packets[i] = q.packets;
            }
        }
    }

    /// One stream-second: the hour's MOS and loss, and the chart of its call if recent.
    pub fn on_interval(&mut self, i: &RtpInterval, lim: &Limits) {
        let m = self.minute(i.ts);
        if let Some(mos) = i.mos {
            m.mos_sum += mos;
            m.mos_n += 1;
        }
        m.expected += u64::from(i.expected);
        m.lost += network_lost(i);
        let Some(id) = i.call_id.as_ref().map(|c| c.as_str()) else {
            return;
        };
        let pos = match self.series.iter().position(|s| s.call_id == id) {
            Some(p) => p,
            None => {
                // Only calls on the list are charted: anything else would be unreachable.
                if lim.charted_calls == 0 || !self.calls.iter().any(|r| r.call_id == id) {
                    return;
                }
                if self.series.len() >= lim.charted_calls {
                    self.series.pop_front();
                }
                self.series.push_back(CallSeries {
                    call_id: id.into(),
                    streams: Vec::new(),
                });
                self.series.len() - 1
            }
        };
        let s = &mut self.series[pos];
        let st = match s
            .streams
            .iter()
            .position(|x| x.ssrc == i.ssrc && x.dst == i.dst)
        {
            Some(p) => &mut s.streams[p],
            None => {
                if s.streams.len() >= lim.streams_per_call {
                    return;
                }
                s.streams.push(StreamSeries {
                    ssrc: i.ssrc,
                    src: i.src,
                    dst: i.dst,
                    codec: i.codec.as_str().into(),
                    points: VecDeque::new(),
                });
                s.streams.last_mut().expect("just pushed")
            }
        };
        if st.points.len() >= lim.chart_seconds.max(1) {
            st.points.pop_front();
        }
        st.points.push_back(Point {
            ts: i.ts,
            packets: i.packets,
            lost: i.lost,
            jitter_ms: i.jitter_ms as f32,
            mos: i.mos.map_or(f32::NAN, |m| m as f32),
        });
    }

    /// A media problem: shown as a warning while within the last hour of packet time.
    pub fn on_media_problem(&mut self, ts: Ts, problem: &str, lim: &Limits) {
        if self.media_problems.len() >= lim.warnings_per_sensor.max(1) {
            self.media_problems.remove(0);
        }
        self.media_problems.push((ts, problem.into()));
        if ts > self.newest {
            self.newest = ts;
        }
    }

    /// Every active warning: the sensor's own, the NOC's judgements, media problems.
    pub fn active_warnings(&self) -> Vec<Warning> {
        let mut w = self.warnings.clone();
        if self.state.is_some() && !self.clock_synced {
            w.push(Warning {
                code: "clock_unsynchronised".into(),
                message: "the sensor's clock is not NTP-synchronised: timestamps may be off".into(),
            });
        }
        let h = self.hour();
        if let Some(l) = h.loss_pct.filter(|l| *l >= 1.0) {
            w.push(Warning {
                code: "packet_loss".into(),
                message: format!("{l:.1} % of RTP packets lost in the last hour"),
            });
        }
        if let Some(m) = h.mos.filter(|m| *m < 3.6) {
            w.push(Warning {
                code: "low_mos".into(),
                message: format!("mean MOS {m:.2} over the last hour"),
            });
        }
        let hour_ago = self.newest.0.saturating_sub(3_600_000_000);
        for (ts, p) in &self.media_problems {
            if ts.0 >= hour_ago && !w.iter().any(|x| &x.code == p) {
                let n = self
                    .media_problems
                    .iter()
                    .filter(|(t, q)| q == p && t.0 >= hour_ago)
                    .count();
                w.push(Warning {
                    code: p.clone(),
                    message: format!("{n} call(s) with {} in the last hour", p.replace('_', " ")),
                });
            }
        }
        w
    }

    /// Sort key, worst first (ascending): offline, then more warnings, then lower MOS.
    pub fn badness(&self) -> (bool, std::cmp::Reverse<usize>, i64) {
        let mos = self.hour().mos.unwrap_or(5.0);
        (
            self.online(),
            std::cmp::Reverse(self.active_warnings().len()),
            (mos * 1000.0) as i64,
        )
    }
}

/// Whether a final call event closes an answered call.
pub fn answered(e: &CallEvent) -> bool {
    e.event == CallEventKind::Ended || e.duration_ms.is_some()
}

/// Packets the network lost in one stream-second: `lost` counts a duplicate as received.
pub fn network_lost(i: &RtpInterval) -> u64 {
    (i64::from(i.lost) + i64::from(i.duplicates)).max(0) as u64
}
