//! `voipsensor report CAPTURE -o report.html`: the call report (SIP ladder, per-second
//! quality charts, summary counters) as one self-contained HTML file.

use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use voipsensor::config;
use voipsensor::publish::privacy::Privacy;
use voipsensor::report::{self, Options, page};
use voipsensor::track::event::Ts;

#[derive(clap::Args)]
pub struct Args {
    /// Capture file (pcap or pcapng).
    pub file: PathBuf,
    /// Output HTML file.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Only the call with this Call-ID.
    #[arg(long)]
    pub call: Option<String>,
    /// Only calls still active at or after this time (Unix seconds, or +SECONDS from the
    /// capture's first packet).
    #[arg(long)]
    pub from: Option<String>,
    /// Only calls that began at or before this time (same forms as --from).
    #[arg(long)]
    pub to: Option<String>,
    /// Sensor configuration: tracker capacities and the privacy mode (mask / hash).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `1700000000.5` (Unix seconds) or `+30` (seconds after `start`).
fn parse_time(s: &str, start: Option<Ts>) -> Result<Ts> {
    let (rel, v) = match s.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let secs: f64 = v
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && *x >= 0.0)
        .with_context(|| format!("{s:?}: expected Unix seconds or +SECONDS"))?;
    let us = (secs * 1e6).round() as u64;
    Ok(if rel {
        Ts(start.map(|t| t.0).unwrap_or(0) + us)
    } else {
        Ts(us)
    })
}

/// The first packet's time (for `+SECONDS`).
fn first_ts(file: &std::path::Path) -> Result<Option<Ts>> {
    let mut cap = voipsensor::capture::file::CaptureFile::open(file)?;
    Ok(cap.next_frame()?.map(|f| Ts::from_instant(f.ts)))
}

pub fn run(a: Args) -> Result<ExitCode> {
    let conf = a.config.as_deref().map(config::load).transpose()?;
    let cfg = conf
        .as_ref()
        .map(|c| c.tracker.tracker_config())
        .unwrap_or_default();
    let privacy = conf
        .as_ref()
        .map(|c| c.privacy.rule())
        .unwrap_or_else(Privacy::none);
    let start = if [&a.from, &a.to]
        .iter()
        .any(|t| t.as_deref().is_some_and(|t| t.starts_with('+')))
    {
        first_ts(&a.file)?
    } else {
        None
    };
    let opts = Options {
        call: a.call.clone(),
        from: a
            .from
            .as_deref()
            .map(|t| parse_time(t, start))
            .transpose()?,
        to: a.to.as_deref().map(|t| parse_time(t, start)).transpose()?,
        privacy,
    };
    let tty = std::io::stderr().is_terminal();
    let bar = |what: &str, done: u64, total: u64| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let fill = (pct / 4) as usize;
        eprint!(
            "\r{what:<9} [{}{}] {pct:3}%",
            "#".repeat(fill),
            " ".repeat(25 - fill.min(25))
        );
    };
    let mut last_pct = u64::MAX;
    let r = report::from_file(&a.file, cfg, &opts, |done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if tty && pct != last_pct {
            last_pct = pct;
            bar("reading", done, total);
        }
    })
    .with_context(|| a.file.display().to_string())?;
    if tty {
        eprintln!();
    }
    let n = r.calls.len() as u64;
    let html = page::render_with(&r, |i| {
        if tty && (i as u64 == n || i % 50 == 0) {
            bar("rendering", i as u64, n);
        }
    });
    if tty && n > 0 {
        eprintln!();
    }
    std::fs::write(&a.out, html).with_context(|| a.out.display().to_string())?;
    eprintln!(
        "{}: {} calls, {} SIP messages",
        a.out.display(),
        r.calls.len(),
        r.calls.iter().map(|c| c.seen).sum::<u64>()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds_or_offsets_from_the_first_packet() {
        assert_eq!(
            parse_time("1700000000.5", None).unwrap(),
            Ts(1_700_000_000_500_000)
        );
        assert_eq!(
            parse_time("+30", Some(Ts(1_000_000))).unwrap(),
            Ts(31_000_000)
        );
        assert!(parse_time("yesterday", None).is_err());
    }
}
