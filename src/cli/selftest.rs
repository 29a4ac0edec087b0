//! `voipsensor selftest --config FILE`: a verdict per item a field technician can act on:
//! configuration, each capture interface, broker reachability, clock.

use anyhow::Result;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use voipsensor::capture::health::operstate;
use voipsensor::capture::live::{Handle, OpenError, Options};
use voipsensor::config;
use voipsensor::publish::broker::BrokerUrl;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    /// Seconds to wait for the broker's TCP port.
    #[arg(long, default_value_t = 5)]
    pub timeout_s: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

fn say(v: Verdict, item: &str, text: &str) {
    let tag = match v {
        Verdict::Ok => "OK  ",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    };
    println!("{tag} {item:<18} {text}");
}

pub fn run(a: Args) -> Result<ExitCode> {
    let mut worst = Verdict::Ok;
    let mut note = |v: Verdict, item: &str, text: &str| {
        worst = worst.max(v);
        say(v, item, text);
    };
    let cfg = match config::load(&a.config) {
        Ok(c) => {
            note(
                Verdict::Ok,
                "config",
                &format!("{} is valid", a.config.display()),
            );
            c
        }
        Err(e) => {
            note(Verdict::Fail, "config", &e.to_string());
            println!("verdict: FAIL");
            return Ok(ExitCode::from(1));
        }
    };

    if cfg.capture.interfaces.is_empty() {
        note(
            Verdict::Fail,
            "interface",
            "capture.interfaces is empty: name the mirror-port interface",
        );
    }
    let opts = Options {
        promisc: cfg.capture.promisc,
        snaplen: cfg.capture.snaplen,
        buffer_bytes: cfg.capture.buffer_mb.saturating_mul(1 << 20),
        timeout_ms: 100,
        bpf: cfg.capture.bpf.clone(),
    };
    for name in &cfg.capture.interfaces {
        let item = format!("interface {name}");
        match Handle::open(name, &opts) {
            Ok(_) => {
                let link = operstate(name);
                if link == "up" || link == "unknown" {
                    note(
                        Verdict::Ok,
                        &item,
                        &format!("opens for capture, link {link}"),
                    );
                } else {
                    note(
                        Verdict::Warn,
                        &item,
                        &format!("opens, but link is {link}: check the cable and the switch port"),
                    );
                }
            }
            Err(OpenError::Absent(s)) | Err(OpenError::Other(s)) => note(Verdict::Fail, &item, &s),
        }
    }

    match cfg.sensor_id() {
        Ok(id) => note(
            Verdict::Ok,
            "sensor id",
            &format!("{}/{id}", cfg.sensor.site),
        ),
        Err(e) => note(Verdict::Fail, "sensor id", &e.to_string()),
    }

    match BrokerUrl::parse(&cfg.mqtt.url) {
        Ok(u) => {
            let item = "broker";
            let addrs: Vec<_> = match (u.host.as_str(), u.port).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    note(
                        Verdict::Fail,
                        item,
                        &format!(
                            "{}: name does not resolve: {e}; check DNS or use an IP address",
                            u.host
                        ),
                    );
                    Vec::new()
                }
            };
            if !addrs.is_empty() {
                let t = Duration::from_secs(a.timeout_s.max(1));
                match addrs
                    .iter()
                    .find_map(|ad| std::net::TcpStream::connect_timeout(ad, t).ok())
                {
                    Some(s) => note(
                        Verdict::Ok,
                        item,
                        &format!(
                            "{} reachable (TCP to {})",
                            cfg.mqtt.url,
                            s.peer_addr().map(|p| p.to_string()).unwrap_or_default()
                        ),
                    ),
                    None => note(
                        Verdict::Fail,
                        item,
                        &format!(
                            "{}: no TCP connection within {} s; check the broker is running and the firewall allows port {}",
                            cfg.mqtt.url,
                            t.as_secs(),
                            u.port
                        ),
                    ),
                }
            }
        }
        Err(e) => note(Verdict::Fail, "broker", &e.to_string()),
    }

    let (v, text) = clock_verdict(std::time::SystemTime::now());
    note(v, "clock", &text);

    println!(
        "verdict: {}",
        match worst {
            Verdict::Ok => "OK",
            Verdict::Warn => "OK with warnings",
            Verdict::Fail => "FAIL",
        }
    );
    Ok(if worst == Verdict::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Timestamps come from the system clock: one before this build, or absurdly far ahead,
/// means no NTP (boards without an RTC boot in 1970).
fn clock_verdict(now: std::time::SystemTime) -> (Verdict, String) {
    // 2024-01-01T00:00:00Z.
    const EARLIEST: u64 = 1_704_067_200;
    const LATEST: u64 = EARLIEST + 30 * 365 * 86_400;
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let synced = std::path::Path::new("/run/systemd/timesync/synchronized").exists();
    if !(EARLIEST..LATEST).contains(&secs) {
        (
            Verdict::Fail,
            format!(
                "system clock reads {secs} s since 1970: set it or enable NTP (timestamps in every event come from it)"
            ),
        )
    } else if synced {
        (Verdict::Ok, "plausible, NTP-synchronized".into())
    } else {
        (
            Verdict::Ok,
            "plausible (NTP synchronization not confirmed by systemd-timesyncd)".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_in_1970_fails_and_today_passes() {
        let epoch = std::time::UNIX_EPOCH + Duration::from_secs(60);
        assert!(clock_verdict(epoch).0 == Verdict::Fail);
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        assert!(clock_verdict(now).0 == Verdict::Ok);
    }
}
