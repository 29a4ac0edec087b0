//! MQTT payloads: postcard with a leading schema version byte (default), or flat JSON.
//!
//! The Rust types in [`crate::track::event`] and here are the single source of truth: the
//! postcard form is their serde encoding, the JSON form is [`crate::publish::json`]'s flat
//! object (plus transport fields). A payload's first byte tells the formats apart: JSON
//! starts with `{` or `[`, postcard with [`SCHEMA_VERSION`].
//!
//! Transport fields (not part of `replay`'s lines): `seq` on `calls` messages (per publisher
//! run, starts at 1; lets a consumer drop QoS 1 redeliveries and see gaps), and `seq`, `part`,
//! `parts` on postcard `rtp` batches.

use crate::publish::json;
use crate::track::event::{Event, RtpInterval, Ts};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Bumped on any incompatible change to [`Message`] or the event types.
pub const SCHEMA_VERSION: u8 = 2;

/// Payload format on the wire (`[output] payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Postcard,
    Json,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Postcard => "postcard",
            Format::Json => "JSON",
        })
    }
}

/// Everything the sensor publishes.
// Built once per event and encoded at once, never stored: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// `calls`: one tracker event other than an RTP interval.
    Event { seq: u64, event: Event },
    /// `rtp`: one second's intervals (or one part of them).
    Rtp(RtpBatch),
    /// `status`: retained online/offline record.
    Status(Status),
    /// `health`: sensor counters.
    Health(Health),
    /// `kpi`: call KPIs for one period.
    Kpi(Kpi),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RtpBatch {
    pub seq: u64,
    /// The second these intervals cover.
    pub ts: Ts,
    /// This message's index among `parts` messages for the same second.
    pub part: u16,
    pub parts: u16,
    pub intervals: Vec<RtpInterval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Online,
    Offline,
    /// sensor.toml is invalid: `error` says which key and how to fix it.
    #[serde(rename = "config_error")]
    ConfigError,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    pub site: String,
    pub sensor: String,
    /// voipsensor version.
    pub version: String,
    /// Capture interfaces (or the file replayed).
    pub interfaces: Vec<String>,
    /// VLAN ids seen on the mirror so far.
    pub vlans: Vec<u16>,
    /// Encapsulations seen (GRE, ERSPAN, VXLAN, IP-in-IP, TZSP, QinQ, fragments).
    pub encapsulations: Vec<String>,
    /// When the publisher started (wall clock).
    pub started: Ts,
    /// The wall clock is NTP-synchronised (see `clock.rs`); until then timestamps may be off.
    pub clock_synced: bool,
    /// What is wrong, for `config_error`.
    pub error: Option<String>,
}

/// Outbox and connection counters, cumulative since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OutboxStats {
    /// Messages waiting now (including handed to the MQTT client but not yet acknowledged).
    pub depth: u32,
    pub depth_bytes: u64,
    pub capacity: u32,
    pub capacity_bytes: u64,
    pub high_water: u32,
    /// Per-second metrics (rtp, health, kpi) dropped because the outbox was full.
    pub dropped_metrics: u64,
    /// Call events dropped because the outbox was full of call events.
    pub dropped_calls: u64,
    /// Messages accepted by the broker (QoS 1) or written to it (QoS 0).
    pub sent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub ts: Ts,
    pub uptime_s: u64,
    pub connected: bool,
    /// Successful connections after the first.
    pub reconnects: u64,
    pub outbox: OutboxStats,
    /// The caller's counters (capture, tables...), as JSON text: postcard cannot carry a
    /// schemaless value, and these change more often than the schema version should.
    pub counters_json: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Kpi {
    /// Start of the period.
    pub ts: Ts,
    pub period_s: u32,
    /// Calls that ended in the period (each call counted once, when it ends).
    pub attempted: u32,
    pub answered: u32,
    /// Ended with a final 3xx–6xx.
    pub failed: u32,
    pub cancelled: u32,
    /// Timed out, evicted or still open at stop, never answered.
    pub abandoned: u32,
    /// `(code, calls)`, ascending code.
    pub failed_by_code: Vec<(u16, u32)>,
    /// Answer-seizure ratio: answered / attempted.
    pub asr_pct: Option<f64>,
    /// Network effectiveness ratio: (answered + user busy / no answer / rejected /
    /// cancelled) / attempted (ITU-T E.411 spirit).
    pub ner_pct: Option<f64>,
    /// Average call duration of answered calls that ended in the period.
    pub acd_s: Option<f64>,
    pub pdd_mean_ms: Option<f64>,
}

