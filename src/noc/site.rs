//! `/site/SITE`: the site's sensors, their last calls (outcome, code, setup, duration,
//! MOS and loss per direction) and, for a chosen call (`?sensor=S&call=ID`), its per-second
//! MOS, loss and jitter per stream.

use super::chart::{CSS as CHART_CSS, axis, stream_charts};
use super::fleet::{CSS, since, state_word};
use super::ingest::Noc;
use super::state::{CallRow, Sensor};
use super::url::encode;
use crate::report::page::utc;
use crate::report::svg::{esc, num};
use std::fmt::Write;

fn outcome(r: &CallRow) -> String {
    serde_json::to_value(r.last)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn dir(r: &CallRow, i: usize) -> String {
    let loss = if r.packets[i] > 0 {
        format!(
            ", {} % lost",
            num(
                100.0 * r.lost[i].max(0) as f64 / (r.packets[i] as f64 + r.lost[i].max(0) as f64),
                2
            )
        )
    } else {
        String::new()
    };
    match r.mos[i] {
        Some(m) => format!("{}{loss}", num(m, 2)),
        None => format!("–{loss}"),
    }
}

pub fn page(noc: &Noc, site: &str, sensor: Option<&str>, call: Option<&str>) -> String {
    let mut sensors: Vec<&Sensor> = noc.sensors().filter(|s| s.site == site).collect();
    sensors.sort_by(|a, b| a.sensor.cmp(&b.sensor));
    let now = super::subscribe::wall_s();
    let mut h = String::with_capacity(16 << 10);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset='utf-8'><title>{s} — voipsensor</title><style>{CSS}{CHART_CSS}</style></head><body><p><a href='/'>fleet</a></p><h1>site {s}</h1>",
        s = esc(site)
    );
    for s in &sensors {
        let _ = write!(
            h,
            "<h2>{} <span class='state-{st}'>{st}</span> {}</h2><p>version {} — {}</p><table class='calls' data-sensor='{}'><thead><tr><th>start (UTC)</th><th>caller</th><th>callee</th><th>outcome</th><th>code</th><th>setup</th><th>duration</th><th>MOS caller→callee</th><th>MOS callee→caller</th><th></th></tr></thead><tbody>",
            esc(&s.sensor),
            since(s, now),
            esc(&s.version),
            esc(&s.interfaces.join(", ")),
            esc(&s.sensor),
            st = state_word(s),
        );
        for r in s.calls.iter().rev() {
            let charted = s.series.iter().any(|c| c.call_id == r.call_id);
            let link = if charted {
                format!(
                    "<a href='/site/{}?sensor={}&amp;call={}'>chart</a>",
                    encode(site),
                    encode(&s.sensor),
                    encode(&r.call_id)
                )
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr class='call' data-call-id='{}'><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
                esc(&r.call_id),
                &utc(r.start)[..19],
                esc(&r.caller),
                esc(&r.callee),
                outcome(r),
                r.code.map(|c| c.to_string()).unwrap_or_default(),
                r.setup_ms
                    .map(|v| format!("{} s", num(f64::from(v) / 1e3, 2)))
                    .unwrap_or_default(),
                r.duration_ms
                    .map(|v| format!("{} s", num(v as f64 / 1e3, 1)))
                    .unwrap_or_default(),
                dir(r, 0),
                dir(r, 1),
            );
        }
        h.push_str("</tbody></table>");
    }
    if let (Some(sn), Some(id)) = (sensor, call)
        && let Some(s) = sensors.iter().find(|s| s.sensor == sn)
    {
        match s.series.iter().find(|c| c.call_id == id) {
            Some(c) => {
                let _ = write!(h, "<h2 id='chart'>call {}</h2>", esc(id));
                let ax = axis(&c.streams);
                for st in &c.streams {
                    let _ = write!(
                        h,
                        "<div class='stream' data-ssrc='{:08x}'><h3>{} → {} ({}, SSRC {:08x})</h3>{}</div>",
                        st.ssrc,
                        st.src.map(|a| a.to_string()).unwrap_or_default(),
                        st.dst.map(|a| a.to_string()).unwrap_or_default(),
                        esc(&st.codec),
                        st.ssrc,
                        stream_charts(st, ax)
                    );
                }
            }
            None => h.push_str("<p id='chart'>no per-second figures kept for this call (only the most recent calls are charted)</p>"),
        }
    }
    h.push_str("</body></html>");
    h
}
