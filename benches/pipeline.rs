//! Throughput of the whole sans-IO pipeline on one core: frames already in memory →
//! decode → SIP/RTP tracking → events (counted, not printed).
//!
//! `cargo bench --bench pipeline` (release build; run on an idle machine). Without
//! `--bench` (as `cargo test --all-targets` runs it) it does one tiny pass as a smoke test.
//! Figures go to stdout; the README quotes them.

use std::time::Instant as Wall;
use voipsensor::capture::file::CaptureFile;
use voipsensor::fixture::{self, LoadSpec};
use voipsensor::track::event::CountingSink;
use voipsensor::track::tracker::{Tracker, TrackerConfig};

fn load(calls: u32, seconds: u32) -> (Vec<(u64, Vec<u8>)>, voipsensor::wire::LinkType) {
    let path = std::env::temp_dir().join(format!(
        "voipsensor-bench-{}-{calls}x{seconds}.pcap",
        std::process::id()
    ));
    fixture::write_load(
        &path,
        &LoadSpec {
            calls,
            seconds,
            call_seconds: Some(30),
            seed: 1,
        },
    )
    .expect("fixture");
    let mut cap = CaptureFile::open(&path).expect("open");
    let link = cap.link();
    let mut frames = Vec::new();
    while let Some(f) = cap.next_frame().expect("read") {
        frames.push((f.ts.as_micros(), f.data.to_vec()));
    }
    std::fs::remove_file(&path).ok();
    (frames, link)
}

fn run(frames: &[(u64, Vec<u8>)], link: voipsensor::wire::LinkType) -> (f64, u64) {
    let mut t = Tracker::new(TrackerConfig::default());
    let mut sink = CountingSink::default();
    let start = Wall::now();
    for (ts, f) in frames {
        t.on_frame(
            embassy_time::Instant::from_micros(*ts),
            link,
            std::hint::black_box(f),
            &mut sink,
        );
    }
    t.finish("end_of_capture", &mut sink);
    (start.elapsed().as_secs_f64(), sink.0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (calls, seconds, rounds) = if bench { (200, 120, 7) } else { (4, 3, 1) };
    let (frames, link) = load(calls, seconds);
    let mut rates: Vec<f64> = Vec::new();
    let mut events = 0;
    for _ in 0..rounds {
        let (secs, ev) = run(&frames, link);
        events = ev;
        rates.push(frames.len() as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "pipeline: {} frames ({calls} concurrent calls with RTP both ways, {seconds} s), {events} events; \
         median of {rounds}: {:.2} M frames/s on one core (min {:.2}, max {:.2})",
        frames.len(),
        median / 1e6,
        rates[0] / 1e6,
        rates[rates.len() - 1] / 1e6
    );
}
