//! The whole tracker with tiny tables (2 calls, 4 media endpoints, 4 streams, 2 fragment
//! sets, 2 TCP streams of 512 bytes), fed a sequence of frames with time jumps (forward by
//! milliseconds to the end of time, and backward), then finished. Record head: bits 0-2 the
//! link type (7: a timer tick without a frame), bits 3-7 a time step (`voipsensor_fuzz::step`);
//! body: the frame.
#![no_main]

use embassy_time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use voipsensor::track::event::Event;
use voipsensor::track::media::MediaConfig;
use voipsensor::track::tracker::{Tracker, TrackerConfig};
use voipsensor_fuzz::{Records, link, step};

fuzz_target!(|data: &[u8]| {
    let mut t = Tracker::new(TrackerConfig {
        calls: 2,
        fragments: 2,
        fragment_timeout: Duration::from_secs(2),
        tcp_streams: 2,
        tcp_buffer: 512,
        tcp_idle: Duration::from_secs(10),
        media: MediaConfig {
            endpoints: 4,
            streams: 4,
            ..MediaConfig::default()
        },
        ..TrackerConfig::default()
    });
    let mut out: Vec<Event> = Vec::new();
    let mut now = 0;
    for (head, frame) in Records(data) {
        now = step(now, head >> 3);
        let ts = Instant::from_micros(now);
        match head & 7 {
            7 => t.tick(ts, &mut out),
            l => t.on_frame(ts, link(l), frame, &mut out),
        }
        out.clear();
    }
    t.finish("end_of_capture", &mut out);
    black_box((out.len(), t.counters()));
});
