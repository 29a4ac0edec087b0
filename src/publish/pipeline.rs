//! Publishing, sans-IO: events and ticks in, messages out (topic leaf, payload, QoS,
//! retain). Privacy, `seq` numbering, the per-second RTP batches, `kpi` and the `health`
//! period live here; delivery is [`Session`](crate::publish::session::Session)'s, the
//! network the driver's ([`Publisher`](crate::publish::Publisher)).

use crate::publish::kpi::KpiAcc;
use crate::publish::outbox::{Class, OutMsg};
use crate::publish::payload::{self, Format, Message, State, Status};
use crate::publish::privacy::Privacy;
use crate::publish::rtp_batch;
use crate::publish::session::Link;
use crate::publish::settings::{PublishSettings, Qos};
use crate::publish::topic::Leaf;
use crate::track::event::{Event, RtpInterval, Ts};

pub struct Pipeline {
    format: Format,
    qos: Qos,
    privacy: Privacy,
    max_message_bytes: usize,
    status: Status,
    seq_calls: u64,
    seq_rtp: u64,
    rtp: Vec<RtpInterval>,
    rtp_second: Option<u64>,
    rtp_messages: u64,
    kpi: KpiAcc,
    health_period_us: u64,
    next_health: Option<u64>,
    first_ts: Option<Ts>,
    out: Vec<OutMsg>,
}

impl Pipeline {
    /// `started` is the wall-clock start named in the status.
    pub fn new(s: &PublishSettings, privacy: Privacy, started: Ts) -> Pipeline {
        Pipeline {
            format: s.payload,
            qos: s.qos,
            privacy,
            max_message_bytes: s.max_message_bytes,
            status: Status {
                state: State::Online,
                site: s.site.clone(),
                sensor: s.sensor.clone(),
                version: env!("CARGO_PKG_VERSION").into(),
                interfaces: s.interfaces.clone(),
                vlans: Vec::new(),
                encapsulations: Vec::new(),
                started,
                clock_synced: false,
                error: None,
            },
            seq_calls: 0,
            seq_rtp: 0,
            rtp: Vec::new(),
            rtp_second: None,
            rtp_messages: 0,
            kpi: KpiAcc::new(s.kpi_interval_s),
            health_period_us: u64::from(s.health_interval_s) * 1_000_000,
            next_health: None,
            first_ts: None,
            out: Vec::new(),
        }
    }

    /// The retained status as it is now, online or offline (the Last Will).
    pub fn status(&self, state: State) -> Vec<u8> {
        payload::encode(
            &Message::Status(Status {
                state,
                ..self.status.clone()
            }),
            self.format,
        )
    }

