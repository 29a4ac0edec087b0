//! `voipsensor selftest --config FILE`: would this sensor work here? A verdict per item a
//! field technician can act on — configuration, each capture interface, capabilities, the
//! broker (a real MQTT CONNECT with the configured credentials and TLS, then a publish /
//! subscribe round trip), the clock — and an exit code: 0 works (perhaps with warnings),
//! 3 configuration invalid, 5 broker refused, 1 anything else that fails.

use super::exit::Exit;
use anyhow::Result;
use rumqttc::{Event, Packet, QoS, SubscribeReasonCode};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use voipsensor::capture::health::operstate;
use voipsensor::capture::live::{Handle, OpenError};
use voipsensor::config::{self, Config};
use voipsensor::publish::broker::{explain, mqtt_options};
use voipsensor::publish::topic::Topics;

#[derive(clap::Args)]
pub struct Args {
    /// The sensor's TOML configuration file (the one `run --config` uses).
    #[arg(long)]
    pub config: PathBuf,
    /// Seconds to wait for the broker (CONNACK, then the round trip).
    #[arg(long, default_value_t = 5)]
    pub timeout_s: u64,
    /// One JSON object (items and verdict) instead of text: for the boot log and the NOC.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Serialize)]
struct Item {
    item: String,
    verdict: Verdict,
    text: String,
}

#[derive(Default)]
struct Report {
    items: Vec<Item>,
    exit: Option<Exit>,
}

impl Report {
    fn note(&mut self, verdict: Verdict, item: &str, text: impl Into<String>) {
        self.items.push(Item {
            item: item.into(),
            verdict,
            text: text.into(),
        });
    }
    /// A failure with its own exit code (the first one decides).
    fn fail(&mut self, exit: Exit, item: &str, text: impl Into<String>) {
        self.exit.get_or_insert(exit);
        self.note(Verdict::Fail, item, text);
    }
    fn worst(&self) -> Verdict {
        self.items
            .iter()
            .map(|i| i.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let mut r = Report::default();
    match config::load(&a.config) {
        Ok(cfg) => {
            r.note(
                Verdict::Ok,
                "config",
                format!("{} is valid", a.config.display()),
            );
            check(&cfg, Duration::from_secs(a.timeout_s.max(1)), &mut r);
        }
        Err(e) => r.fail(Exit::Config, "config", e.to_string()),
    }
    let worst = r.worst();
    let verdict = match worst {
        Verdict::Ok => "OK",
        Verdict::Warn => "OK with warnings",
        Verdict::Fail => "FAIL",
    };
    if a.json {
        let v = serde_json::json!({ "verdict": worst, "items": r.items });
        println!("{v}");
    } else {
        for i in &r.items {
            let tag = match i.verdict {
                Verdict::Ok => "OK  ",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            println!("{tag} {:<18} {}", i.item, i.text);
        }
        println!("verdict: {verdict}");
    }
    Ok(if worst == Verdict::Fail {
        r.exit.unwrap_or(Exit::Runtime).into()
    } else {
        ExitCode::SUCCESS
    })
}

fn check(cfg: &Config, timeout: Duration, r: &mut Report) {
    if cfg.capture.interfaces.is_empty() {
        r.fail(
            Exit::Config,
            "interface",
            "capture.interfaces is empty: name the mirror-port interface",
        );
    }
    let opts = cfg.capture_options();
    for name in &cfg.capture.interfaces {
        interface(name, &opts, r);
    }
    capabilities(r);
    let id = match cfg.sensor_id() {
        Ok(id) => {
            r.note(
                Verdict::Ok,
                "sensor id",
                format!("{}/{id}", cfg.sensor.site),
            );
            Some(id)
        }
        Err(e) => {
            r.fail(Exit::Config, "sensor id", e.to_string());
            None
        }
    };
    broker(cfg, id.as_deref().unwrap_or("selftest"), timeout, r);
    let (v, text) = clock_verdict(std::time::SystemTime::now(), ntp_synced());
    r.note(v, "clock", text);
}

fn sys(name: &str, leaf: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join(leaf))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Present, up, opens for capture (promiscuous when configured), link speed and driver.
fn interface(name: &str, opts: &voipsensor::capture::live::Options, r: &mut Report) {
    let item = format!("interface {name}");
    if !Path::new("/sys/class/net").join(name).exists() {
        r.fail(
            Exit::Runtime,
            &item,
            "absent: no such interface (`voipsensor interfaces` lists those present)",
        );
        return;
    }
    let speed = match sys(name, "speed").and_then(|s| s.parse::<i64>().ok()) {
        Some(s) if s > 0 => format!("{s} Mb/s"),
        _ => "speed unknown".into(),
    };
    let driver = std::fs::read_link(Path::new("/sys/class/net").join(name).join("device/driver"))
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "virtual".into());
    let mode = if opts.promisc {
        "opens for capture in promiscuous mode"
    } else {
        "opens for capture (promiscuous mode off in the config)"
    };
    match Handle::open(name, opts) {
        Ok(_) => {
            let link = operstate(name);
            let text = format!("{mode}, link {link}, {speed}, driver {driver}");
            if link == "up" || link == "unknown" {
                r.note(Verdict::Ok, &item, text);
            } else {
                r.note(
                    Verdict::Warn,
                    &item,
                    format!("{text}: check the cable and the switch port"),
                );
            }
        }
        Err(OpenError::Absent(s)) | Err(OpenError::Other(s)) => r.fail(Exit::Runtime, &item, s),
    }
}

/// CAP_NET_RAW (12 is NET_ADMIN, 13 NET_RAW) from /proc/self/status; root has them all.
fn capabilities(r: &mut Report) {
    let eff = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        })
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0);
    let raw = eff & (1 << 13) != 0;
    let admin = eff & (1 << 12) != 0;
    let text = match (raw, admin) {
        (true, true) => "CAP_NET_RAW and CAP_NET_ADMIN held".to_string(),
        (true, false) => {
            "CAP_NET_RAW held, CAP_NET_ADMIN missing: promiscuous mode may be refused".into()
        }
        _ => "CAP_NET_RAW missing: capture needs it: \
              setcap cap_net_raw,cap_net_admin+ep /usr/bin/voipsensor, or run as root with --user"
            .into(),
    };
    r.note(
        if raw && admin {
            Verdict::Ok
        } else {
            Verdict::Warn
        },
        "capabilities",
        text,
    );
}

