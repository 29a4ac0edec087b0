//! One received message → the per-sensor state and the metrics. Sans-IO: fed
//! `(topic, payload, wall seconds)` by the subscriber (or a test, or the benchmark).

use super::decode::{counter, decode};
use super::metrics::{
    ClassL, CodecL, DirectionL, InfoL, LeafL, Metrics, OutcomeL, ProblemL, SensorL, WarningL,
};
use super::state::{Limits, Sensor, Warning, answered, network_lost};
use crate::publish::payload::{Health, Kpi, Message, State, Status};
use crate::publish::topic;
use crate::track::event::{CallEvent, CallEventKind, Event, MediaProblem, RtpInterval};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::Value;
use std::collections::HashMap;

/// Metric handles of one sensor, looked up once: the hot path does no label hashing.
#[derive(Clone)]
struct Handles {
    sensor: SensorL,
    codecs: Vec<CodecHandles>,
    /// The sensor's cumulative health counters last seen (counters grow by the difference).
    prev: HealthTotals,
    warnings: Vec<String>,
    info: Option<InfoL>,
}

#[derive(Clone)]
struct CodecHandles {
    codec: String,
    packets: Counter,
    expected: Counter,
    lost: Counter,
    capture_loss: Counter,
    mos: Histogram,
    jitter: Histogram,
}

#[derive(Clone, Copy, Default)]
struct HealthTotals {
    dropped: u64,
    duplicates: u64,
    dropped_calls: u64,
    dropped_metrics: u64,
    reconnects: u64,
}

struct Entry {
    state: Sensor,
    h: Handles,
}

/// The NOC's whole state.
pub struct Noc {
    pub metrics: Metrics,
    pub limits: Limits,
    sensors: HashMap<(String, String), Entry>,
}

impl Noc {
    pub fn new(limits: Limits) -> Noc {
        Noc {
            metrics: Metrics::new(),
            limits,
            sensors: HashMap::new(),
        }
    }

    /// Sensors, unordered.
    pub fn sensors(&self) -> impl Iterator<Item = &Sensor> {
        self.sensors.values().map(|e| &e.state)
    }

    pub fn sensor(&self, site: &str, sensor: &str) -> Option<&Sensor> {
        self.sensors
            .get(&(site.to_string(), sensor.to_string()))
            .map(|e| &e.state)
    }

    /// One MQTT message. `now` is wall seconds (status changes and "last heard").
    pub fn on_message(&mut self, topic: &str, payload: &[u8], now: u64) {
        let Some((site, sensor, leaf)) = topic::parse(topic) else {
            self.metrics.noc_unknown_topics.inc();
            return;
        };
        let leaf_l = LeafL {
            leaf: leaf.as_str().into(),
        };
        self.metrics.noc_messages.get_or_create(&leaf_l).inc();
        let msg = match decode(leaf, payload) {
            Ok(m) => m,
            Err(e) => {
                log::debug!("{topic}: {e}");
                self.metrics.noc_decode_errors.get_or_create(&leaf_l).inc();
                return;
            }
        };
        let key = (site.to_string(), sensor.to_string());
        if !self.sensors.contains_key(&key) {
            if self.sensors.len() >= self.limits.max_sensors {
                self.metrics.noc_sensors_rejected.inc();
                return;
            }
            let h = Handles {
                sensor: SensorL {
                    site: site.into(),
                    sensor: sensor.into(),
                },
                codecs: Vec::new(),
                prev: HealthTotals::default(),
                warnings: Vec::new(),
                info: None,
            };
            self.sensors.insert(
                key.clone(),
                Entry {
                    state: Sensor::new(site, sensor, now),
                    h,
                },
            );
            self.metrics.noc_sensors.set(self.sensors.len() as i64);
        }
        let Some(e) = self.sensors.get_mut(&key) else {
            return;
        };
        e.state.last_heard = now;
        let m = &self.metrics;
        m.last_message.get_or_create(&e.h.sensor).set(now as f64);
        match msg {
            Message::Status(s) => on_status(m, e, &s, now),
            Message::Event { seq, event } => {
                if seq > 0 {
                    if seq <= e.state.last_seq && seq != 1 {
                        m.noc_duplicates.inc();
                        return;
                    }
                    e.state.last_seq = seq;
                }
                on_event(m, &self.limits, e, &event);
            }
            Message::Rtp(b) => {
                for i in &b.intervals {
                    on_interval(m, &self.limits, e, i);
                }
            }
            Message::Health(h) => on_health(m, e, &h),
            Message::Kpi(k) => on_kpi(m, e, &k),
        }
    }
}

