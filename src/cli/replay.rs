//! `voipsensor replay FILE`: a capture file through the tracker, events out as JSON lines
//! (stdout) or published to MQTT with the same publisher as the live sensor.

use super::exit;
use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant as WallClock;
use voipsensor::capture::dedup::MirrorDuplicates;
use voipsensor::capture::file::CaptureFile;
use voipsensor::capture::health::{IfHealth, IfState};
use voipsensor::config::{self, Config};
use voipsensor::policy::{self, Iface, Policy};
use voipsensor::publish::payload::Format;
use voipsensor::publish::{PublishSettings, Publisher, json};
use voipsensor::track::counters::Counters;
use voipsensor::track::event::{Event, EventSink, Ts};
use voipsensor::track::tracker::Tracker;

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
    /// Sensor configuration (TOML): tracker capacities, MQTT, privacy. Flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Publish to this MQTT broker (mqtt://host:port or mqtts://...) as the live sensor would.
    #[arg(long)]
    pub broker: Option<String>,
    /// Site name in the topic tree (with --broker).
    #[arg(long)]
    pub site: Option<String>,
    /// Sensor id in the topic tree (with --broker).
    #[arg(long)]
    pub sensor: Option<String>,
    /// Payload format on MQTT.
    #[arg(long, value_enum)]
    pub payload: Option<Format>,
    /// Publish paced to packet time at this speed (1 = real time), for tests and demos.
    #[arg(long)]
    pub pace: Option<f64>,
    /// Analyse byte-identical copies of a frame (a SPAN session mirroring it twice) instead
    /// of dropping them (overrides capture.keep_duplicates).
    #[arg(long)]
    pub keep_duplicates: bool,
}

/// Sends each event to stdout, the live policy and, when publishing, to MQTT.
struct Tee<'a, W: Write> {
    lines: JsonLines<W>,
    policy: Policy,
    mqtt: Option<&'a mut Publisher>,
}

impl<W: Write> EventSink for Tee<'_, W> {
    fn emit(&mut self, ev: &Event) {
        self.lines.emit(ev);
        self.policy.on_event(ev);
        if let Some(p) = self.mqtt.as_deref_mut() {
            p.publish(ev);
        }
    }
}

