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
            if !v.is_null() {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

/// One line of JSON (no trailing newline).
pub fn to_line(ev: &Event) -> String {
    to_value(ev).to_string()
}