fn on_status(m: &Metrics, e: &mut Entry, s: &Status, now: u64) {
    let st = &mut e.state;
    if st.state != Some(s.state) {
        st.since = now;
        m.status_changed.get_or_create(&e.h.sensor).set(now as f64);
    }
    if s.started != st.started {
        // A new publisher run numbers its `calls` messages from 1 again.
        st.last_seq = 0;
        st.started = s.started;
    }
    st.state = Some(s.state);
    m.up.get_or_create(&e.h.sensor)
        .set(i64::from(s.state == State::Online));
    if s.state == State::Offline {
        // An offline sensor has no call in progress we could still learn the end of.
        st.calls_now = 0;
        m.calls_active.get_or_create(&e.h.sensor).set(0);
        return;
    }
    st.version = s.version.clone();
    st.interfaces = s.interfaces.clone();
    st.clock_synced = s.clock_synced;
    m.clock_synced
        .get_or_create(&e.h.sensor)
        .set(i64::from(s.clock_synced));
    let info = InfoL {
        site: st.site.clone(),
        sensor: st.sensor.clone(),
        version: s.version.clone(),
        interfaces: s.interfaces.join(","),
    };
    if e.h.info.as_ref() != Some(&info) {
        if let Some(old) = e.h.info.take() {
            m.info.remove(&old);
        }
        m.info.get_or_create(&info).set(1);
        e.h.info = Some(info);
    }
}

fn on_event(m: &Metrics, lim: &Limits, e: &mut Entry, ev: &Event) {
    match ev {
        Event::Call(c) => {
            e.state.on_call(c, lim);
            m.calls_active
                .get_or_create(&e.h.sensor)
                .set(i64::from(e.state.calls_now));
            if c.event.is_final() {
                call_metrics(m, &e.h.sensor, c);
            }
        }
        Event::RtpInterval(i) => on_interval(m, lim, e, i),
        Event::MediaHealth(h) => {
            let p = match h.problem {
                MediaProblem::OneWayMedia => "one_way_media",
                MediaProblem::NoMediaAfterAnswer => "no_media_after_answer",
                MediaProblem::MediaStopped => "media_stopped",
            };
            e.state.on_media_problem(h.ts, p, lim);
            m.media_problems
                .get_or_create(&ProblemL {
                    site: e.h.sensor.site.clone(),
                    sensor: e.h.sensor.sensor.clone(),
                    problem: p.into(),
                })
                .inc();
        }
        Event::StreamEnd(_) | Event::Dtmf(_) => {}
    }
}

fn call_metrics(m: &Metrics, s: &SensorL, c: &CallEvent) {
    let (outcome, code) = if answered(c) {
        ("answered", "200".to_string())
    } else {
        match c.event {
            CallEventKind::Failed => ("failed", c.code.map(|c| c.to_string()).unwrap_or_default()),
            CallEventKind::Cancelled => (
                "cancelled",
                c.code.map(|c| c.to_string()).unwrap_or_default(),
            ),
            _ => ("abandoned", String::new()),
        }
    };
    m.calls
        .get_or_create(&OutcomeL {
            site: s.site.clone(),
            sensor: s.sensor.clone(),
            outcome: outcome.into(),
            code,
        })
        .inc();
    if let Some(v) = c.setup_ms {
        m.setup.get_or_create(s).observe(f64::from(v) / 1e3);
    }
    if let Some(v) = c.pdd_ms {
        m.pdd.get_or_create(s).observe(f64::from(v) / 1e3);
    }
    if let Some(v) = c.duration_ms.filter(|_| answered(c)) {
        m.duration.get_or_create(s).observe(v as f64 / 1e3);
    }
    for (dir, q) in [("caller", &c.quality_caller), ("callee", &c.quality_callee)] {
        if let Some(q) = q
            && let Some(mos) = q.mos_mean
        {
            m.call_mos
                .get_or_create(&DirectionL {
                    site: s.site.clone(),
                    sensor: s.sensor.clone(),
                    direction: dir.into(),
                    codec: q.codec.as_str().into(),
                })
                .observe(mos);
        }
    }
}

