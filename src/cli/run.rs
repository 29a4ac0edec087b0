//! `voipsensor run`: the live sensor on one or more mirror-port interfaces.
//!
//! One thread: nonblocking capture handles polled together feed one tracker; an
//! `embassy-time` one-second tick (std driver) does the per-second work: pcap statistics,
//! interface lifecycle, tracker timeouts when traffic stops, `health`. What to warn about,
//! when metrics carry `capture_loss` and when `health` is due is decided by the sans-IO
//! [`Policy`] (which `replay` drives too); this file keeps the poll loop, reload and
//! privilege drop. Events go to the MQTT publisher, or as JSON lines to stdout when no
//! broker is configured. Flags are applied to the file before its one validation.
//!
//! Privileges: capturing needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode), not
//! root. With `--user`, the process switches to that user once the handles are open and
//! keeps only those two capabilities (to reopen an interface that comes back); it always
//! sets no_new_privs and opens no listening socket.

use crate::cli::replay::{JsonLines, summary_line};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as WallClock};
use voipsensor::capture::dedup::DedupRing;
use voipsensor::capture::health::{CaptureSummary, IfHealth, PcapCounts, summarize};
use voipsensor::capture::live::{Interface, Options};
use voipsensor::config::{self, Config};
use voipsensor::led::{self, Condition};
use voipsensor::policy::{self, Iface, Policy, PolicyConfig};
use voipsensor::publish::{PublishSettings, Publisher};
use voipsensor::track::counters::Counters;
use voipsensor::track::event::{Event, EventSink, Ts};
use voipsensor::track::mirror::{CallSides, Delivery, DirectionStats, Warning};
use voipsensor::track::tracker::{Tracker, TrackerConfig};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Configuration file (TOML, see sensor.example.toml); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Capture interface (repeat for several: one tracker, duplicates dropped).
    #[arg(long = "interface", short = 'i')]
    pub interfaces: Vec<String>,
    /// MQTT broker, mqtt://host[:port] or mqtts://host[:port]; without one (and without
    /// mqtt.url in the config), events are JSON lines on stdout.
    #[arg(long)]
    pub broker: Option<String>,
    /// Site name in the topic tree (overrides sensor.site).
    #[arg(long)]
    pub site: Option<String>,
    /// Sensor id in the topic tree and MQTT client id (overrides sensor.id).
    #[arg(long)]
    pub sensor: Option<String>,
    /// JSON lines on stdout even when a broker is configured.
    #[arg(long)]
    pub stdout: bool,
    /// Kernel filter (BPF); VLAN-tagged traffic matching it passes too.
    #[arg(long)]
    pub bpf: Option<String>,
    /// Kernel ring buffer per interface, MiB.
    #[arg(long)]
    pub buffer_mb: Option<u32>,
    /// `health` period, seconds.
    #[arg(long)]
    pub health_interval_s: Option<u32>,
    /// Seconds without a frame on an interface before "no mirror traffic".
    #[arg(long, default_value_t = 10)]
    pub no_traffic_s: u64,
    /// Switch to this user once the capture handles are open (keeps only CAP_NET_RAW and
    /// CAP_NET_ADMIN).
    #[arg(long)]
    pub user: Option<String>,
    /// Do not look for RTP that no SDP announced.
    #[arg(long)]
    pub no_rtp_heuristic: bool,
    /// Analyse byte-identical copies of a frame (a SPAN session mirroring a frame twice)
    /// instead of dropping them (overrides capture.keep_duplicates).
    #[arg(long)]
    pub keep_duplicates: bool,
    /// Status LED to drive (`/sys/class/leds/NAME`, the board's `status_led`): see `led.rs`.
    #[arg(long)]
    pub led: Option<PathBuf>,
}

/// The effective settings: the file (if any) with the flags applied.
struct Settings {
    cfg: Config,
    mqtt: bool,
    opts: Options,
    tracker: TrackerConfig,
    policy: PolicyConfig,
}

