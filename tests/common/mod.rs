//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod broker;
pub mod chromium;
pub mod netns;
pub mod skip;
pub mod tls;
pub mod tshark;
#[allow(unused_imports)]
pub use skip::{need, need_root, need_tool, skip};

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use voipsensor::capture::file::CaptureFile;
use voipsensor::track::counters::Counters;
use voipsensor::track::event::{CallEvent, CallEventKind, Event, StreamEnd, Ts, fill};
use voipsensor::track::tracker::{Tracker, TrackerConfig};

/// `../shared/pcaps`, or `None` after a visible [`skip`] (a failure under `CI`) when this
/// checkout has no shared folder.
#[track_caller]
pub fn shared_pcaps() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    need(
        p.is_dir(),
        &format!(
            "{} is absent (third-party captures are not shipped)",
            p.display()
        ),
    )
    .then_some(p)
}

/// One capture in `../shared/pcaps`, or `None` after a visible [`skip`].
#[track_caller]
pub fn shared(name: &str) -> Option<PathBuf> {
    let p = shared_pcaps()?.join(name);
    need(p.is_file(), &format!("{} is absent", p.display())).then_some(p)
}

/// Call `i`'s `kind` event from 10.0.0.1 (`+3314000<i>`) to 10.0.0.2 (`+33140009999`),
/// `i × ts_step_us` after a fixed start, no figures: a test sets those it publishes.
pub fn call_event(i: u32, kind: CallEventKind, ts_step_us: u64) -> CallEvent {
    let mut c = CallEvent::new(
        Ts(1_700_000_000_000_000 + u64::from(i) * ts_step_us),
        kind,
        "10.0.0.1:5060".parse().unwrap(),
        "10.0.0.2:5060".parse().unwrap(),
    );
    fill(&mut c.call_id, &format!("call-{i}@10.0.0.1"));
    fill(&mut c.caller, &format!("+3314000{i:04}"));
    fill(&mut c.callee, "+33140009999");
    c
}

/// Every line of `r` (a child's stdout or stderr), gathered as it comes by a thread of its own.
pub fn lines_of(r: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            l.lock().unwrap().push(line);
        }
    });
    lines
}

/// Runs a capture through a tracker with the default configuration.
pub fn replay(path: &Path) -> (Vec<Event>, Counters) {
    replay_with(path, TrackerConfig::default())
}

pub fn replay_with(path: &Path, cfg: TrackerConfig) -> (Vec<Event>, Counters) {
    let mut cap = CaptureFile::open(path).expect("open capture");
    let link = cap.link();
    let mut t = Tracker::new(cfg);
    let mut events = Vec::new();
    while let Some(f) = cap.next_frame().expect("read capture") {
        t.on_frame(f.ts, link, f.data, &mut events);
    }
    t.finish("end_of_capture", &mut events);
    (events, t.counters())
}

pub fn calls(events: &[Event]) -> Vec<&CallEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Call(c) => Some(c),
            _ => None,
        })
        .collect()
}

pub fn calls_of(events: &[Event], kind: CallEventKind) -> Vec<&CallEvent> {
    calls(events)
        .into_iter()
        .filter(|c| c.event == kind)
        .collect()
}

/// The `stream_end` events, in order.
pub fn stream_ends(events: &[Event]) -> Vec<&StreamEnd> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StreamEnd(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Final event of each call, in order of appearance.
pub fn finals(events: &[Event]) -> Vec<&CallEvent> {
    calls(events)
        .into_iter()
        .filter(|c| c.event.is_final())
        .collect()
}

/// Feeds a fixture builder's frames (Ethernet) to a tracker, then ends the capture.
pub fn run_frames(b: &voipsensor::fixture::Builder, cfg: TrackerConfig) -> (Vec<Event>, Counters) {
    let mut t = Tracker::new(cfg);
    let mut events = Vec::new();
    for (ts, f) in b.frames() {
        t.on_frame(
            embassy_time::Instant::from_micros(ts),
            voipsensor::wire::LinkType::Ethernet,
            f,
            &mut events,
        );
    }
    t.finish("end_of_capture", &mut events);
    (events, t.counters())
}
