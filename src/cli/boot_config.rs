//! `voipsensor boot-config FILE`: the appliance's `/init` asks the binary, never a shell TOML
//! parser, what sensor.toml says. Valid: prints `VS_*='value'` lines for `.` in busybox sh.
//! Invalid: prints the error (key and fix) on stderr, exits 1, and with `--report` also
//! publishes a retained `config_error` status to the broker, when the file still names one.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use voipsensor::config::{self, Config};
use voipsensor::network::Addressing;
use voipsensor::publish::payload::{self, Format, Message, State, Status};
use voipsensor::publish::topic::{Leaf, Topics};

#[derive(clap::Args)]
pub struct Args {
    /// The sensor.toml on the boot partition.
    pub file: PathBuf,
    /// When the file is invalid, publish a retained config_error status (needs the uplink up).
    #[arg(long)]
    pub report: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    match config::load(&a.file) {
        Ok(cfg) => {
            print!("{}", shell_lines(&cfg));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let msg = e.to_string();
            eprintln!("voipsensor: CONFIG ERROR: {msg}");
            if a.report {
                match report(&a.file, &msg) {
                    Ok(topic) => eprintln!("voipsensor: config_error status published on {topic}"),
                    Err(r) => eprintln!("voipsensor: config_error not published: {r:#}"),
                }
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// Single-quoted for sh: `'` becomes `'\''`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn shell_lines(cfg: &Config) -> String {
    let n = &cfg.network;
    let (address, gateway) = match n.validate() {
        Ok(Addressing::Static {
            address,
            prefix,
            gateway,
        }) => (
            format!("{address}/{prefix}"),
            gateway.map(|g| g.to_string()).unwrap_or_default(),
        ),
        _ => ("dhcp".to_string(), String::new()),
    };
    let join = |v: Vec<String>| v.join(" ");
    let vars = [
        ("VS_SITE", cfg.sensor.site.clone()),
        ("VS_SENSOR", cfg.sensor.id.clone().unwrap_or_default()),
        ("VS_BROKER", cfg.mqtt.url.clone()),
        ("VS_MIRRORS", cfg.capture.interfaces.join(" ")),
        ("VS_UPLINK", n.uplink.clone()),
        ("VS_ADDRESS", address),
        ("VS_GATEWAY", gateway),
        (
            "VS_DNS",
            join(n.dns.iter().map(ToString::to_string).collect()),
        ),
        ("VS_NTP", n.ntp.join(" ")),
        ("VS_LED", if n.led { "1" } else { "0" }.to_string()),
    ];
    vars.iter()
        .map(|(k, v)| format!("{k}={}\n", quote(v)))
        .collect()
}

/// What can still be read from an invalid file: broker, credentials, names, payload format.
fn salvage(file: &std::path::Path) -> Result<(Config, String)> {
    let text = std::fs::read_to_string(file)?;
    let t: toml::Table = toml::from_str(&text).context("not even TOML: no broker to tell")?;
    let get = |sec: &str, key: &str| {
        t.get(sec)
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let url = get("mqtt", "url").unwrap_or_else(|| Config::default().mqtt.url);
    let Some(site) = get("sensor", "site") else {
        bail!("sensor.site unreadable: no topic to publish on");
    };
    let sensor = match get("sensor", "id") {
        Some(id) => id,
        None => config::id_from_mac("mirror0").unwrap_or_else(|_| "vs-unconfigured".into()),
    };
    let format = match get("output", "payload").as_deref() {
        Some("json") => Format::Json,
        _ => Format::Postcard,
    };
    let mut cfg = config::options_from_cli(&url, &site, &sensor, format)?;
    cfg.mqtt.username = get("mqtt", "username");
    cfg.mqtt.password = get("mqtt", "password").map(config::Secret::new);
    Ok((cfg, sensor))
}

/// Publishes the retained config_error status and waits for the broker's PUBACK.
fn report(file: &std::path::Path, msg: &str) -> Result<String> {
    let (cfg, sensor) = salvage(file)?;
    let topics = Topics::new(&cfg.sensor.site, &sensor)?;
    let status = Status {
        state: State::ConfigError,
        site: cfg.sensor.site.clone(),
        sensor: sensor.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        interfaces: Vec::new(),
        vlans: Vec::new(),
        encapsulations: Vec::new(),
        started: voipsensor::track::event::Ts(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
        ),
        clock_synced: voipsensor::clock::synchronised(),
        error: Some(msg.to_string()),
    };
    let bytes = payload::encode(&Message::Status(status), cfg.output.payload);
    let (opts, _) = voipsensor::publish::broker::mqtt_options(&cfg.connect(), &sensor, 64 * 1024)?;
    let (client, mut conn) = rumqttc::Client::new(opts, 10);
    let topic = topics.get(Leaf::Status).to_string();
    client.publish(topic.clone(), rumqttc::QoS::AtLeastOnce, true, bytes)?;
    let deadline = Instant::now() + Duration::from_secs(cfg.mqtt.connect_timeout_s + 5);
    while Instant::now() < deadline {
        match conn.recv_timeout(Duration::from_secs(1)) {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) => {
                let _ = client.disconnect();
                return Ok(topic);
            }
            Ok(Ok(_)) | Err(rumqttc::RecvTimeoutError::Timeout) => {}
            Ok(Err(e)) => bail!(
                "{}",
                voipsensor::publish::broker::explain(&e, &cfg.mqtt.url).0
            ),
            Err(rumqttc::RecvTimeoutError::Disconnected) => bail!("connection closed"),
        }
    }
    bail!("no PUBACK from {} in time", cfg.mqtt.url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_values_survive_quotes() {
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn a_static_uplink_is_printed_for_init() {
        let cfg = config::parse(
            "[sensor]\nsite = \"paris-01\"\nid = \"s1\"\n[network]\naddress = \"192.0.2.10/24\"\ngateway = \"192.0.2.1\"\nntp = []\n",
            std::path::Path::new("sensor.toml"),
        )
        .unwrap();
        let s = shell_lines(&cfg);
        assert!(s.contains("VS_ADDRESS='192.0.2.10/24'\n"), "{s}");
        assert!(s.contains("VS_GATEWAY='192.0.2.1'\n"), "{s}");
        assert!(s.contains("VS_NTP=''\n"), "{s}");
        assert!(s.contains("VS_SITE='paris-01'\n"), "{s}");
    }
}