fn settings(a: &Args) -> Result<Settings> {
    let mqtt = !a.stdout && (a.broker.is_some() || a.config.as_deref().is_some_and(mqtt_url_set));
    // Flags are applied to the file before its one validation.
    let mut no_site = false;
    let flags: Vec<(&str, &str)> = [
        (
            !a.interfaces.is_empty(),
            "capture.interfaces",
            "--interface",
        ),
        (a.broker.is_some(), "mqtt.url", "--broker"),
        (a.site.is_some(), "sensor.site", "--site"),
        (a.sensor.is_some(), "sensor.id", "--sensor"),
        (a.buffer_mb.is_some(), "capture.buffer_mb", "--buffer-mb"),
        (
            a.health_interval_s.is_some(),
            "output.health_interval_s",
            "--health-interval-s",
        ),
    ]
    .into_iter()
    .filter(|(set, _, _)| *set)
    .map(|(_, k, f)| (k, f))
    .collect();
    let cfg = config::load_with_flags(a.config.as_deref(), &flags, |c| {
        if !a.interfaces.is_empty() {
            c.capture.interfaces = a.interfaces.clone();
        }
        if let Some(b) = &a.broker {
            c.mqtt.url = b.clone();
        }
        if let Some(s) = &a.site {
            c.sensor.site = s.clone();
        }
        if let Some(s) = &a.sensor {
            c.sensor.id = Some(s.clone());
        }
        if let Some(b) = &a.bpf {
            c.capture.bpf = b.clone();
        }
        c.capture.keep_duplicates |= a.keep_duplicates;
        if let Some(m) = a.buffer_mb {
            c.capture.buffer_mb = m;
        }
        if let Some(h) = a.health_interval_s {
            c.output.health_interval_s = h;
        }
        if c.sensor.site.is_empty() {
            no_site = mqtt;
            if !mqtt {
                c.sensor.site = "local".into();
            }
        }
    });
    if no_site {
        return Err(super::exit::usage(
            "publishing needs a site: pass --site NAME or set sensor.site in the config",
        ));
    }
    let cfg = cfg?;
    if cfg.capture.interfaces.is_empty() {
        bail!(
            "no capture interface: pass --interface IF or set capture.interfaces in the config (`voipsensor interfaces` lists them)"
        );
    }
    let mut tracker = cfg.tracker_config();
    tracker.media.heuristic = !a.no_rtp_heuristic;
    let opts = cfg.capture_options();
    let rings = u64::from(opts.buffer_bytes) * cfg.capture.interfaces.len() as u64;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    super::memory::check(tracker.memory_bytes() as u64, rings, meminfo.as_deref())?;
    Ok(Settings {
        opts,
        policy: cfg.policy_config(a.no_traffic_s),
        cfg,
        mqtt,
        tracker,
    })
}

/// Whether the file names a broker (`[mqtt] url`): the default URL alone does not turn
/// publishing on.
fn mqtt_url_set(p: &Path) -> bool {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("mqtt")?.get("url").cloned())
        .is_some()
}

enum Output {
    Json(JsonLines<std::io::BufWriter<std::io::Stdout>>),
    Mqtt(Box<Publisher>),
}

/// Events to the output, watched on the way by the policy.
struct Sink {
    out: Output,
    policy: Policy,
}

impl EventSink for Sink {
    fn emit(&mut self, ev: &Event) {
        self.policy.on_event(ev);
        match &mut self.out {
            Output::Json(j) => j.emit(ev),
            Output::Mqtt(p) => p.publish(ev),
        }
    }
}

impl Sink {
    fn line(&mut self, s: &str) {
        if let Output::Json(j) = &mut self.out
            && j.error.is_none()
            && let Err(e) = writeln!(j.out, "{s}")
        {
            j.error = Some(e);
        }
    }
    fn flush(&mut self) {
        if let Output::Json(j) = &mut self.out
            && let Err(e) = j.out.flush()
        {
            j.error.get_or_insert(e);
        }
    }
}

