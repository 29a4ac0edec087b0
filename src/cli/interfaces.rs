//! `voipsensor interfaces`: capture-capable interfaces with link state and addresses, so a
//! technician can tell which one the mirror cable is on.

use anyhow::Result;
use std::process::ExitCode;
use voipsensor::capture::health::operstate;

#[derive(clap::Args)]
pub struct Args {
    /// One JSON object per interface instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One row of the listing.
#[derive(serde::Serialize)]
pub struct Row {
    pub name: String,
    /// sysfs operstate: up, down, lowerlayerdown, unknown (virtual), ...
    pub link: String,
    pub mac: Option<String>,
    pub addresses: Vec<String>,
    pub loopback: bool,
}

pub fn rows() -> Result<Vec<Row>> {
    let devs = pcap::Device::list().map_err(|e| {
        anyhow::anyhow!("cannot list interfaces: {e} (capturing needs root or CAP_NET_RAW)")
    })?;
    Ok(devs
        .into_iter()
        // pcap's pseudo-devices (any, nflog, nfqueue, dbus, bluetooth) are no mirror port.
        .filter(|d| std::path::Path::new(&format!("/sys/class/net/{}", d.name)).exists())
        .map(|d| Row {
            link: operstate(&d.name),
            mac: std::fs::read_to_string(format!("/sys/class/net/{}/address", d.name))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            addresses: d.addresses.iter().map(|a| a.addr.to_string()).collect(),
            loopback: d.flags.is_loopback(),
            name: d.name,
        })
        .collect())
}

pub fn run(a: Args) -> Result<ExitCode> {
    let rows = rows()?;
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!("{:<16} {:<15} {:<18} ADDRESSES", "INTERFACE", "LINK", "MAC");
        for r in &rows {
            println!(
                "{:<16} {:<15} {:<18} {}",
                r.name,
                r.link,
                r.mac.as_deref().unwrap_or("-"),
                if r.addresses.is_empty() {
                    "(none: fine for a mirror port)".to_string()
                } else {
                    r.addresses.join(" ")
                }
            );
        }
    }
    if rows.is_empty() {
        eprintln!("no capture-capable interface found (run as root or with CAP_NET_RAW)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
