//! A SPAN session that delivers every frame twice: the copies are dropped before decoding
//! (same events and figures as the clean capture), counted, and named by the mirror
//! diagnostic; with `--keep-duplicates` the figures are tshark's on the doubled capture.

mod common;
use common::tshark::{Row, close, parse_row};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use voipsensor::fixture::{
    Builder, CallSpec, Impairments, RtpStreamSpec, add_call, add_rtp_stream, write_doubled,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("voipsensor-mirror-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

struct Replay {
    lines: Vec<serde_json::Value>,
    stderr: String,
}

impl Replay {
    /// Every line but the summary, as text: what must not change.
    fn events(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|v| v["type"] != "summary")
            .map(|v| v.to_string())
            .collect()
    }
    fn summary(&self) -> &serde_json::Value {
        self.lines.last().unwrap()
    }
    fn stream_ends(&self) -> Vec<&serde_json::Value> {
        self.lines
            .iter()
            .filter(|v| v["type"] == "stream_end")
            .collect()
    }
}

fn replay(p: &Path, extra: &[&str]) -> Replay {
    let out = Command::new(env!("CARGO_BIN_EXE_voipsensor"))
        .arg("replay")
        .arg(p)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Replay {
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A signalled call and an RTP stream no SDP announced (found by the heuristic only).
fn fixture() -> Builder {
    let mut b = Builder::new();
    add_call(
        &mut b,
        &CallSpec::new(
            "mirror-dup@fixture",
            addr("10.1.0.1:5060"),
            addr("10.1.0.2:5060"),
            1_700_000_000_000_000,
        ),
    );
    let s = RtpStreamSpec::new(
        addr("10.1.0.7:30000"),
        addr("10.1.0.8:30002"),
        0x0bad_cafe,
        8,
        1_700_000_001_000_000,
        200,
        20,
    );
    add_rtp_stream(&mut b, &s, &Impairments::none());
    b
}

fn assert_same_as_clean(clean: &Replay, doubled: &Replay, frames: u64) {
    assert_eq!(clean.events(), doubled.events());
    // A real capture may hold a few copies of its own (sip_call_rtp_g711.pcap: one ARP
    // request 26 µs apart): every frame's copy comes on top of them.
    let own = clean.summary()["mirror_duplicates"].as_u64().unwrap();
    assert!(own * 100 < frames, "{own} copies in the clean capture");
    assert_eq!(doubled.summary()["mirror_duplicates"], frames + own);
    assert_eq!(doubled.summary()["frames"], clean.summary()["frames"]);
    assert!(
        doubled.stderr.contains("every frame arrives twice")
            && doubled
                .stderr
                .contains("both directions of two ports, or the same VLAN twice"),
        "no mirror diagnostic: {}",
        doubled.stderr
    );
    assert!(!clean.stderr.contains("every frame arrives twice"));
}

#[test]
fn every_frame_twice_gives_the_clean_capture_s_events_and_the_diagnostic() {
    let b = fixture();
    let frames = b.len() as u64;
    let (clean_p, doubled_p) = (tmp("fixture_clean.pcap"), tmp("fixture_doubled.pcap"));
    b.write_pcap(&clean_p).unwrap();
    let mut d = b.clone();
    d.mirror_twice(4);
    d.write_pcap(&doubled_p).unwrap();
    let clean = replay(&clean_p, &[]);
    let doubled = replay(&doubled_p, &[]);
    assert_same_as_clean(&clean, &doubled, frames);
    // The unsignalled stream is found either way, and so with repeats kept too.
    let kept = replay(&doubled_p, &["--keep-duplicates"]);
    for r in [&clean, &doubled, &kept] {
        let heur = r
            .stream_ends()
            .into_iter()
            .filter(|s| s["ssrc"] == 0x0bad_cafe_u32)
            .count();
        assert_eq!(heur, 1, "heuristic stream not found");
    }
}

#[test]
fn a_shared_capture_doubled_at_test_time_gives_the_same_events() {
    let Some(src) = common::shared("sip_call_rtp_g711.pcap") else {
        return;
    };
    let doubled_p = tmp("g711_doubled.pcap");
    let frames = write_doubled(&src, &doubled_p, 3).unwrap();
    let clean = replay(&src, &[]);
    let doubled = replay(&doubled_p, &[]);
    assert_same_as_clean(&clean, &doubled, frames);
}

/// tshark's `rtp,streams` ([B], heuristics on) of a file.
fn tshark_streams(p: &Path) -> Vec<Row> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(p)
        .args([
            "-o",
            "rtp.heuristic_rtp:TRUE",
            "-o",
            "rtcp.heuristic_rtcp:TRUE",
            "-q",
            "-z",
            "rtp,streams",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_row)
        .collect()
}

fn check_kept_against_tshark(p: &Path) {
    let kept = replay(p, &["--keep-duplicates"]);
    assert!(kept.summary()["mirror_duplicates"].as_u64().unwrap() > 0);
    let rows = tshark_streams(p);
    let ends = kept.stream_ends();
    assert_eq!(
        ends.len(),
        rows.len(),
        "streams: ours {ends:?}, tshark {rows:?}"
    );
    for s in ends {
        let (src, dst): (SocketAddr, SocketAddr) = (
            s["src"].as_str().unwrap().parse().unwrap(),
            s["dst"].as_str().unwrap().parse().unwrap(),
        );
        let ssrc = s["ssrc"].as_u64().unwrap() as u32;
        let r = rows
            .iter()
            .find(|r| (r.src, r.dst, r.ssrc) == (src, dst, ssrc))
            .unwrap_or_else(|| panic!("{s} not in tshark's table {rows:?}"));
        let f = |k: &str| s[k].as_f64().unwrap();
        eprintln!(
            "{ssrc:08X}: pkts {}/{} lost {}/{} jmax {}/{} jmean {}/{} dmax {}/{}",
            s["packets"],
            r.packets,
            s["lost"],
            r.lost,
            f("jitter_max_ms"),
            r.jitter_max,
            f("jitter_mean_ms"),
            r.jitter_mean,
            f("delta_max_ms"),
            r.delta_max
        );
        assert_eq!(
            (s["packets"].as_u64().unwrap(), s["lost"].as_i64().unwrap()),
            (r.packets, r.lost),
            "{s}"
        );
        assert!(close(f("jitter_max_ms"), r.jitter_max), "{s} max jitter");
        assert!(close(f("jitter_mean_ms"), r.jitter_mean), "{s} mean jitter");
        assert!(
            (f("delta_max_ms") - r.delta_max).abs() <= 0.01,
            "{s} max delta"
        );
    }
}

#[test]
fn with_keep_duplicates_the_doubled_fixture_s_figures_are_tshark_s() {
    if !common::need_tool("tshark", "tshark") {
        return;
    }
    let mut d = fixture();
    d.mirror_twice(4);
    let p = tmp("fixture_doubled_kept.pcap");
    d.write_pcap(&p).unwrap();
    check_kept_against_tshark(&p);
}

#[test]
fn with_keep_duplicates_the_doubled_shared_capture_s_figures_are_tshark_s() {
    let Some(src) = common::shared("sip_call_rtp_g711.pcap") else {
        return;
    };
    if !common::need_tool("tshark", "tshark") {
        return;
    }
    let p = tmp("g711_doubled_kept.pcap");
    write_doubled(&src, &p, 3).unwrap();
    check_kept_against_tshark(&p);
}
