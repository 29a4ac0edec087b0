//! `voipsensor report`: one self-contained HTML file per capture — a call list, per call a
//! SIP ladder and per-second quality charts per media direction, the summary counters.
//!
//! The figures are the tracker's own events (the ones `replay` prints); the messages come
//! from the report's own bounded log (`messages.rs`), which runs frames through the public
//! decoder and SIP parser beside the tracker. Nothing here touches the sensor's hot path.
//!
//! `messages.rs` → `ladder.rs` (layout, SVG) and `chart.rs` (SVG) → `page.rs` (HTML).

pub mod call;
pub mod chart;
pub mod ladder;
pub mod messages;
pub mod page;
pub mod svg;

pub use call::{CallData, Stream};

use crate::publish::privacy::Privacy;
use crate::track::counters::Counters;
use crate::track::event::{Event, EventSink, Ts};
use crate::track::tracker::{Tracker, TrackerConfig};
use crate::wire::LinkType;
use embassy_time::Instant;
use messages::{LogCounters, Logged, SipLog};
use std::collections::HashMap;

/// What to put in the report.
pub struct Options {
    /// Only this Call-ID (as on the wire).
    pub call: Option<String>,
    /// Only calls active at or after / before these times.
    pub from: Option<Ts>,
    pub to: Option<Ts>,
    /// The config's privacy rule, applied to Call-IDs and users in events and messages.
    pub privacy: Privacy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            call: None,
            from: None,
            to: None,
            privacy: Privacy::none(),
        }
    }
}

/// One call of the report: the tracker's events and the messages of its Call-ID.
#[derive(Debug, Default)]
pub struct CallReport {
    pub call_id: String,
    pub data: CallData,
    pub messages: Vec<Logged>,
    /// Messages seen with this Call-ID (more than `messages` when the log was full).
    pub seen: u64,
}

/// Everything the page shows.
#[derive(Debug, Default)]
pub struct Report {
    /// Title line: the capture's name.
    pub title: String,
    pub calls: Vec<CallReport>,
    /// RTP no SDP linked to a call (heuristic streams).
    pub unlinked: CallData,
    pub counters: Counters,
    pub log: LogCounters,
}

/// Sorts events into calls as the tracker emits them.
#[derive(Default)]
struct Collector {
    index: HashMap<String, usize>,
    calls: Vec<(String, CallData)>,
    unlinked: CallData,
}

impl Collector {
    fn slot(&mut self, id: Option<&str>) -> &mut CallData {
        let Some(id) = id else {
            return &mut self.unlinked;
        };
        let i = match self.index.get(id) {
            Some(&i) => i,
            None => {
                self.calls.push((id.to_string(), CallData::default()));
                self.index.insert(id.to_string(), self.calls.len() - 1);
                self.calls.len() - 1
            }
        };
        &mut self.calls[i].1
    }
}

impl EventSink for Collector {
    fn emit(&mut self, ev: &Event) {
        let id = match ev {
            Event::Call(c) => Some(c.call_id.as_str()),
            Event::RtpInterval(e) => e.call_id.as_deref(),
            Event::StreamEnd(e) => e.call_id.as_deref(),
            Event::Dtmf(e) => e.call_id.as_deref(),
            Event::MediaHealth(e) => e.call_id.as_deref(),
        };
        self.slot(id).push(ev);
    }
}

/// Builds a report frame by frame: the tracker and the message log side by side.
pub struct Builder {
    tracker: Tracker,
    log: SipLog,
    events: Collector,
}

impl Builder {
    pub fn new(cfg: TrackerConfig) -> Builder {
        Builder {
            tracker: Tracker::new(cfg),
            log: SipLog::new(),
            events: Collector::default(),
        }
    }

    pub fn on_frame(&mut self, ts: Instant, link: LinkType, frame: &[u8]) {
        self.tracker.on_frame(ts, link, frame, &mut self.events);
        self.log.on_frame(ts, link, frame);
    }

    /// Ends the capture and selects what `opts` asks for.
    pub fn finish(mut self, title: &str, opts: &Options) -> Report {
        self.tracker.finish("end_of_capture", &mut self.events);
        let mut calls = Vec::new();
        for (id, data) in self.events.calls {
            if opts.call.as_ref().is_some_and(|c| *c != id) || data.calls.is_empty() {
                continue;
            }
            let (messages, seen) = match self.log.take(&id) {
                Some(l) => (l.messages, l.seen),
                None => (Vec::new(), 0),
            };
            let mut c = CallReport {
                call_id: id,
                data,
                messages,
                seen,
            };
            if !c.active_within(opts.from, opts.to) {
                continue;
            }
            c.apply_privacy(&opts.privacy);
            calls.push(c);
        }
        let mut unlinked = self.events.unlinked;
        if opts.call.is_some() {
            unlinked = CallData::default();
        }
        unlinked.retain_within(opts.from, opts.to);
        Report {
            title: title.to_string(),
            calls,
            unlinked,
            counters: self.tracker.counters(),
            log: self.log.counters,
        }
    }
}

impl CallReport {
    /// First and last packet time of the call (messages and events).
    pub fn span(&self) -> (Ts, Ts) {
        let (mut lo, mut hi) = self.data.span();
        for m in [self.messages.first(), self.messages.last()]
            .into_iter()
            .flatten()
        {
            lo = lo.min(m.ts);
            hi = hi.max(m.ts);
        }
        (lo, hi)
    }

    fn active_within(&self, from: Option<Ts>, to: Option<Ts>) -> bool {
        let (lo, hi) = self.span();
        from.is_none_or(|f| hi >= f) && to.is_none_or(|t| lo <= t)
    }

    /// The privacy rule on the events and on the message text: each identifier the events
    /// carry (Call-ID, caller, callee) is replaced wherever it appears.
    fn apply_privacy(&mut self, p: &Privacy) {
        if p.is_none() {
            return;
        }
        let mut ids: Vec<String> = vec![self.call_id.clone()];
        for c in &self.data.calls {
            ids.push(c.caller.to_string());
            ids.push(c.callee.to_string());
        }
        ids.retain(|s| s.len() >= 3);
        ids.sort_by_key(|s| std::cmp::Reverse(s.len()));
        ids.dedup();
        let pairs: Vec<(String, String)> = ids
            .into_iter()
            .map(|s| (p.apply_str(&s), s))
            .map(|(a, b)| (b, a))
            .collect();
        for m in &mut self.messages {
            for (from, to) in &pairs {
                m.text = m.text.replace(from.as_str(), to);
                m.label = m.label.replace(from.as_str(), to);
            }
        }
        self.call_id = p.apply_str(&self.call_id);
        self.data.apply_privacy(p);
    }
}

/// Reads a whole capture file into a report, calling `progress(read, total)` now and then.
pub fn from_file(
    path: &std::path::Path,
    cfg: TrackerConfig,
    opts: &Options,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<Report> {
    let mut cap = crate::capture::file::CaptureFile::open(path)?;
    let link = cap.link();
    let mut b = Builder::new(cfg);
    let mut n = 0u64;
    while let Some(f) = cap.next_frame()? {
        b.on_frame(f.ts, link, f.data);
        n += 1;
        if n.is_multiple_of(16384) {
            progress(cap.read_bytes, cap.total_bytes);
        }
    }
    progress(cap.total_bytes, cap.total_bytes);
    let title = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(b.finish(&title, opts))
}
