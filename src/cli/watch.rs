//! `voipsensor watch --broker URL [--site S] [--sensor N]`: subscribe to the topic tree and
//! print one JSON line per event, whatever the payload format. Each line is what `replay`
//! prints plus the transport fields `topic` (always) and `seq` (on `calls`); `rtp` batches
//! are printed one interval per line.

use anyhow::{Context, Result};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use voipsensor::config::{Config, Secret};
use voipsensor::publish::broker::{explain, mqtt_options};
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
}

pub fn run(a: Args) -> Result<ExitCode> {
    let filter = topic::filter(a.site.as_deref(), a.sensor.as_deref())?;
    let mut cfg = Config::default();
    cfg.mqtt.url = a.broker.clone();
    cfg.mqtt.username = a.username.clone();
    cfg.mqtt.ca_file = a.ca_file.clone();
    if let Some(p) = &a.password_file {
        let s = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read --password-file {}", p.display()))?;
        cfg.mqtt.password = Some(Secret::new(s.trim_end_matches(['\r', '\n'])));
    }
    let id = format!("voipsensor-watch-{}", std::process::id());
    // Large enough for any rtp batch a sensor may be configured to send.
    let (mut opts, _) = mqtt_options(&cfg.connect(), &id, 1 << 24)?;
    opts.set_clean_session(true);
    let (client, mut conn) = rumqttc::Client::new(opts, 16);
    let deadline = a.timeout_s.map(|s| Instant::now() + Duration::from_secs(s));
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    let mut connected_once = false;
    loop {
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(w) => w,
                None => return Ok(ExitCode::SUCCESS),
            },
            None => Duration::from_secs(3600),
        };
        let ev = match conn.recv_timeout(wait) {
            Ok(ev) => ev,
            Err(rumqttc::RecvTimeoutError::Timeout) => continue,
            Err(rumqttc::RecvTimeoutError::Disconnected) => return Ok(ExitCode::SUCCESS),
        };
        match ev {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                connected_once = true;
                // Subscribe on every connect: the session is clean.
                client
                    .try_subscribe(filter.clone(), rumqttc::QoS::AtLeastOnce)
                    .context("subscribe")?;
            }
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                log::info!("watching {filter} on {}", a.broker);
            }
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                let lines = match to_json_lines(&p.payload) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("voipsensor watch: {}: {e}", p.topic);
                        continue;
                    }
                };
                for mut l in lines {
                    if let Value::Object(m) = &mut l {
                        m.insert("topic".into(), Value::String(p.topic.clone()));
                    }
                    writeln!(out, "{l}")?;
                    printed += 1;
                    if a.count.is_some_and(|c| printed >= c) {
                        out.flush()?;
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                out.flush()?;
            }
            Ok(_) => {}
            Err(e) => {
                let (msg, fatal) = explain(&e, &a.broker);
                if fatal || !connected_once {
                    anyhow::bail!("{msg}");
                }
                eprintln!("voipsensor watch: {msg}; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
