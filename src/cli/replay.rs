//! `voipsensor replay FILE`: a capture file through the tracker, events out as JSON lines
//! (stdout) or published to MQTT with the same publisher as the live sensor.

use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant as WallClock;
use voipsensor::capture::file::CaptureFile;
use voipsensor::publish::json;
use voipsensor::track::counters::Counters;
use voipsensor::track::event::{Event, EventSink};
use voipsensor::track::tracker::{Tracker, TrackerConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Capture file (pcap or pcapng).
    pub file: PathBuf,
    /// Print only the final summary line.
    #[arg(long)]
    pub summary: bool,
    /// Do not look for RTP that no SDP announced.
    #[arg(long)]
    pub no_rtp_heuristic: bool,
}

/// Writes each event as one JSON line.
pub struct JsonLines<W: Write> {
    pub out: W,
    pub quiet: bool,
    pub error: Option<std::io::Error>,
}

impl<W: Write> EventSink for JsonLines<W> {
    fn emit(&mut self, ev: &Event) {
        if self.quiet || self.error.is_some() {
            return;
        }
        if let Err(e) = writeln!(self.out, "{}", json::to_line(ev)) {
            self.error = Some(e);
        }
    }
}

/// The `summary` line: `{"type":"summary", ...every counter}`.
pub fn summary_line(c: &Counters) -> String {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), "summary".into());
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(c) {
        m.extend(fields);
    }
    serde_json::Value::Object(m).to_string()
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut cap = CaptureFile::open(&args.file)?;
    let mut cfg = TrackerConfig::default();
    cfg.media.heuristic = !args.no_rtp_heuristic;
    let mut tracker = Tracker::new(cfg);
    let stdout = std::io::stdout().lock();
    let mut sink = JsonLines {
        out: std::io::BufWriter::with_capacity(1 << 16, stdout),
        quiet: args.summary,
        error: None,
    };
    let link = cap.link();
    let progress = std::io::stderr().is_terminal() && cap.total_bytes > 20 << 20;
    let started = WallClock::now();
    let mut last_report = started;
    let mut frames = 0u64;
    let mut failure = None;
    loop {
        match cap.next_frame() {
            Ok(Some(f)) => tracker.on_frame(f.ts, link, f.data, &mut sink),
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        frames += 1;
        if progress && frames % 65536 == 0 && last_report.elapsed().as_millis() >= 500 {
            last_report = WallClock::now();
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\r{:5.1}%  {} / {} MB  {:.0} packets/s ",
                cap.read_bytes as f64 * 100.0 / cap.total_bytes as f64,
                cap.read_bytes >> 20,
                cap.total_bytes >> 20,
                frames as f64 / secs
            );
        }
        if sink.error.is_some() {
            break;
        }
    }
    if progress {
        eprintln!();
    }
    tracker.finish("end_of_capture", &mut sink);
    sink.quiet = false;
    let line = summary_line(&tracker.counters());
    if sink.error.is_none() {
        let _ = writeln!(sink.out, "{line}");
    }
    if let Err(e) = sink.out.flush() {
        sink.error.get_or_insert(e);
    }
    if let Some(e) = sink.error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS); // `replay … | head` is fine
        }
        anyhow::bail!("cannot write output: {e}");
    }
    if let Some(e) = failure {
        anyhow::bail!("{}: {e}", args.file.display());
    }
    Ok(ExitCode::SUCCESS)
}
