//! A received payload (postcard or JSON, whatever the sensor was configured with) back into
//! the sensor's own [`Message`] type, so the NOC reads one type whatever the format.
//!
//! postcard is [`payload::decode`]; JSON is the flat form `replay` prints (an `rtp` message is
//! an array of intervals), read back through [`payload::event_from_json`] and serde.

use crate::publish::payload::{self, DecodeError, Health, Kpi, Message, OutboxStats, RtpBatch};
use crate::publish::topic::Leaf;
use crate::track::event::{Event, Ts};
use serde_json::{Map, Value};

/// Decodes the payload of a message received on `leaf`.
pub fn decode(leaf: Leaf, bytes: &[u8]) -> Result<Message, DecodeError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => {
            let v: Value = serde_json::from_slice(bytes).map_err(DecodeError::Json)?;
            from_json(leaf, v)
        }
        _ => payload::decode(bytes),
    }
}

fn bad(m: &str) -> DecodeError {
    DecodeError::BadJson(m.into())
}

fn from_json(leaf: Leaf, v: Value) -> Result<Message, DecodeError> {
    match leaf {
        Leaf::Rtp => {
            let Value::Array(items) = v else {
                return Err(bad(
                    "an rtp message must be a JSON array of rtp_interval objects",
                ));
            };
            let mut intervals = Vec::with_capacity(items.len());
            for it in &items {
                match payload::event_from_json(it)? {
                    Event::RtpInterval(i) => intervals.push(i),
                    _ => return Err(bad("rtp array holds a non-rtp_interval object")),
                }
            }
            let ts = intervals.first().map(|i| i.ts).unwrap_or_default();
            Ok(Message::Rtp(RtpBatch {
                seq: 0,
                ts,
                part: 0,
                parts: 1,
                intervals,
            }))
        }
        Leaf::Calls => {
            let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
            Ok(Message::Event {
                seq,
                event: payload::event_from_json(&v)?,
            })
        }
        Leaf::Status => {
            let m = typed(v, "status")?;
            serde_json::from_value(Value::Object(m))
                .map(Message::Status)
                .map_err(DecodeError::Json)
        }
        Leaf::Kpi => {
            let mut m = typed(v, "kpi")?;
            // `failed_by_code` is written as one `failed_CODE` key per code.
            let mut by_code: Vec<(u16, u32)> = Vec::new();
            m.retain(
                |k, val| match k.strip_prefix("failed_").map(str::parse::<u16>) {
                    Some(Ok(code)) => {
                        by_code.push((code, val.as_u64().unwrap_or(0) as u32));
                        false
                    }
                    _ => true,
                },
            );
            by_code.sort_unstable();
            m.insert(
                "failed_by_code".into(),
                serde_json::to_value(by_code).unwrap_or_default(),
            );
            serde_json::from_value::<Kpi>(Value::Object(m))
                .map(Message::Kpi)
                .map_err(DecodeError::Json)
        }
        Leaf::Health => {
            let mut m = typed(v, "health")?;
            let mut take_u64 = |k: &str| m.remove(k).and_then(|v| v.as_u64()).unwrap_or(0);
            let uptime_s = take_u64("uptime_s");
            let reconnects = take_u64("reconnects");
            let outbox = OutboxStats {
                depth: take_u64("outbox_depth") as u32,
                depth_bytes: take_u64("outbox_depth_bytes"),
                capacity: take_u64("outbox_capacity") as u32,
                capacity_bytes: take_u64("outbox_capacity_bytes"),
                high_water: take_u64("outbox_high_water") as u32,
                dropped_metrics: take_u64("outbox_dropped_metrics"),
                dropped_calls: take_u64("outbox_dropped_calls"),
                sent: take_u64("outbox_sent"),
            };
            let ts = match m.remove("ts").and_then(|v| v.as_f64()) {
                Some(f) => Ts((f * 1e6).round() as u64),
                None => return Err(bad("health without \"ts\"")),
            };
            let connected = m
                .remove("connected")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            Ok(Message::Health(Health {
                ts,
                uptime_s,
                connected,
                reconnects,
                outbox,
                // What is left is the sensor's counters, flattened (`capture_total_…`).
                counters_json: Value::Object(m).to_string(),
            }))
        }
    }
}

