//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod broker;
pub mod chromium;
pub mod skip;
pub mod tshark;
#[allow(unused_imports)]
pub use skip::{need, need_root, need_tool, skip};

use std::path::{Path, PathBuf};
use voipsensor::capture::file::CaptureFile;
use voipsensor::track::counters::Counters;
use voipsensor::track::event::{CallEvent, CallEventKind, Event};
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