fn start_output(s: &Settings) -> Result<Output> {
    if s.mqtt {
        let mut ps = PublishSettings::try_from(&s.cfg)?;
        // The only file `run` writes: the queue at a stop with the broker down.
        ps.spool = Some(voipsensor::publish::spool::SpoolSettings {
            dir: s.cfg.mqtt.spool.clone(),
            max_bytes: s.cfg.mqtt.spool_bytes,
        });
        let p = Publisher::start(ps)?;
        Ok(Output::Mqtt(Box::new(p)))
    } else {
        Ok(Output::Json(JsonLines {
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
            quiet: false,
            error: None,
        }))
    }
}

/// The mirror part of `health`.
#[derive(Serialize)]
struct MirrorReport {
    directions: DirectionStats,
    answered_calls: CallSides,
    delivery: Delivery,
    tls_records: u64,
}

/// `health`: capture, interfaces, mirror, warnings, the tracker's counters.
#[derive(Serialize)]
struct HealthReport {
    site: String,
    sensor: String,
    capture: CaptureSummary,
    interfaces: Vec<IfHealth>,
    mirror: MirrorReport,
    warnings: Vec<Warning>,
    /// What the status LED shows (`led.rs`).
    condition: Condition,
    counters: Counters,
}

fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Packets are stamped when the kernel receives them and reach us up to the read timeout
/// later: the idle tick stays this far behind wall time so it never overtakes them.
const TICK_LAG_US: u64 = 1_000_000;
/// Frames read from one handle before looking at the others and the clock.
const BATCH: usize = 1024;
const BATCH_MULTI: usize = 64;
/// Frames read per interface before looking at the clock again.
const READ_LIMIT: usize = 8192;

struct State {
    settings: Settings,
    ifs: Vec<Interface>,
    tracker: Tracker,
    sink: Sink,
    dedup: DedupRing,
    capturing_since: Vec<Option<WallClock>>,
    /// pcap statistics gathered since the last second, per interface.
    pending: Vec<PcapCounts>,
    /// Scratch: interfaces with frames left in this read pass.
    more: Vec<bool>,
    sensor_id: String,
    /// The status LED directory, the condition last shown on it, and what decides it.
    led: Option<PathBuf>,
    led_shown: Option<Condition>,
    ever_connected: bool,
    started: WallClock,
    condition: Condition,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let s = settings(&a)?;
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone()).context("cannot install signal handler")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("cannot install signal handler")?;

    let now = WallClock::now();
    let mut ifs: Vec<Interface> = s
        .cfg
        .capture
        .interfaces
        .iter()
        .map(|n| Interface::new(n))
        .collect();
    for i in &mut ifs {
        if let Some(m) = i.try_open(&s.opts, now) {
            if i.handle.is_some() {
                log::info!("{m}");
            } else {
                // The policy's `interface_down` warning says it once, at warn level.
                log::debug!("{m}");
            }
        }
    }
    // The sensor id may come from an interface's MAC; fall back to a fixed name for stdout.
    let sensor_id = s
        .cfg
        .sensor_id()
        .or_else(|e| if s.mqtt { Err(e) } else { Ok("local".into()) })?;
    let out = start_output(&s)?;
    if let Some(u) = a.user.as_ref().or(s.cfg.sensor.user.as_ref()) {
        privileges::drop_to(u)?;
        log::info!("running as user {u} with CAP_NET_RAW and CAP_NET_ADMIN only");
    }
    privileges::no_new_privs()?;

    let n = ifs.len();
    let (tracker, populated) = super::memory::populate_new(|| Tracker::new(s.tracker));
    super::memory::log_rings(super::memory::populate_rings());
    super::memory::log_budget(&s.tracker.memory_parts(), populated, log::Level::Info);
    let mut st = State {
        tracker,
        ifs,
        sink: Sink {
            out,
            policy: Policy::new(s.policy, wall_us()),
        },
        dedup: DedupRing::new(16384, Duration::from_millis(50)),
        capturing_since: vec![Some(WallClock::now()); n],
        pending: vec![PcapCounts::default(); n],
        more: Vec::with_capacity(n),
        sensor_id,
        settings: s,
        led: a.led.clone(),
        led_shown: None,
        ever_connected: false,
        started: WallClock::now(),
        condition: Condition::Booting,
    };
    log::info!(
        "voipsensor {} running on {} ({}); output: {}",
        env!("CARGO_PKG_VERSION"),
        st.settings.cfg.capture.interfaces.join(", "),
        st.settings.cfg.sensor.site,
        if st.settings.mqtt {
            st.settings.cfg.mqtt.url.as_str()
        } else {
            "JSON lines on stdout"
        }
    );

    let tick = embassy_time::Duration::from_secs(1);
    let mut next_tick = embassy_time::Instant::now() + tick;
    let mut pollfds: Vec<libc::pollfd> = Vec::with_capacity(n);
    let mut frames_since_tick = 0u64;
    while !term.load(Ordering::Relaxed) {
        if hup.swap(false, Ordering::Relaxed) {
            st.reload(&a);
        }
        pollfds.clear();
        pollfds.extend(
            st.ifs
                .iter()
                .filter_map(|i| i.handle.as_ref())
                .map(|h| libc::pollfd {
                    fd: h.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }),
        );
        let wait = next_tick
            .saturating_duration_since(embassy_time::Instant::now())
            .as_millis()
            .min(100) as i32;
        if pollfds.is_empty() {
            std::thread::sleep(Duration::from_millis(wait as u64));
        } else {
            // SAFETY: `pollfds` is a live, correctly sized array of pollfd.
            // EINTR (a signal) just ends the wait early.
            unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, wait) };
        }
        frames_since_tick += st.read_all();
        if embassy_time::Instant::now() >= next_tick {
            next_tick += tick;
            let now = embassy_time::Instant::now();
            if next_tick < now {
                next_tick = now + tick; // fell behind (stopped, overloaded): skip, no burst
            }
            st.second(frames_since_tick == 0);
            frames_since_tick = 0;
            if let Output::Json(j) = &st.sink.out
                && j.error.is_some()
            {
                break; // stdout closed (`run | head`): nothing more to say
            }
        }
    }
    st.stop()
}

