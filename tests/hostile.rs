//! Bad input never crashes the sensor: corrupted and truncated frames are counted and
//! skipped, and the summary still accounts for every frame.

mod common;
use std::process::Command;
use voipsensor::fixture::{Builder, Rng};
use voipsensor::track::event::CountingSink;
use voipsensor::track::tracker::{Tracker, TrackerConfig};
use voipsensor::wire::LinkType;

#[test]
fn randomly_corrupted_and_truncated_frames_never_panic_the_tracker() {
    let mut b = Builder::new();
    voipsensor::fixture::demo(&mut b);
    let frames: Vec<(u64, Vec<u8>)> = b
        .frames()
        .into_iter()
        .map(|(t, f)| (t, f.to_vec()))
        .collect();
    let mut rng = Rng::new(2026);
    let mut t = Tracker::new(TrackerConfig::default());
    let mut sink = CountingSink::default();
    let mut fed = 0u64;
    for round in 0..20u64 {
        for (ts, f) in &frames {
            let mut f = f.clone();
            // Flip a few bytes anywhere (headers included), sometimes cut the frame short.
            for _ in 0..=rng.below(4) {
                let i = rng.below(f.len() as u64) as usize;
                f[i] ^= 1 << rng.below(8);
            }
            if rng.chance(0.2) {
                f.truncate(rng.below(f.len() as u64 + 1) as usize);
            }
            let ts = embassy_time::Instant::from_micros(ts + round * 100_000_000);
            t.on_frame(ts, LinkType::Ethernet, &f, &mut sink);
            fed += 1;
        }
    }
    t.finish("end_of_capture", &mut sink);
    let c = t.counters();
    assert_eq!(c.frames, fed);
    let w = c.wire;
    assert!(
        w.truncated + w.malformed > 0,
        "corruption went unnoticed: {w:?}"
    );
    assert!(
        c.sip.messages > 0 && sink.0 > 0,
        "nothing survived the corruption"
    );
}

#[test]
fn a_capture_corrupted_by_editcap_replays_and_counts_every_frame() {
    if !common::need_tool("editcap", "wireshark-common") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("voipsensor-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clean = dir.join("demo.pcap");
    let bad = dir.join("demo-bad.pcap");
    let mut b = Builder::new();
    voipsensor::fixture::demo(&mut b);
    b.write_pcap(&clean).unwrap();
    // -E: each byte is corrupted with this probability; -s 60 keeps only 60 bytes of most
    // frames for a second file: truncated headers and SIP bodies.
    let st = Command::new("editcap")
        .args(["-E", "0.02", "--seed", "7"])
        .arg(&clean)
        .arg(&bad)
        .status()
        .unwrap();
    assert!(st.success());
    let snapped = dir.join("demo-snap.pcap");
    let st = Command::new("editcap")
        .args(["-s", "60"])
        .arg(&clean)
        .arg(&snapped)
        .status()
        .unwrap();
    assert!(st.success());
    for p in [&bad, &snapped] {
        let out = Command::new(env!("CARGO_BIN_EXE_voipsensor"))
            .arg("replay")
            .arg(p)
            .arg("--summary")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["frames"], 3566, "{v}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