#[derive(Debug)]
pub enum DecodeError {
    Empty,
    UnknownVersion(u8),
    Postcard(postcard::Error),
    Json(serde_json::Error),
    BadJson(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty payload"),
            DecodeError::UnknownVersion(v) => write!(
                f,
                "payload starts with byte {v:#04x}: neither JSON nor a known postcard schema \
                 version (this build reads version {SCHEMA_VERSION})"
            ),
            DecodeError::Postcard(e) => write!(f, "postcard payload does not decode: {e}"),
            DecodeError::Json(e) => write!(f, "JSON payload does not parse: {e}"),
            DecodeError::BadJson(m) => write!(f, "JSON payload: {m}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// postcard bytes: the version byte, then the message.
pub fn to_postcard(msg: &Message) -> Vec<u8> {
    let mut out = vec![SCHEMA_VERSION];
    // Serializing plain data into a Vec cannot fail; an empty body would fail decoding loudly.
    if let Ok(body) = postcard::to_allocvec(msg) {
        out.extend_from_slice(&body);
    }
    out
}

pub fn encode(msg: &Message, format: Format) -> Vec<u8> {
    match format {
        Format::Postcard => to_postcard(msg),
        Format::Json => msg.to_json().to_string().into_bytes(),
    }
}

/// Decodes a postcard payload.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Empty),
        Some(&SCHEMA_VERSION) => postcard::from_bytes(&bytes[1..]).map_err(DecodeError::Postcard),
        Some(&v) => Err(DecodeError::UnknownVersion(v)),
    }
}

/// Any payload (postcard or JSON) as the JSON lines `watch` and `decode` print.
pub fn to_json_lines(bytes: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'{') | Some(b'[') => {
            let v: Value = serde_json::from_slice(bytes).map_err(DecodeError::Json)?;
            Ok(match v {
                Value::Array(items) => items,
                other => vec![other],
            })
        }
        _ => Ok(decode(bytes)?.to_json_lines()),
    }
}

impl Message {
    /// The JSON payload: one flat object, or an array of them for `rtp`.
    pub fn to_json(&self) -> Value {
        match self {
            Message::Rtp(b) => Value::Array(b.intervals.iter().map(interval_json).collect()),
            _ => self
                .to_json_lines()
                .into_iter()
                .next()
                .unwrap_or(Value::Null),
        }
    }

    /// One JSON object per line; an `rtp` batch gives one line per interval, exactly as
    /// `replay` prints them.
    pub fn to_json_lines(&self) -> Vec<Value> {
        match self {
            Message::Event { seq, event } => {
                let mut v = json::to_value(event);
                if let Value::Object(m) = &mut v {
                    m.insert("seq".into(), (*seq).into());
                }
                vec![v]
            }
            Message::Rtp(b) => b.intervals.iter().map(interval_json).collect(),
            Message::Status(s) => vec![typed("status", s)],
            Message::Kpi(k) => {
                let mut v = typed("kpi", k);
                if let Value::Object(m) = &mut v {
                    m.remove("failed_by_code");
                    for (code, n) in &k.failed_by_code {
                        m.insert(format!("failed_{code}"), (*n).into());
                    }
                }
                vec![v]
            }
            Message::Health(h) => {
                let mut out = Map::new();
                out.insert("type".into(), "health".into());
                let core = serde_json::json!({
                    "ts": h.ts, "uptime_s": h.uptime_s, "connected": h.connected,
                    "reconnects": h.reconnects, "outbox": h.outbox,
                });
                flatten_into("", core, &mut out);
                if let Ok(extra) = serde_json::from_str::<Value>(&h.counters_json) {
                    flatten_into("", extra, &mut out);
                }
                vec![Value::Object(out)]
            }
        }
    }
}

