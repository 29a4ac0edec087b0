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

#[test]
fn timestamps_jumping_back_and_far_forward_never_panic_and_keep_durations_sane() {
    use voipsensor::fixture::{CallSpec, add_call};
    use voipsensor::track::event::{CallEventKind, Event};
    let mut b = Builder::new();
    for i in 0..3u64 {
        let spec = CallSpec::new(
            &format!("jump-{i}"),
            format!("10.3.0.{}:5060", 1 + i).parse().unwrap(),
            format!("10.4.0.{}:5060", 1 + i).parse().unwrap(),
            1_000_000 + i * 3_000_000,
        );
        add_call(&mut b, &spec);
    }
    let frames = b.frames();
    let mut t = Tracker::new(TrackerConfig::default());
    let mut events: Vec<Event> = Vec::new();
    let n = frames.len();
    for (i, (ts, f)) in frames.iter().enumerate() {
        // A third of the way: a frame stamped at 0 (a clock stepped back); two thirds of
        // the way: everything after jumps ~146,000 years ahead (a garbage timestamp).
        let ts = match i {
            _ if i == n / 3 => 0,
            _ if i >= 2 * n / 3 => ts + (u64::MAX >> 2),
            _ => *ts,
        };
        t.on_frame(
            embassy_time::Instant::from_micros(ts),
            LinkType::Ethernet,
            f,
            &mut events,
        );
    }
    t.finish("end_of_capture", &mut events);
    let c = t.counters();
    assert!(c.time_went_backwards >= 1);
    let finals: Vec<_> = common::finals(&events);
    assert_eq!(finals.len(), 3, "every call has one final event");
    for ev in &finals {
        // Before the jump the calls' durations are seconds; the jump ends the calls still
        // open by timeout (their durations then span the jump, saturated, never wrapped).
        if let Some(ms) = ev.setup_ms {
            assert!(ms < 10_000, "{ev:?}");
        }
        assert!(ev.pdd_ms.is_none_or(|ms| ms < 10_000), "{ev:?}");
        if ev.event == CallEventKind::Timeout {
            assert!(ev.duration_ms.is_some_and(|d| d > 1_000_000_000), "{ev:?}");
        }
    }
}