impl State {
    /// Reads what every open handle has ready; returns the frames read.
    fn read_all(&mut self) -> u64 {
        let multi = self.ifs.iter().filter(|i| i.handle.is_some()).count() > 1;
        // Several interfaces are read round-robin in small batches, so the two copies of a
        // frame meet in the duplicate ring before other frames push one out.
        let batch = if multi { BATCH_MULTI } else { BATCH };
        let keep = self.settings.cfg.capture.keep_duplicates;
        let mut total = 0;
        for (idx, iface) in self.ifs.iter_mut().enumerate() {
            let Some(h) = iface.handle.as_mut() else {
                continue;
            };
            // Statistics before reading: drops that happened while the ring filled up mark
            // the metrics of the backlog we are about to process.
            if let Ok(d) = h.stats_delta() {
                if d.dropping() {
                    self.sink.policy.capture_dropped(wall_us());
                    self.tracker.set_capture_loss(true);
                }
                if let Some(p) = self.pending.get_mut(idx) {
                    p.add(&d);
                }
            }
        }
        self.more.clear();
        self.more.resize(self.ifs.len(), true);
        for _ in 0..READ_LIMIT / batch {
            let mut any = false;
            for (idx, iface) in self.ifs.iter_mut().enumerate() {
                let Some(h) = iface.handle.as_mut() else {
                    continue;
                };
                if !self.more[idx] {
                    continue;
                }
                let link = h.link();
                let (mut frames, mut dups) = (0u64, 0u64);
                let (tracker, sink, dedup) = (&mut self.tracker, &mut self.sink, &mut self.dedup);
                let mirror = &mut iface.mirror;
                let res = h.read(batch, |ts, data| {
                    frames += 1;
                    if mirror.is_duplicate(ts, data) && !keep {
                        return;
                    }
                    if multi && dedup.is_duplicate(idx as u8, ts, link, data) {
                        dups += 1;
                        return;
                    }
                    tracker.on_frame(ts, link, data, sink);
                });
                iface.health.frames += frames;
                iface.health.duplicates += dups;
                iface.health.mirror_duplicates = iface.mirror.total;
                total += frames;
                if frames > 0 {
                    iface.last_frame = Some(WallClock::now());
                }
                match res {
                    Ok(n) if n == batch => any = true,
                    // A short batch does not take the interface out of the rounds: the
                    // copies of what the others are still delivering arrive on it meanwhile,
                    // and left for the next call they would be thousands of frames behind
                    // (past the duplicate ring), counted twice.
                    Ok(_) => {}
                    Err(e) => {
                        self.more[idx] = false;
                        log::warn!("{}", iface.lose(e.to_string(), WallClock::now()));
                    }
                }
            }
            if !any {
                break;
            }
        }
        total
    }

