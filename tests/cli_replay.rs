//! `voipsensor replay` as a user runs it: deterministic output, clear errors.

mod common;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voipsensor"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("voipsensor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// The demo capture, written once per test process: tests run in parallel, and one must
/// never read the file while another is still writing it.
fn demo() -> std::path::PathBuf {
    static DEMO: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let p = tmp("demo.pcap");
        let st = bin().arg("fixture").arg(&p).status().unwrap();
        assert!(st.success());
        p
    })
    .clone()
}

#[test]
fn replaying_the_same_capture_twice_gives_identical_bytes() {
    let mut inputs = vec![demo()];
    if let Some(p) = common::shared("fax_call_t38_reinvite_dtmf.pcap") {
        inputs.push(p);
    }
    if let Some(p) = common::shared("sip_tcp6060_segmented_70calls.pcap") {
        inputs.push(p);
    }
    for p in inputs {
        let a = bin().arg("replay").arg(&p).output().unwrap();
        let b = bin().arg("replay").arg(&p).output().unwrap();
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        assert!(a.stdout.len() > 100);
        assert_eq!(a.stdout, b.stdout, "{} differs between runs", p.display());
    }
}

#[test]
fn every_line_is_json_with_a_type_and_the_last_is_the_summary() {
    let out = bin().arg("replay").arg(demo()).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert!(lines.iter().all(|v| v["type"].is_string()));
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert!(last["frames"].as_u64().unwrap() > 1000);
    let calls: Vec<_> = lines.iter().filter(|v| v["type"] == "call").collect();
    assert!(
        calls
            .iter()
            .all(|c| c["event"].is_string() && c["call_id"].is_string() && c["ts"].is_f64())
    );
    for ev in [
        "invite",
        "ringing",
        "early_media",
        "answered",
        "hold",
        "resume",
        "ended",
        "failed",
        "cancelled",
    ] {
        assert!(
            calls.iter().any(|c| c["event"] == ev),
            "no {ev} in the demo"
        );
    }
    let summary_only = bin()
        .arg("replay")
        .arg(demo())
        .arg("--summary")
        .output()
        .unwrap();
    let s = String::from_utf8(summary_only.stdout).unwrap();
    assert_eq!(s.lines().count(), 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&s).unwrap(),
        *last
    );
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let out = bin()
        .args(["replay", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/x.pcap"), "{err}");
}

#[test]
fn a_file_that_is_not_a_capture_is_a_one_line_error() {
    let p = tmp("not-a-capture.pcap");
    std::fs::write(&p, b"this is a text file, not a capture\n").unwrap();
    let out = bin().arg("replay").arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("not a readable pcap"), "{err}");
}

#[test]
fn a_truncated_capture_reports_what_it_read_then_fails() {
    let full = std::fs::read(demo()).unwrap();
    let p = tmp("truncated.pcap");
    std::fs::write(&p, &full[..full.len() / 2 + 7]).unwrap();
    let out = bin().arg("replay").arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("truncated"), "{err}");
    // What was read is not lost: events and the summary are printed.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("\"type\":\"summary\"")
    );
}

#[test]
fn garbage_frames_inside_a_capture_are_counted_not_fatal() {
    let mut b = voipsensor::fixture::Builder::new();
    b.raw_frame(1_000_000, vec![0xff; 7]); // shorter than an Ethernet header
    b.raw_frame(1_000_100, {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0x00, 0xff, 0xff]); // IPv4 claiming 64 KiB
        f
    });
    let p = tmp("garbage.pcap");
    b.write_pcap(&p).unwrap();
    let out = bin()
        .arg("replay")
        .arg(&p)
        .arg("--summary")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 2);
    let w = &v["wire"];
    assert_eq!(
        w["truncated"].as_u64().unwrap() + w["malformed"].as_u64().unwrap(),
        2,
        "{w}"
    );
}