    /// Messages produced since the last call, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, OutMsg> {
        self.out.drain(..)
    }

    pub fn calls_published(&self) -> u64 {
        self.seq_calls
    }

    pub fn rtp_messages(&self) -> u64 {
        self.rtp_messages
    }

    fn emit(&mut self, leaf: Leaf, class: Class, qos: u8, msg: &Message) {
        let bytes = payload::encode(msg, self.format);
        self.out.push(OutMsg::new(leaf, class, qos, bytes));
    }

    fn emit_status(&mut self, state: State) {
        let mut m = OutMsg::new(Leaf::Status, Class::Call, 1, self.status(state));
        m.retain = true;
        self.out.push(m);
    }

    /// One event. RTP intervals are batched per second of their own time.
    pub fn event(&mut self, ev: &Event) {
        self.first_ts.get_or_insert(ev.ts());
        let mut ev = ev.clone();
        self.privacy.apply(&mut ev);
        match ev {
            Event::RtpInterval(i) => {
                let sec = i.ts.0 / 1_000_000;
                if self.rtp_second.is_some_and(|s| s != sec) {
                    self.flush_rtp();
                }
                self.rtp_second = Some(sec);
                self.rtp.push(i);
            }
            other => {
                if let Event::Call(c) = &other {
                    self.kpi.observe(c);
                }
                self.seq_calls += 1;
                let msg = Message::Event {
                    seq: self.seq_calls,
                    event: other,
                };
                self.emit(Leaf::Calls, Class::Call, self.qos.calls, &msg);
            }
        }
    }

    /// The buffered second of RTP intervals, split to fit `max_message_bytes`.
    fn flush_rtp(&mut self) {
        let Some(sec) = self.rtp_second.take() else {
            return;
        };
        let intervals = std::mem::take(&mut self.rtp);
        if intervals.is_empty() {
            return;
        }
        let parts = rtp_batch::split(intervals, self.format, self.max_message_bytes);
        let n = parts.len() as u16;
        for (k, intervals) in parts.into_iter().enumerate() {
            self.seq_rtp += 1;
            let msg = Message::Rtp(payload::RtpBatch {
                seq: self.seq_rtp,
                ts: Ts(sec * 1_000_000),
                part: k as u16,
                parts: n,
                intervals,
            });
            self.rtp_messages += 1;
            self.emit(Leaf::Rtp, Class::Metric, self.qos.rtp, &msg);
        }
    }

    /// Time-based output: the last RTP second, `health` and `kpi`. `now` is packet time in
    /// replay, wall time live; `counters` are the caller's (capture, tables...), `link` the
    /// session's.
    pub fn tick(&mut self, now: Ts, link: Link, counters: &impl serde::Serialize) {
        self.first_ts.get_or_insert(now);
        // Intervals of second S come out once packet time passes S+1; a second more is slack.
        if self.rtp_second.is_some_and(|s| now.0 / 1_000_000 >= s + 2) {
            self.flush_rtp();
        }
        let period = self.health_period_us;
        let next = *self
            .next_health
            .get_or_insert(now.0 - now.0 % period + period);
        if now.0 >= next {
            let h = payload::Health {
                ts: now,
                uptime_s: now.0.saturating_sub(self.first_ts.unwrap_or(now).0) / 1_000_000,
                connected: link.connected,
                reconnects: link.connections.saturating_sub(1),
                outbox: link.outbox,
                counters_json: serde_json::to_string(counters).unwrap_or_else(|_| "{}".into()),
            };
            self.emit(
                Leaf::Health,
                Class::Health,
                self.qos.health,
                &Message::Health(h),
            );
            // Skip periods with no tick (idle capture) rather than bursting.
            self.next_health = Some(now.0 - now.0 % period + period);
        }
        if let Some(k) = self.kpi.roll(now) {
            self.emit(Leaf::Kpi, Class::Metric, self.qos.kpi, &Message::Kpi(k));
        }
    }

    /// What the mirror delivers (VLAN ids, encapsulations) changed: the retained status is
    /// republished. Returns the new online status, or `None` when nothing changed.
    pub fn set_delivery(
        &mut self,
        vlans: Vec<u16>,
        encapsulations: Vec<String>,
    ) -> Option<Vec<u8>> {
        if self.status.vlans == vlans && self.status.encapsulations == encapsulations {
            return None;
        }
        self.status.vlans = vlans;
        self.status.encapsulations = encapsulations;
        self.emit_status(State::Online);
        Some(self.status(State::Online))
    }

    /// Whether the system clock is NTP-synchronised (the Pi has no RTC: events stamped
    /// before the sync are recognisable by it). A change republishes the retained status;
    /// returns the new online status, or `None` when nothing changed.
    pub fn set_clock_synced(&mut self, synced: bool) -> Option<Vec<u8>> {
        if self.status.clock_synced == synced {
            return None;
        }
        self.status.clock_synced = synced;
        self.emit_status(State::Online);
        Some(self.status(State::Online))
    }

    /// The end: the last RTP second and KPI period, then the retained offline status.
    pub fn finish(&mut self) {
        self.flush_rtp();
        if let Some(k) = self.kpi.flush() {
            self.emit(Leaf::Kpi, Class::Metric, self.qos.kpi, &Message::Kpi(k));
        }
        self.emit_status(State::Offline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::privacy::Privacy;

    fn settings() -> PublishSettings {
        PublishSettings {
            fallbacks: Vec::new(),
            spool: None,
            connect: Default::default(),
            site: "s1".into(),
            sensor: "t1".into(),
            interfaces: vec!["eth1".into()],
            qos: Qos::default(),
            payload: Format::Postcard,
            max_message_bytes: 16 * 1024,
            outbox_messages: 100,
            outbox_bytes: 1 << 20,
            reconnect_min: std::time::Duration::from_millis(500),
            reconnect_max: std::time::Duration::from_secs(60),
            health_interval_s: 10,
            kpi_interval_s: 60,
            privacy: Privacy::none(),
        }
    }
    fn rtp(sec: u64, ssrc: u32) -> Event {
        Event::RtpInterval(RtpInterval {
            ts: Ts(sec * 1_000_000),
            ssrc,
            ..Default::default()
        })
    }
    fn leaves(p: &mut Pipeline) -> Vec<Leaf> {
        p.drain().map(|m| m.leaf).collect()
    }

    #[test]
    fn a_second_of_rtp_leaves_once_packet_time_is_two_seconds_on() {
        let s = settings();
        let mut p = Pipeline::new(&s, Privacy::none(), Ts(0));
        p.event(&rtp(100, 1));
        p.event(&rtp(100, 2));
        p.tick(Ts(101_000_000), Link::default(), &());
        assert!(leaves(&mut p).is_empty());
        p.tick(Ts(102_000_000), Link::default(), &());
        let out: Vec<_> = p.drain().collect();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].leaf, out[0].qos, out[0].retain),
            (Leaf::Rtp, 0, false)
        );
        match payload::decode(&out[0].payload).unwrap() {
            Message::Rtp(b) => assert_eq!((b.seq, b.intervals.len()), (1, 2)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn health_comes_on_period_boundaries_with_the_link_figures() {
        let s = settings();
        let mut p = Pipeline::new(&s, Privacy::none(), Ts(0));
        p.tick(Ts(5_000_000), Link::default(), &());
        assert!(leaves(&mut p).is_empty());
        let link = Link {
            connected: true,
            connections: 3,
            ..Link::default()
        };
        p.tick(Ts(10_000_000), link, &serde_json::json!({"x": 1}));
        let out: Vec<_> = p.drain().collect();
        match payload::decode(&out[0].payload).unwrap() {
            Message::Health(h) => {
                assert_eq!((h.uptime_s, h.reconnects, h.connected), (5, 2, true));
                assert_eq!(h.counters_json, r#"{"x":1}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn finish_flushes_rtp_then_says_offline_retained() {
        let s = settings();
        let mut p = Pipeline::new(&s, Privacy::none(), Ts(0));
        p.event(&rtp(100, 1));
        p.finish();
        let out: Vec<_> = p.drain().collect();
        assert_eq!(
            out.iter().map(|m| m.leaf).collect::<Vec<_>>(),
            [Leaf::Rtp, Leaf::Status]
        );
        assert!(out[1].retain && out[1].qos == 1);
        match payload::decode(&out[1].payload).unwrap() {
            Message::Status(st) => assert_eq!(st.state, State::Offline),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delivery_change_republishes_the_status_once() {
        let s = settings();
        let mut p = Pipeline::new(&s, Privacy::none(), Ts(0));
        assert!(p.set_delivery(vec![10], vec!["ERSPAN".into()]).is_some());
        assert!(p.set_delivery(vec![10], vec!["ERSPAN".into()]).is_none());
        assert_eq!(leaves(&mut p), [Leaf::Status]);
    }
}