/// The object's fields without `"type"`, which must be `name`.
fn typed(v: Value, name: &str) -> Result<Map<String, Value>, DecodeError> {
    let Value::Object(mut m) = v else {
        return Err(bad("expected a JSON object"));
    };
    match m.remove("type") {
        Some(Value::String(t)) if t == name => Ok(m),
        _ => Err(DecodeError::BadJson(format!(
            "expected \"type\":\"{name}\""
        ))),
    }
}

/// A counter of the sensor's `health` counters, nested (postcard: `counters_json` as the
/// sensor wrote it) or flattened (JSON payload: `a_b_c`).
pub fn counter(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    let mut nested = true;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => {
                nested = false;
                break;
            }
        }
    }
    if nested {
        return cur.as_u64();
    }
    v.get(path.join("_")).and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::payload::{Format, State, Status, encode};

    fn status() -> Message {
        Message::Status(Status {
            state: State::Online,
            site: "paris".into(),
            sensor: "t1".into(),
            version: "0.1.0".into(),
            interfaces: vec!["eth1".into()],
            vlans: vec![10],
            encapsulations: vec![],
            started: Ts(1_700_000_000_000_000),
            clock_synced: true,
            error: None,
        })
    }

    #[test]
    fn status_kpi_and_events_read_back_the_same_from_both_formats() {
        let kpi = Message::Kpi(Kpi {
            ts: Ts(1_700_000_060_000_000),
            period_s: 60,
            attempted: 10,
            answered: 7,
            failed: 2,
            cancelled: 1,
            abandoned: 0,
            failed_by_code: vec![(404, 1), (486, 1)],
            asr_pct: Some(70.0),
            ner_pct: Some(90.0),
            acd_s: Some(61.5),
            pdd_mean_ms: Some(850.0),
        });
        let events = crate::publish::payload::tests::samples();
        let mut msgs = vec![(Leaf::Status, status()), (Leaf::Kpi, kpi)];
        for e in events {
            let leaf = if matches!(e, Event::RtpInterval(_)) {
                continue;
            } else {
                Leaf::Calls
            };
            msgs.push((leaf, Message::Event { seq: 7, event: e }));
        }
        for (leaf, m) in msgs {
            for f in [Format::Postcard, Format::Json] {
                let got = decode(leaf, &encode(&m, f)).unwrap();
                assert_eq!(got, m, "{f} {leaf:?}");
            }
        }
    }

    #[test]
    fn json_rtp_arrays_and_health_counters_are_read() {
        let iv = crate::publish::payload::tests::samples()
            .into_iter()
            .find_map(|e| match e {
                Event::RtpInterval(i) => Some(i),
                _ => None,
            })
            .unwrap();
        let m = Message::Rtp(RtpBatch {
            seq: 0,
            ts: iv.ts,
            part: 0,
            parts: 1,
            intervals: vec![iv.clone(), iv],
        });
        assert_eq!(decode(Leaf::Rtp, &encode(&m, Format::Json)).unwrap(), m);

        let h = Message::Health(Health {
            ts: Ts(1_700_000_010_000_000),
            uptime_s: 10,
            connected: true,
            reconnects: 2,
            outbox: OutboxStats {
                dropped_calls: 3,
                ..Default::default()
            },
            counters_json: r#"{"capture":{"total":{"dropped_kernel":5}}}"#.into(),
        });
        for f in [Format::Postcard, Format::Json] {
            let Message::Health(got) = decode(Leaf::Health, &encode(&h, f)).unwrap() else {
                panic!("not health");
            };
            assert_eq!((got.reconnects, got.outbox.dropped_calls), (2, 3), "{f}");
            let c: Value = serde_json::from_str(&got.counters_json).unwrap();
            assert_eq!(
                counter(&c, &["capture", "total", "dropped_kernel"]),
                Some(5),
                "{f}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x02\xff\xff",
            b"{",
            b"[1,2]",
            b"\x09abc",
            b"{\"type\":\"x\"}",
        ] {
            for leaf in Leaf::ALL {
                assert!(decode(leaf, bad).is_err(), "{leaf:?} {bad:?}");
            }
        }
    }
}