    /// The once-a-second work.
    fn second(&mut self, idle: bool) {
        let wall = wall_us();
        let now = WallClock::now();
        let mut dropping = false;
        for (k, iface) in self.ifs.iter_mut().enumerate() {
            if let Some(m) = iface.check(now) {
                log::warn!("{m}");
            }
            let was_open = iface.handle.is_some();
            if let Some(m) = iface.try_open(&self.settings.opts, now) {
                if iface.handle.is_some() {
                    log::info!("{m}");
                } else {
                    // The policy's `interface_down` warning says it once, at warn level.
                    log::debug!("{m}");
                }
            }
            if iface.handle.is_some() && !was_open {
                self.capturing_since[k] = Some(now);
                // Its new ring resident now, not when a burst first fills it.
                super::memory::log_rings(super::memory::populate_rings());
            }
            if iface.handle.is_none() {
                self.capturing_since[k] = None;
            }
            iface.health.last_second = Default::default();
            iface.mirror.tick(wall / 1_000_000);
            iface.health.mirror_window = iface.mirror.window();
            if let Some(h) = iface.handle.as_mut() {
                let pending = self
                    .pending
                    .get_mut(k)
                    .map(std::mem::take)
                    .unwrap_or_default();
                match h.stats_delta() {
                    Ok(mut d) => {
                        d.add(&pending);
                        if d.dropping() {
                            log::warn!(
                                "{}: capture dropping: {} packets dropped by the kernel, {} by the interface in the last second (raise capture.buffer_mb, or the board is too slow for this traffic)",
                                iface.name,
                                d.dropped_kernel,
                                d.dropped_interface
                            );
                            dropping = true;
                        }
                        iface.health.last_second = d;
                        iface.health.total.add(&d);
                    }
                    Err(e) => log::debug!("{}: no pcap statistics: {e}", iface.name),
                }
            }
        }
        if dropping {
            self.sink.policy.capture_dropped(wall);
        }
        self.tracker.set_capture_loss(self.sink.policy.loss(wall));
        if idle {
            // No traffic: drive reports and timeouts from the clock.
            self.tracker.tick(
                embassy_time::Instant::from_micros(wall - TICK_LAG_US),
                &mut self.sink,
            );
        }

        let counters = self.tracker.counters();
        let dirs = self.tracker.mirror().directions();
        let ifs: Vec<Iface> = self
            .ifs
            .iter()
            .zip(&self.capturing_since)
            .map(|(iface, since)| Iface {
                health: &iface.health,
                quiet_for_s: since.map(|c| {
                    let from = iface.last_frame.map_or(c, |f| f.max(c));
                    now.saturating_duration_since(from).as_secs()
                }),
            })
            .collect();
        let broker_connected = match &self.sink.out {
            Output::Mqtt(p) => Some(p.is_connected()),
            Output::Json(_) => None,
        };
        self.ever_connected |= broker_connected == Some(true);
        self.condition = led::condition(&led::Inputs {
            config_ok: true, // run refuses a bad file; /init shows config errors itself
            broker_connected,
            ever_connected: self.ever_connected,
            uptime_s: now.saturating_duration_since(self.started).as_secs(),
            mirror_quiet_s: ifs.iter().filter_map(|i| i.quiet_for_s).min(),
        });
        let verdict = self
            .sink
            .policy
            .second(wall, counters.sip.tls_records, &dirs, &ifs);
        policy::log_changes(&verdict.changes, true);

        if verdict.health_due || matches!(self.sink.out, Output::Mqtt(_)) {
            let report = self.report(counters, dirs, verdict.loss);
            match &mut self.sink.out {
                // The publisher keeps its own health period.
                Output::Mqtt(p) => {
                    let d = &report.mirror.delivery;
                    let encaps = d.encapsulations.iter().map(|e| e.to_string()).collect();
                    p.set_delivery(d.vlans.clone(), encaps);
                    p.tick(Ts(wall), &report);
                }
                Output::Json(_) => {
                    let line = health_line(Ts(wall), &report);
                    self.sink.line(&line);
                }
            }
        }
        self.show_led();
        self.sink.flush();
    }