/// A real CONNECT with the configured credentials and TLS, then a round trip on the
/// sensor's own topic tree (`…/{sensor}/selftest`: a message on `status` itself would
/// show NOC subscribers a status the sensor never had). The client id is the sensor's
/// with `-selftest`, so a sensor already running is not disconnected.
fn broker(cfg: &Config, sensor: &str, timeout: Duration, r: &mut Report) {
    let url = cfg.mqtt.url.as_str();
    let (opts, _) = match mqtt_options(&cfg.connect(), &format!("{sensor}-selftest"), 64 * 1024) {
        Ok(o) => o,
        Err(e) => {
            r.fail(Exit::Config, "broker", format!("{e:#}"));
            return;
        }
    };
    let topic = match Topics::new(&cfg.sensor.site, sensor) {
        Ok(t) => format!("{}/selftest", t.base()),
        Err(e) => {
            r.fail(Exit::Config, "broker", e.to_string());
            return;
        }
    };
    let who = match &cfg.mqtt.username {
        Some(u) => format!("as {u}"),
        None => "anonymously".into(),
    };
    let (client, mut conn) = rumqttc::Client::new(opts, 10);
    let start = Instant::now();
    let deadline = start + timeout;
    let nonce = format!("voipsensor selftest {}", std::process::id());
    let mut connected = false;
    let mut published = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = match conn.recv_timeout(left) {
            Err(_) => {
                let text = if !connected {
                    format!("{url}: no CONNACK within {} s", timeout.as_secs())
                } else {
                    format!(
                        "message on {topic} not received back within {} s: the broker's ACL may deny \
                         writing or reading it",
                        timeout.as_secs()
                    )
                };
                let item = if connected { "round trip" } else { "broker" };
                r.fail(Exit::Runtime, item, text);
                break;
            }
            Ok(Err(e)) => {
                let (msg, fatal) = explain(&e, url);
                let item = if connected { "round trip" } else { "broker" };
                r.fail(
                    if fatal {
                        Exit::BrokerRefused
                    } else {
                        Exit::Runtime
                    },
                    item,
                    msg,
                );
                break;
            }
            Ok(Ok(ev)) => ev,
        };
        match ev {
            Event::Incoming(Packet::ConnAck(_)) => {
                connected = true;
                r.note(
                    Verdict::Ok,
                    "broker",
                    format!("{url}: CONNECT accepted {who} (CONNACK: accepted)"),
                );
                if client.subscribe(topic.as_str(), QoS::AtLeastOnce).is_err() {
                    break;
                }
            }
            Event::Incoming(Packet::SubAck(s)) => {
                if s.return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    r.fail(
                        Exit::BrokerRefused,
                        "round trip",
                        format!(
                            "subscription to {topic} refused: not authorized by the broker's ACL"
                        ),
                    );
                    break;
                }
                if !published {
                    published = true;
                    if client
                        .publish(topic.as_str(), QoS::AtLeastOnce, false, nonce.as_bytes())
                        .is_err()
                    {
                        break;
                    }
                }
            }
            Event::Incoming(Packet::Publish(p)) if p.payload.as_ref() == nonce.as_bytes() => {
                r.note(
                    Verdict::Ok,
                    "round trip",
                    format!(
                        "published and received back on {topic} in {} ms",
                        start.elapsed().as_millis()
                    ),
                );
                break;
            }
            _ => {}
        }
    }
    client.disconnect().ok();
    // Let DISCONNECT reach the broker; errors here change nothing.
    let _ = conn.recv_timeout(Duration::from_millis(200));
}