fn on_interval(m: &Metrics, lim: &Limits, e: &mut Entry, i: &RtpInterval) {
    e.state.on_interval(i, lim);
    let codec = i.codec.as_str();
    let h = match e.h.codecs.iter().position(|c| c.codec == codec) {
        Some(p) => &e.h.codecs[p],
        None => {
            let l = CodecL {
                site: e.h.sensor.site.clone(),
                sensor: e.h.sensor.sensor.clone(),
                codec: codec.into(),
            };
            e.h.codecs.push(CodecHandles {
                codec: codec.into(),
                packets: m.rtp_packets.get_or_create_owned(&l),
                expected: m.rtp_expected.get_or_create_owned(&l),
                lost: m.rtp_lost.get_or_create_owned(&l),
                capture_loss: m.rtp_capture_loss.get_or_create_owned(&l),
                mos: m.second_mos.get_or_create_owned(&l),
                jitter: m.jitter.get_or_create_owned(&l),
            });
            e.h.codecs.last().expect("just pushed")
        }
    };
    h.packets.inc_by(u64::from(i.packets));
    h.expected.inc_by(u64::from(i.expected));
    h.lost.inc_by(network_lost(i));
    if i.capture_loss {
        h.capture_loss.inc();
    }
    if let Some(mos) = i.mos {
        h.mos.observe(mos);
    }
    h.jitter.observe(i.jitter_ms / 1e3);
}

/// A cumulative sensor counter: grows by the difference; a smaller value is a restart.
fn grow(c: &Counter, prev: &mut u64, now: u64) {
    c.inc_by(if now >= *prev { now - *prev } else { now });
    *prev = now;
}

fn on_health(m: &Metrics, e: &mut Entry, h: &Health) {
    let s = &e.h.sensor;
    let with = |class: &str| ClassL {
        site: s.site.clone(),
        sensor: s.sensor.clone(),
        class: class.into(),
    };
    let p = &mut e.h.prev;
    grow(
        &m.outbox_dropped.get_or_create(&with("calls")),
        &mut p.dropped_calls,
        h.outbox.dropped_calls,
    );
    grow(
        &m.outbox_dropped.get_or_create(&with("metrics")),
        &mut p.dropped_metrics,
        h.outbox.dropped_metrics,
    );
    grow(
        &m.reconnects.get_or_create(s),
        &mut p.reconnects,
        h.reconnects,
    );
    m.outbox_depth
        .get_or_create(s)
        .set(i64::from(h.outbox.depth));
    let c: Value = serde_json::from_str(&h.counters_json).unwrap_or(Value::Null);
    let dropped = counter(&c, &["capture", "total", "dropped_kernel"]).unwrap_or(0)
        + counter(&c, &["capture", "total", "dropped_interface"]).unwrap_or(0);
    grow(&m.capture_dropped.get_or_create(s), &mut p.dropped, dropped);
    let dups = counter(&c, &["capture", "duplicates"]).unwrap_or(0);
    grow(
        &m.mirror_duplicates.get_or_create(s),
        &mut p.duplicates,
        dups,
    );
    // The sensor's active warnings: present ones 1, cleared ones back to 0.
    let mut now: Vec<Warning> = Vec::new();
    if let Some(Value::Array(ws)) = c.get("warnings") {
        for w in ws {
            if let Some(code) = w.get("code").and_then(Value::as_str) {
                now.push(Warning {
                    code: code.into(),
                    message: w
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                });
            }
        }
    }
    if dups > 0 && !now.iter().any(|w| w.code == "duplicate_frames") {
        now.push(Warning {
            code: "duplicate_frames".into(),
            message: format!(
                "{dups} frames seen twice on the mirror (RX and TX mirrored to one port?)"
            ),
        });
    }
    let label = |code: &str| WarningL {
        site: s.site.clone(),
        sensor: s.sensor.clone(),
        warning: code.into(),
    };
    for old in &e.h.warnings {
        if !now.iter().any(|w| &w.code == old) {
            m.mirror_warning.get_or_create(&label(old)).set(0);
        }
    }
    for w in &now {
        m.mirror_warning.get_or_create(&label(&w.code)).set(1);
    }
    e.h.warnings = now.iter().map(|w| w.code.clone()).collect();
    now.truncate(8);
    e.state.warnings = now;
}