    /// Sets the LED when the condition changed (a failed write is logged, then retried).
    fn show_led(&mut self) {
        let Some(dir) = &self.led else { return };
        if self.led_shown == Some(self.condition) {
            return;
        }
        match led::apply(dir, self.condition.pattern()) {
            Ok(()) => {
                log::info!("status LED: {}", self.condition.as_str());
                self.led_shown = Some(self.condition);
            }
            Err(e) => log::warn!("status LED {}: {e}", dir.display()),
        }
    }

    fn report(&self, counters: Counters, dirs: DirectionStats, loss: bool) -> HealthReport {
        let interfaces: Vec<IfHealth> = self.ifs.iter().map(|i| i.health.clone()).collect();
        HealthReport {
            site: self.settings.cfg.sensor.site.clone(),
            sensor: self.sensor_id.clone(),
            capture: summarize(&interfaces, loss),
            interfaces,
            mirror: MirrorReport {
                directions: dirs,
                answered_calls: self.sink.policy.sides(),
                delivery: self.tracker.mirror().delivery(),
                tls_records: counters.sip.tls_records,
            },
            warnings: self.sink.policy.warnings().to_vec(),
            condition: self.condition,
            counters,
        }
    }

    /// SIGHUP: reads the configuration again; a bad file keeps the running one.
    fn reload(&mut self, a: &Args) {
        let new = match settings(a) {
            Ok(s) => s,
            Err(e) => {
                log::error!("SIGHUP: configuration not reloaded, keeping the running one: {e:#}");
                return;
            }
        };
        let old = &self.settings;
        if new.opts != old.opts || new.cfg.capture.interfaces != old.cfg.capture.interfaces {
            let now = WallClock::now();
            let mut ifs = Vec::new();
            for name in &new.cfg.capture.interfaces {
                let mut i = match self.ifs.iter().position(|i| &i.name == name) {
                    Some(k) => self.ifs.swap_remove(k),
                    None => Interface::new(name),
                };
                i.handle = None; // reopen with the new options
                if let Some(m) = i.try_open(&new.opts, now) {
                    log::info!("{m}");
                }
                ifs.push(i);
            }
            self.capturing_since = vec![Some(now); ifs.len()];
            self.pending = vec![PcapCounts::default(); ifs.len()];
            self.ifs = ifs;
        }
        if new.tracker.calls != old.tracker.calls
            || new.tracker.media.streams != old.tracker.media.streams
        {
            log::warn!("SIGHUP: [tracker] changes take effect at the next start");
        }
        let output_changed = new.mqtt != old.mqtt
            || (new.mqtt
                && (new.cfg.mqtt != old.cfg.mqtt
                    || new.cfg.sensor != old.cfg.sensor
                    || new.cfg.output != old.cfg.output
                    || new.cfg.privacy != old.cfg.privacy));
        if output_changed {
            match start_output(&new) {
                Ok(out) => {
                    let old_out = std::mem::replace(&mut self.sink.out, out);
                    if let Output::Mqtt(p) = old_out
                        && let Err(e) = p.finish(Duration::from_secs(5))
                    {
                        log::warn!("previous broker connection: {e:#}");
                    }
                }
                Err(e) => {
                    log::error!("SIGHUP: new output not started, keeping the running one: {e:#}")
                }
            }
        }
        self.sink.policy.set_config(new.policy);
        let sensor = self.sensor_id.clone();
        self.sensor_id = new.cfg.sensor_id().unwrap_or(sensor);
        self.settings = new;
        log::info!("SIGHUP: configuration reloaded");
    }

