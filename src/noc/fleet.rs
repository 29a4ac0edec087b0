//! `/`: the fleet page. One row per sensor, worst first (offline, then more warnings, then
//! lower MOS): site, sensor, online/offline and since when, calls now, ASR, MOS and loss over
//! the last hour, active warnings. Plain HTML and CSS from the binary, refreshed every 10 s.

use super::ingest::Noc;
use super::state::Sensor;
use super::url::encode;
use crate::report::page::utc;
use crate::report::svg::{esc, num};
use crate::track::event::Ts;
use std::fmt::Write;

pub const CSS: &str = "body{font:14px system-ui,sans-serif;margin:16px;color:#222}table{border-collapse:collapse}th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}th{background:#f3f3f3}.offline td{background:#fde7e7}.state-online{color:#1b7f2a;font-weight:600}.state-offline,.state-config_error{color:#b00020;font-weight:600}.warning{color:#8a5a00}ul{margin:0;padding-left:16px}.bad{color:#b00020;font-weight:600}small{color:#666}";

/// "online since …" in words and UTC.
pub fn since(s: &Sensor, now: u64) -> String {
    let ago = now.saturating_sub(s.since);
    let words = match ago {
        0..=59 => format!("{ago} s"),
        60..=3599 => format!("{} min", ago / 60),
        3600..=86_399 => format!("{} h {} min", ago / 3600, ago / 60 % 60),
        _ => format!("{} d", ago / 86_400),
    };
    let at = utc(Ts(s.since * 1_000_000));
    format!("{words} <small>(since {} UTC)</small>", &at[..19])
}

pub fn state_word(s: &Sensor) -> &'static str {
    match s.state {
        Some(crate::publish::payload::State::Online) => "online",
        Some(crate::publish::payload::State::Offline) => "offline",
        Some(crate::publish::payload::State::ConfigError) => "config_error",
        None => "unknown",
    }
}

pub fn pct(v: Option<f64>, dp: usize) -> String {
    v.map_or("–".into(), |v| format!("{} %", num(v, dp)))
}

pub fn page(noc: &Noc, now: u64) -> String {
    let mut sensors: Vec<&Sensor> = noc.sensors().collect();
    sensors.sort_by_cached_key(|s| (s.badness(), s.site.clone(), s.sensor.clone()));
    let online = sensors.iter().filter(|s| s.online()).count();
    let mut h = String::with_capacity(4096 + sensors.len() * 512);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='10'><title>voipsensor fleet</title><style>{CSS}</style></head><body><h1>voipsensor fleet</h1><p id='summary'>{online} of {} sensors online</p><table id='fleet'><thead><tr><th>site</th><th>sensor</th><th>status</th><th>calls now</th><th>ASR (1 h)</th><th>MOS (1 h)</th><th>loss (1 h)</th><th>warnings</th></tr></thead><tbody>",
        sensors.len()
    );
    for s in sensors {
        let hour = s.hour();
        let warnings = s.active_warnings();
        let st = state_word(s);
        let _ = write!(
            h,
            "<tr class='sensor {cls}' data-site='{site}' data-sensor='{sensor}' data-state='{st}' data-calls-now='{now_calls}' data-attempted='{att}'><td><a href='/site/{site_url}'>{site}</a></td><td>{sensor}</td><td><span class='state-{st}'>{st}</span> {since}</td><td>{now_calls}</td><td>{asr}</td><td>{mos}</td><td>{loss}</td><td><ul>",
            cls = if s.online() { "online" } else { "offline" },
            site = esc(&s.site),
            site_url = encode(&s.site),
            sensor = esc(&s.sensor),
            since = since(s, now),
            now_calls = s.calls_now,
            att = hour.attempted,
            asr = pct(hour.asr.map(|a| a * 100.0), 1),
            mos = hour.mos.map_or("–".into(), |m| num(m, 2)),
            loss = pct(hour.loss_pct, 2),
        );
        for w in &warnings {
            let _ = write!(
                h,
                "<li class='warning' data-code='{}' title='{}'>{}</li>",
                esc(&w.code),
                esc(&w.message),
                esc(&w.message)
            );
        }
        h.push_str("</ul></td></tr>");
    }
    h.push_str(
        "</tbody></table><p><small><a href='/metrics'>/metrics</a></small></p></body></html>",
    );
    h
}