fn on_kpi(m: &Metrics, e: &mut Entry, k: &Kpi) {
    let s = &e.h.sensor;
    m.kpi_attempted
        .get_or_create(s)
        .inc_by(u64::from(k.attempted));
    m.kpi_answered
        .get_or_create(s)
        .inc_by(u64::from(k.answered));
    if let Some(ner) = k.ner_pct {
        let eff = (ner / 100.0 * f64::from(k.attempted)).round() as u64;
        m.kpi_effective.get_or_create(s).inc_by(eff);
    }
    if let Some(v) = k.asr_pct {
        m.kpi_asr.get_or_create(s).set(v / 100.0);
    }
    if let Some(v) = k.ner_pct {
        m.kpi_ner.get_or_create(s).set(v / 100.0);
    }
    if let Some(v) = k.acd_s {
        m.kpi_acd.get_or_create(s).set(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::payload::{Format, encode};
    use crate::track::event::{MediaHealth, Ts};

    fn status(started: u64) -> Vec<u8> {
        encode(
            &Message::Status(Status {
                state: State::Online,
                site: "s".into(),
                sensor: "t".into(),
                version: "1".into(),
                interfaces: vec![],
                vlans: vec![],
                encapsulations: vec![],
                started: Ts(started),
                clock_synced: true,
                error: None,
            }),
            Format::Postcard,
        )
    }

    fn problem(seq: u64) -> Vec<u8> {
        encode(
            &Message::Event {
                seq,
                event: Event::MediaHealth(MediaHealth {
                    ts: Ts(1_000_000),
                    problem: MediaProblem::MediaStopped,
                    call_id: None,
                    src: None,
                    dst: None,
                    silent_ms: 1,
                }),
            },
            Format::Postcard,
        )
    }

    fn problems(n: &Noc) -> u64 {
        n.metrics
            .media_problems
            .get_or_create(&ProblemL {
                site: "s".into(),
                sensor: "t".into(),
                problem: "media_stopped".into(),
            })
            .get()
    }

    #[test]
    fn sensors_beyond_the_cap_are_counted_not_tracked() {
        let mut n = Noc::new(Limits {
            max_sensors: 2,
            ..Limits::default()
        });
        for s in ["a", "b", "c", "d"] {
            n.on_message(&format!("voipsensor/v1/x/{s}/status"), &status(1), 0);
        }
        assert_eq!(n.sensors().count(), 2);
        assert_eq!(n.metrics.noc_sensors_rejected.get(), 2);
        n.on_message("elsewhere/x", b"{}", 0);
        assert_eq!(n.metrics.noc_unknown_topics.get(), 1);
    }

    #[test]
    fn a_redelivered_seq_counts_once_and_a_restart_numbers_again() {
        let mut n = Noc::new(Limits::default());
        let calls = "voipsensor/v1/s/t/calls";
        n.on_message("voipsensor/v1/s/t/status", &status(1), 0);
        for seq in [1, 2, 3, 2, 3] {
            n.on_message(calls, &problem(seq), 0);
        }
        assert_eq!(problems(&n), 3);
        assert_eq!(n.metrics.noc_duplicates.get(), 2);
        // A new publisher run (new `started`) numbers from 1: seq 2 is new again.
        n.on_message("voipsensor/v1/s/t/status", &status(2), 0);
        n.on_message(calls, &problem(2), 0);
        assert_eq!(problems(&n), 4);
    }
}