/// The configuration: the file if given, then the command-line overrides, validated
/// together. `None` without a file or a broker: the tracker's defaults.
fn effective_config(args: &Args) -> Result<Option<Config>> {
    let Some(url) = &args.broker else {
        return Ok(match &args.config {
            Some(p) => Some(config::load(p)?),
            None => None,
        });
    };
    let mut no_sensor = false;
    let mut flags = vec![("mqtt.url", "--broker")];
    for (set, key, flag) in [
        (args.site.is_some(), "sensor.site", "--site"),
        (args.sensor.is_some(), "sensor.id", "--sensor"),
    ] {
        if set {
            flags.push((key, flag));
        }
    }
    let cfg = config::load_with_flags(args.config.as_deref(), &flags, |c| {
        c.mqtt.url = url.clone();
        if let Some(s) = &args.site {
            c.sensor.site = s.clone();
        }
        match &args.sensor {
            Some(s) => c.sensor.id = Some(s.clone()),
            None => no_sensor = c.sensor.id.is_none(),
        }
        if let Some(f) = args.payload {
            c.output.payload = f;
        }
    });
    if no_sensor {
        return Err(exit::usage(
            "--broker needs --sensor (or [sensor] id in --config): replay has no capture NIC to derive an id from",
        ));
    }
    Ok(Some(cfg?))
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

/// Flags that only mean something when publishing are refused without `--broker`.
fn refuse_idle_flags(args: &Args) -> Result<()> {
    if args.broker.is_some() {
        return Ok(());
    }
    for (set, flag) in [
        (args.site.is_some(), "--site"),
        (args.sensor.is_some(), "--sensor"),
        (args.payload.is_some(), "--payload"),
        (args.pace.is_some(), "--pace"),
    ] {
        if set {
            return Err(exit::usage(format!(
                "{flag} does nothing without --broker: replay prints JSON lines unless it publishes"
            )));
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Result<ExitCode> {
    refuse_idle_flags(&args)?;
    let conf = effective_config(&args)?;
    let mut cap = CaptureFile::open(&args.file).map_err(exit::input)?;
    let mut cfg = conf
        .as_ref()
        .map(Config::tracker_config)
        .unwrap_or_default();
    cfg.media.heuristic &= !args.no_rtp_heuristic;
    // Tables faulted in now: peak RSS is the start's (debug: replay's stderr stays quiet).
    let (mut tracker, populated) = super::memory::populate_new(|| Tracker::new(cfg));
    super::memory::log_budget(&cfg.memory_parts(), populated, log::Level::Debug);
    let mut publisher = match (&conf, &args.broker) {
        (Some(c), Some(_)) => {
            let mut settings = PublishSettings::try_from(c)?;
            settings.interfaces = vec![args.file.display().to_string()];
            let mut p = Publisher::start(settings)?;
            p.set_pace(args.pace);
            Some(p)
        }
        _ => None,
    };
    let stdout = std::io::stdout().lock();
    let mut sink = Tee {
        lines: JsonLines {
            out: std::io::BufWriter::with_capacity(1 << 16, stdout),
            quiet: args.summary,
            error: None,
        },
        // The live sensor's policy on packet time, with no interfaces to watch: its
        // warnings go to the log (stderr), never to stdout.
        policy: Policy::new(
            conf.as_ref()
                .unwrap_or(&Config::default())
                .policy_config(u64::MAX),
            0,
        ),
        mqtt: publisher.as_mut(),
    };
    let mut second = 0u64;
    let link = cap.link();
    let progress = std::io::stderr().is_terminal() && cap.total_bytes > 20 << 20;
    let started = WallClock::now();
    let mut last_report = started;
    let mut frames = 0u64;
    let mut failure = None;
    let keep = args.keep_duplicates || conf.as_ref().is_some_and(|c| c.capture.keep_duplicates);
    // The file is one interface: its mirror copies are dropped and judged as `run` does.
    let mut mirror = MirrorDuplicates::new();
    // The mirror diagnostic, said once at the end: it is about the capture, not a moment.
    let mut doubled = None;
    let mut iface = IfHealth::new(&args.file.display().to_string());
    iface.state = IfState::Capturing;
    loop {
        match cap.next_frame() {
            Ok(Some(f)) => {
                if !mirror.is_duplicate(f.ts, f.data) || keep {
                    tracker.on_frame(f.ts, link, f.data, &mut sink);
                }
                // Once per second of packet time: the policy's verdict, and the publisher
                // batches RTP and sends health.
                if f.ts.as_secs() != second {
                    second = f.ts.as_secs();
                    let now = Ts::from_instant(f.ts);
                    let mut counters = tracker.counters();
                    counters.mirror_duplicates = mirror.total;
                    let dirs = tracker.mirror().directions();
                    mirror.tick(second);
                    iface.frames = frames + 1;
                    iface.mirror_duplicates = mirror.total;
                    iface.mirror_window = mirror.window();
                    let ifs = [Iface {
                        health: &iface,
                        quiet_for_s: None,
                    }];
                    let verdict = sink
                        .policy
                        .second(now.0, counters.sip.tls_records, &dirs, &ifs);
                    policy::log_changes(&verdict.changes, false);
                    for c in &verdict.changes {
                        if let policy::Change::Raised(w) = c
                            && w.code == "mirror_duplicates"
                            && doubled.is_none()
                        {
                            doubled = Some(w.message.clone());
                        }
                    }
                    tracker.set_capture_loss(verdict.loss);
                    if let Some(p) = sink.mqtt.as_deref_mut() {
                        p.tick(now, &counters);
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        frames += 1;
        if progress && frames.is_multiple_of(65536) && last_report.elapsed().as_millis() >= 500 {
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
        if sink.lines.error.is_some() {
            break;
        }
    }
    if progress {
        eprintln!();
    }
    if let Some(m) = doubled {
        log::warn!("{m}");
    }
    tracker.finish("end_of_capture", &mut sink);
    let mut counters = tracker.counters();
    counters.mirror_duplicates = mirror.total;
    if let Some(p) = sink.mqtt.as_deref_mut()
        && let Some(now) = tracker.now()
    {
        p.tick(Ts::from_instant(now), &counters);
    }
    let mut lines = sink.lines;
    lines.quiet = false;
    let line = summary_line(&counters);
    if lines.error.is_none() {
        let _ = writeln!(lines.out, "{line}");
    }
    if let Err(e) = lines.out.flush() {
        lines.error.get_or_insert(e);
    }
    if let Some(p) = publisher {
        // Everything queued must reach the broker, or the command fails saying how much did not.
        if !p.is_connected() {
            log::warn!(
                "broker not connected: waiting up to 30 s for it to take the queued messages"
            );
        }
        let stats = p.finish(std::time::Duration::from_secs(30))?;
        log::info!("published: {stats}");
    }
    if let Some(e) = lines.error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS); // `replay … | head` is fine
        }
        anyhow::bail!("cannot write output: {e}");
    }
    if let Some(e) = failure {
        return Err(exit::input(anyhow::anyhow!("{}: {e}", args.file.display())));
    }
    Ok(ExitCode::SUCCESS)
}