/// The kernel's NTP state (`adjtimex` read-only): `Some(true)` synchronized.
fn ntp_synced() -> Option<bool> {
    // SAFETY: `modes = 0` only reads the kernel's state into the zeroed struct.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut t) };
    // 5 is TIME_ERROR: the clock is not synchronized.
    (state >= 0).then_some(state != 5 && t.status & libc::STA_UNSYNC == 0)
}

/// Timestamps come from the system clock: one before this build, or absurdly far ahead,
/// means no NTP (boards without an RTC boot in 1970).
fn clock_verdict(now: std::time::SystemTime, synced: Option<bool>) -> (Verdict, String) {
    // 2024-01-01T00:00:00Z.
    const EARLIEST: u64 = 1_704_067_200;
    const LATEST: u64 = EARLIEST + 30 * 365 * 86_400;
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if !(EARLIEST..LATEST).contains(&secs) {
        return (
            Verdict::Fail,
            format!(
                "system clock reads {secs} s since 1970: set it or enable NTP (timestamps in every event come from it)"
            ),
        );
    }
    match synced {
        Some(true) => (Verdict::Ok, "plausible, NTP-synchronized (kernel)".into()),
        Some(false) => (
            Verdict::Warn,
            "plausible, but the kernel says NTP is not synchronized: event timestamps may drift"
                .into(),
        ),
        None => (
            Verdict::Warn,
            "plausible; NTP state unreadable (adjtimex failed)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_in_1970_fails_and_today_passes_when_synced() {
        let epoch = std::time::UNIX_EPOCH + Duration::from_secs(60);
        assert!(clock_verdict(epoch, Some(true)).0 == Verdict::Fail);
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        assert!(clock_verdict(now, Some(true)).0 == Verdict::Ok);
        assert!(clock_verdict(now, Some(false)).0 == Verdict::Warn);
    }
}
