//! What the publisher needs to run: its own settings, filled in by `config` (which sits
//! on top and maps the file onto them), so nothing here knows the configuration file.

use crate::publish::payload::Format;
use crate::publish::privacy::Privacy;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// QoS per topic. `status` is always QoS 1 and retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Qos {
    pub calls: u8,
    pub rtp: u8,
    pub health: u8,
    pub kpi: u8,
}

impl Default for Qos {
    fn default() -> Self {
        Qos {
            calls: 1,
            rtp: 0,
            health: 0,
            kpi: 1,
        }
    }
}

/// How to reach and log in to the broker (the publisher and `watch`).
#[derive(Clone, Default)]
pub struct Connect {
    /// `mqtt://host[:port]` or `mqtts://host[:port]`, see [`BrokerUrl`](crate::publish::broker::BrokerUrl).
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub keepalive_s: u16,
    pub connect_timeout_s: u64,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// Everything the publisher is configured with.
pub struct PublishSettings {
    pub connect: Connect,
    /// Further brokers after `connect.url`, in order of preference (same credentials and
    /// TLS files): used while the ones before are down, left when the first answers again.
    pub fallbacks: Vec<String>,
    /// Where the queue goes when the process stops with a broker down (`run` only).
    pub spool: Option<crate::publish::spool::SpoolSettings>,
    pub site: String,
    pub sensor: String,
    /// Capture interfaces (or the file replayed), named in the status.
    pub interfaces: Vec<String>,
    pub qos: Qos,
    pub payload: Format,
    /// Largest `rtp` message; a second's batch is split to stay under it.
    pub max_message_bytes: usize,
    pub outbox_messages: u32,
    pub outbox_bytes: u64,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub health_interval_s: u32,
    pub kpi_interval_s: u32,
    pub privacy: Privacy,
}
