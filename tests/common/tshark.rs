//! tshark's `-z rtp,streams` table, the reference for RTP figures.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use voipsensor::track::event::StreamEnd;

#[derive(Debug, Clone)]
pub struct Row {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
    pub packets: u64,
    pub lost: i64,
    pub delta_max: f64,
    pub jitter_mean: f64,
    pub jitter_max: f64,
}

/// Parses one `rtp,streams` row: 7 fixed columns, a payload list that may hold spaces
/// ("g711A, CN, RTPType-100"), then packets, lost, "(pct%)", six figures and a flag.
pub fn parse_row(line: &str) -> Option<Row> {
    let t: Vec<&str> = line.split_whitespace().collect();
    if t.len() < 17 || !t[6].starts_with("0x") {
        return None;
    }
    let mut end = t.len();
    if t[end - 1] == "X" {
        end -= 1;
    }
    let f = |i: usize| t[i].parse::<f64>().ok();
    let addr = |ip: &str, port: &str| format!("{ip}:{port}").parse().ok();
    Some(Row {
        src: addr(t[2], t[3])?,
        dst: addr(t[4], t[5])?,
        ssrc: u32::from_str_radix(t[6].trim_start_matches("0x"), 16).ok()?,
        packets: t[end - 9].parse().ok()?,
        lost: t[end - 8].parse().ok()?,
        delta_max: f(end - 4)?,
        jitter_mean: f(end - 2)?,
        jitter_max: f(end - 1)?,
    })
}

/// Tables [A] (SDP-linked) and [B] (heuristic) of an expected file. The generated
/// captures' files have one table (no heuristics needed: all their RTP is signalled).
/// Within the issue's tolerance: 1 % or 0.01 ms, whichever is larger.
pub fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 0.01_f64.max(theirs.abs() * 0.01)
}

/// `tshark -n -r PCAP EXTRA… -q -z Z…`'s report (`extra`: decode-as or preferences);
/// panics with tshark's stderr when it fails.
#[track_caller]
pub fn stats(pcap: &Path, extra: &[&str], z: &[&str]) -> String {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap).args(extra).arg("-q");
    for s in z {
        cmd.args(["-z", s]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// tshark's `rtp,streams` rows of `pcap`, and its whole report (for failure messages).
#[track_caller]
pub fn streams(pcap: &Path, extra: &[&str]) -> (Vec<Row>, String) {
    let raw = stats(pcap, extra, &["rtp,streams"]);
    (raw.lines().filter_map(parse_row).collect(), raw)
}

/// Whether a stream's mean and max jitter are [`close`] to tshark's and its max delta
/// within 0.01 ms.
pub fn same_timing(s: &StreamEnd, r: &Row) -> bool {
    close(s.jitter_mean_ms, r.jitter_mean)
        && close(s.jitter_max_ms, r.jitter_max)
        && (s.delta_max_ms - r.delta_max).abs() <= 0.01
}

/// Ours/tshark's timing figures, for a failure message.
pub fn timing(s: &StreamEnd, r: &Row) -> String {
    format!(
        "jitter mean {}/{} max {}/{} delta max {}/{}",
        s.jitter_mean_ms, r.jitter_mean, s.jitter_max_ms, r.jitter_max, s.delta_max_ms, r.delta_max
    )
}
