//! The JSON-lines form of events: one flat object per line, `"type"` first.
//!
//! Flat on purpose: Telegraf's `mqtt_consumer` JSON parser and `jq` read it as is. Field names
//! carry units (`_ms`, `_pct`); timestamps are Unix seconds with microseconds.

use crate::track::event::Event;
use serde_json::{Map, Value};

/// The event as a JSON object: `{"type": ..., <fields>}`.
pub fn to_value(ev: &Event) -> Value {
    let inner = match ev {
        Event::Call(e) => serde_json::to_value(e),
        Event::RtpInterval(e) => serde_json::to_value(e),
        Event::StreamEnd(e) => serde_json::to_value(e),
        Event::Dtmf(e) => serde_json::to_value(e),
        Event::MediaHealth(e) => serde_json::to_value(e),
    };
    let mut out = Map::new();
    out.insert("type".into(), Value::String(ev.type_name().into()));
    if let Ok(Value::Object(fields)) = inner {
        for (k, v) in fields {
            // Absent optional figures are left out rather than printed as null: smaller lines,
            // and consumers treat "missing" and "null" alike.
            match v {
                Value::Null => {}
                // Nested records (a call's per-direction quality) become prefixed fields,
                // `quality_caller_packets`, so every line stays one flat object.
                Value::Object(inner) => {
                    for (ik, iv) in inner {
                        if !iv.is_null() {
                            out.insert(format!("{k}_{ik}"), iv);
                        }
                    }
                }
                v => {
                    out.insert(k, v);
                }
            }
        }
    }
    Value::Object(out)
}

/// Records that [`to_value`] flattens into prefixed fields.
const NESTED: [&str; 2] = ["quality_caller", "quality_callee"];

/// Undoes the flattening of [`to_value`], so a JSON line deserializes into its event type.
pub fn unflatten(m: &mut Map<String, Value>) {
    for prefix in NESTED {
        let pre = format!("{prefix}_");
        let keys: Vec<String> = m.keys().filter(|k| k.starts_with(&pre)).cloned().collect();
        if keys.is_empty() {
            continue;
        }
        let mut inner = Map::new();
        for k in keys {
            if let Some(v) = m.remove(&k) {
                inner.insert(k[pre.len()..].to_string(), v);
            }
        }
        m.insert(prefix.to_string(), Value::Object(inner));
    }
}

/// One line of JSON (no trailing newline).
pub fn to_line(ev: &Event) -> String {
    to_value(ev).to_string()
}