fn interval_json(i: &RtpInterval) -> Value {
    json::to_value(&Event::RtpInterval(i.clone()))
}

/// `{"type": name, fields...}` with nested objects flattened and nulls left out.
fn typed<T: Serialize>(name: &str, v: &T) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), name.into());
    if let Ok(inner) = serde_json::to_value(v) {
        flatten_into("", inner, &mut out);
    }
    Value::Object(out)
}

/// Nested objects become `outer_inner` keys (what Telegraf's JSON parser would do anyway);
/// nulls are left out as in `replay`'s lines.
pub fn flatten_into(prefix: &str, v: Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}_{k}")
                };
                flatten_into(&key, v, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other);
        }
    }
}

/// Reads one flat JSON event back (the inverse of [`json::to_value`]); transport fields
/// (`seq`, `topic`) are ignored.
pub fn event_from_json(v: &Value) -> Result<Event, DecodeError> {
    let Value::Object(m) = v else {
        return Err(DecodeError::BadJson(
            "an event must be a JSON object".into(),
        ));
    };
    let mut m = m.clone();
    let ty = match m.remove("type") {
        Some(Value::String(s)) => s,
        _ => return Err(DecodeError::BadJson("no \"type\" string field".into())),
    };
    m.remove("seq");
    m.remove("topic");
    crate::publish::json::unflatten(&mut m);
    let body = Value::Object(m);
    let ev = match ty.as_str() {
        "call" => Event::Call(serde_json::from_value(body).map_err(DecodeError::Json)?),
        "rtp_interval" => {
            Event::RtpInterval(serde_json::from_value(body).map_err(DecodeError::Json)?)
        }
        "stream_end" => Event::StreamEnd(serde_json::from_value(body).map_err(DecodeError::Json)?),
        "dtmf" => Event::Dtmf(serde_json::from_value(body).map_err(DecodeError::Json)?),
        "media_health" => {
            Event::MediaHealth(serde_json::from_value(body).map_err(DecodeError::Json)?)
        }
        other => {
            return Err(DecodeError::BadJson(format!(
                "unknown event type {other:?} (known: call, rtp_interval, stream_end, dtmf, media_health)"
            )));
        }
    };
    Ok(ev)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::track::event::*;
    use core::net::SocketAddr;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// One of every event type, with every optional field filled (the worst case for size).
    pub(crate) fn samples() -> Vec<Event> {
        let mut call_id = CallId::new();
        fill(&mut call_id, "a84b4c76e66710@pc33.atlanta.example.com");
        let mut caller = User::new();
        fill(&mut caller, "+33140000001");
        let mut callee = User::new();
        fill(&mut callee, "+33140000002");
        let mut codec = Codec::new();
        fill(&mut codec, "PCMA");
        let mut reason = Text::new();
        fill(&mut reason, "OK");
        let mut ua = Text::new();
        fill(&mut ua, "Yealink SIP-T46S 66.86.0.15");
        let q = DirectionQuality {
            src: Some(addr("10.1.1.10:16384")),
            dst: Some(addr("10.2.2.20:20000")),
            codec: codec.clone(),
            packets: 9000,
            lost: 3,
            jitter_max_ms: 4.125,
            mos_min: Some(4.1),
            mos_mean: Some(4.35),
            streams: 2,
            burst_r: Some(1.8),
            rtcp_fraction_lost: Some(0.5),
            rtcp_jitter_ms: Some(1.25),
            rtcp_rtt_ms: Some(32.5),
            rtcp_xr_mos_lq: Some(4.2),
            rtcp_xr_burst_density_pct: Some(12.5),
            rtcp_xr_gap_density_pct: Some(0.391),
        };
        let call = CallEvent {
            ts: Ts(1_700_000_180_250_000),
            event: CallEventKind::Ended,
            call_id: call_id.clone(),
            caller,
            callee,
            src: addr("10.1.1.10:5060"),
            dst: addr("10.2.2.20:5060"),
            code: Some(200),
            reason: Some(reason),
            ended_by: Some(Party::Callee),
            setup_ms: Some(2150),
            pdd_ms: Some(850),
            duration_ms: Some(180_000),
            retransmissions: 1,
            user_agent: Some(ua),
            quality_caller: Some(q.clone()),
            quality_callee: Some(q),
        };
        let interval = RtpInterval {
            ts: Ts(1_700_000_001_000_000),
            call_id: Some(call_id.clone()),
            ssrc: 0x1234_5678,
            src: Some(addr("10.1.1.10:16384")),
            dst: Some(addr("10.2.2.20:20000")),
            pt: 8,
            codec: codec.clone(),
            packets: 50,
            expected: 50,
            lost: 0,
            duplicates: 0,
            out_of_order: 0,
            jitter_ms: 0.812,
            jitter_max_ms: 1.5,
            delta_max_ms: 21.3,
            r_factor: Some(92.1),
            mos: Some(4.39),
            burst_r: Some(2.5),
            loss_runs: [1, 0, 0, 1, 0, 0],
            loss_gaps: [0, 1, 0, 0, 0, 0],
            capture_loss: false,
        };
        let mut why = Text::new();
        fill(&mut why, "call_ended");
        let end = StreamEnd {
            ts: Ts(1_700_000_180_300_000),
            call_id: Some(call_id.clone()),
            ssrc: 0x1234_5678,
            src: Some(addr("[2001:db8::1]:16384")),
            dst: Some(addr("[2001:db8::2]:20000")),
            pt: 8,
            codec,
            packets: 9000,
            expected: 9003,
            lost: 3,
            duplicates: 1,
            out_of_order: 2,
            jitter_max_ms: 4.125,
            jitter_mean_ms: 0.9,
            delta_max_ms: 40.0,
            mos_min: Some(4.1),
            mos_mean: Some(4.35),
            burst_r: Some(1.2),
            loss_runs: [3, 0, 0, 0, 0, 0],
            loss_gaps: [0, 0, 0, 1, 1, 0],
            rtcp_fraction_lost: Some(0.5),
            rtcp_cumulative_lost: Some(4),
            rtcp_jitter_ms: Some(1.25),
            rtcp_rtt_ms: Some(32.5),
            rtcp_xr_loss_pct: Some(1.5625),
            rtcp_xr_discard_pct: Some(0.390625),
            rtcp_xr_r_factor: Some(88),
            rtcp_xr_mos_lq: Some(4.2),
            rtcp_xr_mos_cq: Some(4.1),
            rtcp_xr_rtt_ms: Some(31.0),
            rtcp_xr_burst_density_pct: Some(12.5),
            rtcp_xr_gap_density_pct: Some(0.391),
            reason: why,
        };
        let dtmf = DtmfEvent {
            ts: Ts(1_700_000_010_000_000),
            call_id: Some(call_id.clone()),
            ssrc: 7,
            src: Some(addr("10.1.1.10:16384")),
            dst: Some(addr("10.2.2.20:20000")),
            digit: '#',
            event_code: 11,
            duration_ms: 160,
            volume: 10,
        };
        let health = MediaHealth {
            ts: Ts(1_700_000_020_000_000),
            problem: MediaProblem::OneWayMedia,
            call_id: Some(call_id),
            src: Some(addr("10.2.2.20:20000")),
            dst: None,
            silent_ms: 5000,
        };
        vec![
            Event::Call(call),
            Event::RtpInterval(interval),
            Event::StreamEnd(end),
            Event::Dtmf(dtmf),
            Event::MediaHealth(health),
        ]
    }

    #[test]
    fn every_event_type_round_trips_postcard_to_json_and_back() {
        for ev in samples() {
            let msg = Message::Event {
                seq: 42,
                event: ev.clone(),
            };
            let bytes = to_postcard(&msg);
            assert_eq!(bytes[0], SCHEMA_VERSION);
            let back = decode(&bytes).unwrap();
            assert_eq!(back, msg);
            // postcard -> JSON line -> typed event again
            let lines = to_json_lines(&bytes).unwrap();
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0]["seq"], 42);
            assert_eq!(event_from_json(&lines[0]).unwrap(), ev, "{}", lines[0]);
            // The JSON payload decodes to the same lines as the postcard one.
            let json_bytes = encode(&msg, Format::Json);
            assert_eq!(to_json_lines(&json_bytes).unwrap(), lines);
        }
    }

    #[test]
    fn json_lines_of_an_event_equal_replay_output_plus_seq() {
        for ev in samples() {
            let line = Message::Event {
                seq: 1,
                event: ev.clone(),
            }
            .to_json_lines()
            .remove(0);
            let mut m = line.as_object().unwrap().clone();
            m.remove("seq");
            assert_eq!(Value::Object(m).to_string(), json::to_line(&ev));
        }
    }

    #[test]
    fn rtp_batch_gives_one_replay_line_per_interval() {
        let Event::RtpInterval(i) = samples().remove(1) else {
            unreachable!()
        };
        let b = Message::Rtp(RtpBatch {
            seq: 3,
            ts: i.ts,
            part: 0,
            parts: 1,
            intervals: vec![i.clone(), i.clone()],
        });
        for bytes in [encode(&b, Format::Postcard), encode(&b, Format::Json)] {
            let lines = to_json_lines(&bytes).unwrap();
            assert_eq!(lines.len(), 2);
            assert_eq!(
                lines[0].to_string(),
                json::to_line(&Event::RtpInterval(i.clone()))
            );
        }
    }

    #[test]
    fn health_and_kpi_json_are_flat() {
        let h = Message::Health(Health {
            ts: Ts(1_000_000),
            uptime_s: 10,
            connected: true,
            reconnects: 2,
            outbox: OutboxStats {
                dropped_metrics: 5,
                ..Default::default()
            },
            counters_json: r#"{"capture":{"kernel_drops":7},"calls":{"len":3}}"#.into(),
        });
        let v = &to_json_lines(&to_postcard(&h)).unwrap()[0];
        assert_eq!(v["type"], "health");
        assert_eq!(v["outbox_dropped_metrics"], 5);
        assert_eq!(v["capture_kernel_drops"], 7);
        assert!(v.as_object().unwrap().values().all(|x| !x.is_object()));
        let k = Message::Kpi(Kpi {
            failed_by_code: vec![(486, 2)],
            asr_pct: Some(50.0),
            ..Default::default()
        });
        let v = &to_json_lines(&encode(&k, Format::Json)).unwrap()[0];
        assert_eq!(v["failed_486"], 2);
        assert_eq!(v["asr_pct"], 50.0);
    }

    #[test]
    fn unknown_schema_version_is_named_in_the_error() {
        let e = decode(&[9, 1, 2]).unwrap_err().to_string();
        assert!(e.contains("0x09") && e.contains("version 2"), "{e}");
    }

    /// Bytes per call event and per stream-second, both formats (figures for the README).
    #[test]
    fn measure_payload_sizes() {
        let evs = samples();
        let call = Message::Event {
            seq: 1000,
            event: evs[0].clone(),
        };
        let mut invite = evs[0].clone();
        if let Event::Call(c) = &mut invite {
            c.event = CallEventKind::Invite;
            c.code = None;
            c.reason = None;
            c.ended_by = None;
            c.setup_ms = None;
            c.pdd_ms = None;
            c.duration_ms = None;
            c.quality_caller = None;
            c.quality_callee = None;
        }
        let invite = Message::Event {
            seq: 1000,
            event: invite,
        };
        let Event::RtpInterval(i) = evs[1].clone() else {
            unreachable!()
        };
        let batch = |n: usize| {
            Message::Rtp(RtpBatch {
                seq: 1000,
                ts: i.ts,
                part: 0,
                parts: 1,
                intervals: vec![i.clone(); n],
            })
        };
        for f in [Format::Postcard, Format::Json] {
            let per_stream =
                (encode(&batch(100), f).len() - encode(&batch(0), f).len()) as f64 / 100.0;
            println!(
                "{f:?}: call event (ended, with quality) {} B, call event (invite) {} B, \
                 per stream-second {per_stream:.1} B, batch overhead {} B",
                encode(&call, f).len(),
                encode(&invite, f).len(),
                encode(&batch(0), f).len()
            );
        }
        assert!(encode(&call, Format::Postcard).len() < encode(&call, Format::Json).len());
    }
}
