//! `voipsensor watch --broker URL [--site S] [--sensor N]`: subscribe to the topic tree and
//! print one JSON line per event, whatever the payload format. Each line is what `replay`
//! prints plus the transport fields `topic` (always) and `seq` (on `calls`); `rtp` batches
//! are printed one interval per line. It waits for (and retries) the broker, says when
//! nothing arrives, and reports `seq` gaps and duplicates per sensor on stderr.

use super::exit;
use super::seq_check::SeqCheck;
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use voipsensor::config::{Config, Secret};
use voipsensor::publish::backoff::Backoff;
use voipsensor::publish::broker::{
    BrokerUrl, Refused, explain, mqtt_options, redact, split_credentials,
};
use voipsensor::publish::payload::to_json_lines;
use voipsensor::publish::topic;

#[derive(clap::Args)]
pub struct Args {
    /// Broker URL: mqtt://host[:port] or mqtts://host[:port].
    #[arg(long)]
    pub broker: String,
    /// Only this site (default: all).
    #[arg(long)]
    pub site: Option<String>,
    /// Only this sensor (default: all).
    #[arg(long)]
    pub sensor: Option<String>,
    /// MQTT username (with --password-file).
    #[arg(long)]
    pub username: Option<String>,
    /// File holding the password (first line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// CA bundle (PEM) for mqtts://.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Exit after printing this many lines.
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long)]
    pub timeout_s: Option<u64>,
    /// Persistent session under this name (client id `voipsensor-watch-NAME`, QoS 1): the
    /// broker keeps messages for it while watch is not running.
    #[arg(long)]
    pub session: Option<String>,
    /// Say so on stderr when nothing arrives for this many seconds.
    #[arg(long, default_value_t = 30)]
    pub quiet_s: u64,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let filter = topic::filter(a.site.as_deref(), a.sensor.as_deref())?;
    let shown = redact(&a.broker);
    BrokerUrl::parse(&a.broker)
        .map_err(|e| exit::usage(format!("--broker {:?}: {}", e.url, e.why)))?;
    let mut cfg = Config::default();
    let (url, creds) = split_credentials(&a.broker);
    cfg.mqtt.url = url;
    cfg.mqtt.username = a.username.clone();
    cfg.mqtt.ca_file = a.ca_file.clone();
    if let Some((user, password)) = creds {
        if a.username.is_some() || a.password_file.is_some() {
            return Err(exit::usage(format!(
                "--broker {shown:?} holds credentials: drop --username/--password-file, or them from the URL"
            )));
        }
        cfg.mqtt.username = Some(user);
        cfg.mqtt.password = password.map(Secret::new);
    }
    if let Some(p) = &a.password_file {
        let s = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read --password-file {}", p.display()))?;
        cfg.mqtt.password = Some(Secret::new(s.trim_end_matches(['\r', '\n'])));
    }
    // A named session is persistent: the broker keeps what arrives while watch is away.
    let id = match &a.session {
        Some(name) => format!("voipsensor-watch-{name}"),
        None => format!("voipsensor-watch-{}", std::process::id()),
    };
    // Large enough for any rtp batch a sensor may be configured to send.
    let (mut opts, _) = mqtt_options(&cfg.connect(), &id, 1 << 24)?;
    opts.set_clean_session(a.session.is_none());
    let (client, mut conn) = rumqttc::Client::new(opts, 16);
    let deadline = a.timeout_s.map(|s| Instant::now() + Duration::from_secs(s));
    let quiet = Duration::from_secs(a.quiet_s.max(1));
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut last_error: Option<String> = None;
    let mut seqs = SeqCheck::default();
    // When the last message (or the subscription) was seen, while subscribed.
    let mut heard: Option<Instant> = None;
    'watch: loop {
        let now = Instant::now();
        if let Some(h) = heard
            && now.duration_since(h) >= quiet
        {
            eprintln!(
                "voipsensor watch: nothing received on {filter} for {} s: is a sensor publishing \
                 (`selftest` on it), and are --site/--sensor right?",
                quiet.as_secs()
            );
            heard = Some(now);
        }
        let mut wait = heard.map_or(quiet, |h| (h + quiet).saturating_duration_since(now));
        if let Some(d) = deadline {
            match d.checked_duration_since(now) {
                Some(w) => wait = wait.min(w),
                None => break 'watch,
            }
        }
        let ev = match conn.recv_timeout(wait.max(Duration::from_millis(10))) {
            Ok(ev) => ev,
            Err(rumqttc::RecvTimeoutError::Timeout) => continue,
            Err(rumqttc::RecvTimeoutError::Disconnected) => break 'watch,
        };
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                backoff.reset();
                if last_error.take().is_some() {
                    eprintln!("voipsensor watch: connected to {shown}");
                }
                // Subscribe on every connect (harmless when the session kept it).
                client
                    .try_subscribe(filter.clone(), rumqttc::QoS::AtLeastOnce)
                    .context("subscribe")?;
            }
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                log::info!("watching {filter} on {shown}");
                heard = Some(Instant::now());
            }
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                heard = Some(Instant::now());
                let lines = match to_json_lines(&p.payload) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("voipsensor watch: {}: {e}", p.topic);
                        continue;
                    }
                };
                let calls = topic::parse(&p.topic)
                    .filter(|(_, _, leaf)| *leaf == topic::Leaf::Calls)
                    .map(|(site, sensor, _)| format!("{site}/{sensor}"));
                for mut l in lines {
                    if let (Some(sensor), Some(seq)) = (&calls, l["seq"].as_u64())
                        && let Some(note) = seqs.see(sensor, seq)
                    {
                        eprintln!("voipsensor watch: {note}");
                    }
                    if let Value::Object(m) = &mut l {
                        m.insert("topic".into(), Value::String(p.topic.clone()));
                    }
                    writeln!(out, "{l}")?;
                    printed += 1;
                    if a.count.is_some_and(|c| printed >= c) {
                        break 'watch;
                    }
                }
                out.flush()?;
            }
            Ok(_) => {}
            Err(e) => {
                heard = None;
                let (msg, fatal) = explain(&e, &shown);
                if fatal {
                    return Err(Refused(msg).into());
                }
                let pause = backoff.next_wait();
                // Once per distinct reason, not once per attempt.
                if last_error.as_deref() != Some(msg.as_str()) {
                    eprintln!("voipsensor watch: {msg}; retrying (every {} s at most)", 30);
                }
                last_error = Some(msg);
                std::thread::sleep(pause);
            }
        }
    }
    out.flush()?;
    for line in seqs.summary() {
        eprintln!("voipsensor watch: {line}");
    }
    Ok(ExitCode::SUCCESS)
}
