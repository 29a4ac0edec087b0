//! `voipsensor noc --config noc.toml` (or flags): the NOC-side bridge from the topic tree to
//! Prometheus (`/metrics`), a fleet page (`/`) and site pages. See `src/noc/`.

use super::exit;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use voipsensor::noc::{self, NocSettings};

#[derive(clap::Args)]
pub struct Args {
    /// noc.toml ([mqtt], [http], [limits]); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Broker URL: mqtt://host[:port] or mqtts://host[:port].
    #[arg(long)]
    pub broker: Option<String>,
    /// HTTP address for /metrics and the pages (default 127.0.0.1:9108).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// MQTT v5 shared-subscription group: instances in one group share calls/rtp/kpi.
    #[arg(long)]
    pub share_group: Option<String>,
    /// MQTT client id (default voipsensor-noc-PID).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Most sensors tracked; messages from more are counted and dropped.
    #[arg(long)]
    pub max_sensors: Option<usize>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let mut s = match &a.config {
        Some(p) => NocSettings::load(p).map_err(exit::config)?,
        None => NocSettings::default(),
    };
    if let Some(b) = a.broker {
        s.mqtt.url = b;
    }
    if let Some(l) = a.listen {
        s.http.listen = l;
    }
    if let Some(g) = a.share_group {
        s.mqtt.share_group = Some(g);
    }
    if let Some(c) = a.client_id {
        s.mqtt.client_id = c;
    }
    if let Some(m) = a.max_sensors {
        s.limits.max_sensors = m;
    }
    // The flags are held to the file's rules.
    s.validate().map_err(|e| exit::usage(format!("{e:#}")))?;
    noc::run(s)?;
    Ok(ExitCode::SUCCESS)
}