    /// SIGTERM/SIGINT: open calls end with `sensor_stopped`, output flushed (bounded).
    fn stop(mut self) -> Result<ExitCode> {
        log::info!("stopping: ending open calls");
        self.read_all();
        self.tracker.finish("sensor_stopped", &mut self.sink);
        let counters = self.tracker.counters();
        let dirs = self.tracker.mirror().directions();
        let wall = wall_us();
        let loss = self.sink.policy.loss(wall);
        let report = self.report(counters.clone(), dirs, loss);
        let health = health_line(Ts(wall), &report);
        match self.sink.out {
            Output::Mqtt(mut p) => {
                p.tick(Ts(wall), &report);
                // The offline status goes out with the queue (the Last Will only fires on an
                // unclean end); a broker still down after 5 s gets the spool instead.
                match p.finish(Duration::from_secs(5)) {
                    Ok(stats) => log::info!("published: {stats}"),
                    Err(e) => {
                        log::warn!("not everything reached the broker before stopping: {e:#}")
                    }
                }
            }
            Output::Json(mut j) => {
                let _ = writeln!(j.out, "{health}");
                let _ = writeln!(j.out, "{}", summary_line(&counters));
                let _ = j.out.flush();
            }
        }
        log::info!("stopped");
        Ok(ExitCode::SUCCESS)
    }
}

/// `{"type":"health","ts":...,...}` for stdout.
fn health_line(ts: Ts, r: &HealthReport) -> String {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), "health".into());
    m.insert("ts".into(), serde_json::json!(ts));
    if let Ok(serde_json::Value::Object(f)) = serde_json::to_value(r) {
        m.extend(f);
    }
    serde_json::Value::Object(m).to_string()
}

/// Least privilege: switch user keeping only the capture capabilities; no_new_privs.
mod privileges {
    use anyhow::{Result, bail};
    use std::ffi::CString;

    const CAP_NET_ADMIN: u32 = 12;
    const CAP_NET_RAW: u32 = 13;
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    fn os_err(what: &str) -> anyhow::Error {
        anyhow::anyhow!("{what}: {}", std::io::Error::last_os_error())
    }

    pub fn drop_to(user: &str) -> Result<()> {
        let Ok(name) = CString::new(user) else {
            bail!("--user {user:?}: not a user name");
        };
        // SAFETY: getpwnam_r writes into our buffers only; result points into `pw`.
        let (uid, gid) = unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut buf = vec![0 as libc::c_char; 16 * 1024];
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                name.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            );
            if rc != 0 || result.is_null() {
                bail!(
                    "--user {user}: no such user; create one (useradd --system --no-create-home {user}) or omit --user"
                );
            }
            (pw.pw_uid, pw.pw_gid)
        };
        // SAFETY: plain syscalls on this process's credentials.
        unsafe {
            if libc::geteuid() != 0 {
                bail!(
                    "--user {user}: switching users needs root; when started with only CAP_NET_RAW/CAP_NET_ADMIN, omit --user"
                );
            }
            if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
                return Err(os_err("prctl(PR_SET_KEEPCAPS)"));
            }
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(os_err("setgroups"));
            }
            if libc::setgid(gid) != 0 {
                return Err(os_err("setgid"));
            }
            if libc::setuid(uid) != 0 {
                return Err(os_err("setuid"));
            }
            // Keep what reopening an interface needs, nothing else.
            let keep = (1 << CAP_NET_RAW) | (1 << CAP_NET_ADMIN);
            let hdr = CapHeader {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let data = [
                CapData {
                    effective: keep,
                    permitted: keep,
                    inheritable: 0,
                },
                CapData {
                    effective: 0,
                    permitted: 0,
                    inheritable: 0,
                },
            ];
            if libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) != 0 {
                return Err(os_err("capset"));
            }
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
        }
        Ok(())
    }

    pub fn no_new_privs() -> Result<()> {
        // SAFETY: a flag on this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(os_err("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
        Ok(())
    }
}
