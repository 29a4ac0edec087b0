//! The sensor's TOML configuration: every section, its defaults and its validation.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default). Errors name
//! the file, the key, the bad value and what is allowed. Secrets (MQTT password, privacy
//! secret) are read from the file or from a `*_file` path and never printed: [`Secret`]'s
//! `Debug` is redacted, so `{:?}` of a whole [`Config`] is safe to log.
//!
//! This module sits on top: it maps the file onto each layer's own settings
//! ([`Config::tracker_config`], [`Config::capture_options`], [`Config::policy_config`],
//! [`PublishSettings`] via `TryFrom<&Config>`, [`Config::connect`]) and no layer imports
//! it back. Command-line flags are applied with [`load_with`] before the one validation.

use crate::capture::live::Options as CaptureOptions;
use crate::policy::PolicyConfig;
use crate::publish::broker::{self, BrokerUrl};
use crate::publish::payload::Format;
use crate::publish::privacy::{Mode, Privacy};
use crate::publish::settings::{Connect, PublishSettings};
use crate::publish::topic;
use crate::track::tracker::TrackerConfig;
use serde::{Deserialize, Serialize};
mod error;

pub use error::ConfigError;
use error::invalid;
use std::fmt;
use std::path::{Path, PathBuf};

/// A password or key: kept out of logs and error messages.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: Capture,
    pub sensor: Sensor,
    pub mqtt: Mqtt,
    pub output: Output,
    pub privacy: PrivacyCfg,
    pub tracker: Tracker,
    /// The appliance image's uplink, DNS, NTP and LED (`src/network.rs`).
    pub network: crate::network::NetworkConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capture {
    /// Mirror-port interfaces to capture from (the live daemon; `replay` ignores them).
    pub interfaces: Vec<String>,
    /// Kernel filter; empty means everything (SIP may sit on any port, RTP always does).
    pub bpf: String,
    pub snaplen: u32,
    /// Kernel ring buffer per interface, MiB.
    pub buffer_mb: u32,
    pub promisc: bool,
    /// Analyse byte-identical mirror copies of a frame too (default: dropped and counted).
    pub keep_duplicates: bool,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            interfaces: Vec::new(),
            bpf: String::new(),
            snaplen: 65535,
            buffer_mb: 64,
            promisc: true,
            keep_duplicates: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sensor {
    /// Site name: one MQTT topic level. Required.
    pub site: String,
    /// Sensor id (topic level and MQTT client id); default `vs-<MAC of the first capture
    /// interface>`, see [`Config::sensor_id`].
    pub id: Option<String>,
    /// Unprivileged user the live sensor switches to once its capture handles are open
    /// (`voipsensor run --user` overrides). Default: stay as started.
    pub user: Option<String>,
}

/// QoS per topic (the publisher's own type).
pub use crate::publish::settings::Qos;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mqtt {
    /// `mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883).
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// CA bundle (PEM) for `mqtts://`; default the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and key (PEM) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub keepalive_s: u16,
    pub qos: Qos,
    /// Largest `rtp` message; a second's batch is split to stay under it.
    pub max_message_bytes: u32,
    /// Outbox bounds: messages and bytes held while the broker is unreachable.
    pub outbox_messages: u32,
    pub outbox_bytes: u64,
    /// Reconnect backoff: first wait, doubled per failure up to the max, with ±25 % jitter.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Connection (TCP + TLS + CONNACK) timeout.
    pub connect_timeout_s: u64,
    /// Further brokers after `url`, in order of preference (same credentials and TLS
    /// files): used while the ones before are down; the first is probed and returned to.
    pub brokers: Vec<String>,
    /// `run`: where the queue is written when stopping with the broker down (RAM-backed
    /// storage), sent first by the next start; at most `spool_bytes`.
    pub spool: PathBuf,
    pub spool_bytes: u64,
}

impl Default for Mqtt {
    fn default() -> Self {
        Mqtt {
            url: "mqtt://127.0.0.1:1883".into(),
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            keepalive_s: 30,
            qos: Qos::default(),
            max_message_bytes: 16 * 1024,
            outbox_messages: 100_000,
            outbox_bytes: 64 * 1024 * 1024,
            reconnect_min_ms: 500,
            reconnect_max_ms: 60_000,
            connect_timeout_s: 10,
            brokers: Vec::new(),
            spool: crate::publish::spool::default_dir().to_path_buf(),
            spool_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Output {
    pub payload: Format,
    /// `health` period (packet time in replay, wall time live).
    pub health_interval_s: u32,
    /// `kpi` period.
    pub kpi_interval_s: u32,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            payload: Format::Postcard,
            health_interval_s: 10,
            kpi_interval_s: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyCfg {
    pub mode: Mode,
    /// `mask`: letters/digits kept at the end.
    pub keep_digits: u8,
    /// `hash`: the per-deployment HMAC key (at least 16 bytes).
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
}

impl Default for PrivacyCfg {
    fn default() -> Self {
        PrivacyCfg {
            mode: Mode::None,
            keep_digits: 4,
            secret: None,
            secret_file: None,
        }
    }
}

impl PrivacyCfg {
    /// The rule to apply (secrets already resolved by [`load`]).
    pub fn rule(&self) -> Privacy {
        match self.mode {
            Mode::None => Privacy::none(),
            Mode::Mask => Privacy::mask(usize::from(self.keep_digits)),
            Mode::Hash => Privacy::hash(
                self.secret
                    .as_ref()
                    .map(|s| s.expose().as_bytes())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Table capacities and timeouts of the tracker (mapped by the tracker's own options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tracker {
    pub max_calls: u32,
    pub max_streams: u32,
    pub max_media_endpoints: u32,
    pub max_ip_fragments: u32,
    pub max_tcp_streams: u32,
    /// INVITE without a final answer.
    pub setup_timeout_s: u32,
    /// Answered call with neither signalling nor media.
    pub call_idle_timeout_s: u32,
    /// Stream without packets.
    pub stream_timeout_s: u32,
    /// Answered call whose media stopped in one or both directions before `media_health`.
    pub media_silence_s: u32,
}

impl Default for Tracker {
    // The tracker's own defaults, so a config without [tracker] behaves like `replay`.
    fn default() -> Self {
        let t = TrackerConfig::default();
        Tracker {
            max_calls: t.calls as u32,
            max_streams: t.media.streams as u32,
            max_media_endpoints: t.media.endpoints as u32,
            max_ip_fragments: t.fragments as u32,
            max_tcp_streams: t.tcp_streams as u32,
            setup_timeout_s: t.timeouts.setup.as_secs() as u32,
            call_idle_timeout_s: t.timeouts.no_media.as_secs() as u32,
            stream_timeout_s: t.media.stream_timeout.as_secs() as u32,
            media_silence_s: 5,
        }
    }
}

impl Tracker {
    /// The tracker's configuration from this section.
    pub fn tracker_config(&self) -> TrackerConfig {
        use embassy_time::Duration;
        let d = TrackerConfig::default();
        TrackerConfig {
            calls: self.max_calls as usize,
            fragments: self.max_ip_fragments as usize,
            tcp_streams: self.max_tcp_streams as usize,
            timeouts: crate::track::call::CallTimeouts {
                setup: Duration::from_secs(self.setup_timeout_s.into()),
                no_media: Duration::from_secs(self.call_idle_timeout_s.into()),
                ..d.timeouts
            },
            media: crate::track::media::MediaConfig {
                streams: self.max_streams as usize,
                endpoints: self.max_media_endpoints as usize,
                stream_timeout: Duration::from_secs(self.stream_timeout_s.into()),
                health_silence: Duration::from_secs(self.media_silence_s.into()),
                ..d.media
            },
            ..d
        }
    }
}

impl Config {
    /// The tracker's configuration (`replay` and `run` alike).
    pub fn tracker_config(&self) -> TrackerConfig {
        self.tracker.tracker_config()
    }

    /// The live policy's settings; `no_traffic_s` is a command-line flag only.
    pub fn policy_config(&self, no_traffic_s: u64) -> PolicyConfig {
        PolicyConfig {
            no_traffic_s,
            health_interval_s: self.output.health_interval_s,
        }
    }

    /// How capture handles are opened.
    pub fn capture_options(&self) -> CaptureOptions {
        CaptureOptions {
            promisc: self.capture.promisc,
            snaplen: self.capture.snaplen,
            buffer_bytes: self.capture.buffer_mb.saturating_mul(1 << 20),
            timeout_ms: 100,
            bpf: self.capture.bpf.clone(),
        }
    }

    /// How to reach the broker.
    pub fn connect(&self) -> Connect {
        let m = &self.mqtt;
        Connect {
            url: m.url.clone(),
            username: m.username.clone(),
            password: m.password.as_ref().map(|p| p.expose().to_string()),
            ca_file: m.ca_file.clone(),
            client_cert: m.client_cert.clone(),
            client_key: m.client_key.clone(),
            keepalive_s: m.keepalive_s,
            connect_timeout_s: m.connect_timeout_s,
        }
    }

    /// The sensor id: `sensor.id`, or `vs-` and the MAC of the first capture interface.
    pub fn sensor_id(&self) -> Result<String, ConfigError> {
        if let Some(id) = &self.sensor.id {
            return Ok(id.clone());
        }
        let Some(ifname) = self.capture.interfaces.first() else {
            return Err(invalid(
                "sensor.id",
                "(unset)",
                "cannot be derived without a capture interface",
                "set sensor.id, or capture.interfaces so it can be derived from the NIC's MAC",
            ));
        };
        id_from_mac(ifname)
    }

    /// Checks ranges and cross-field rules; reads `*_file` secrets relative to `base`.
    fn validate(&mut self, base: &Path) -> Result<(), ConfigError> {
        self.network.validate().map_err(|e| ConfigError::Invalid {
            key: e.key.into(),
            value: e.value,
            wrong: "not allowed".into(),
            allowed: e.allowed,
        })?;
        let c = &self.capture;
        for i in &c.interfaces {
            if i.is_empty() || i.len() > 15 || i.contains('/') || i.chars().any(char::is_whitespace)
            {
                return Err(invalid(
                    "capture.interfaces",
                    format!("{i:?}"),
                    "not an interface name",
                    "interface names of 1 to 15 characters, no '/' or whitespace",
                ));
            }
        }
        range("capture.snaplen", c.snaplen.into(), 96, 262_144)?;
        range("capture.buffer_mb", c.buffer_mb.into(), 1, 4096)?;

        if self.sensor.site.is_empty() {
            return Err(invalid(
                "sensor.site",
                "(unset)",
                "missing",
                "a site name is required (one MQTT topic level)",
            ));
        }
        topic::validate_name("site", &self.sensor.site).map_err(|e| {
            invalid(
                "sensor.site",
                format!("{:?}", self.sensor.site),
                "not a topic level",
                e.to_string(),
            )
        })?;
        if let Some(id) = &self.sensor.id {
            topic::validate_name("sensor", id).map_err(|e| {
                invalid(
                    "sensor.id",
                    format!("{id:?}"),
                    "not a topic level",
                    e.to_string(),
                )
            })?;
        }

        let m = &mut self.mqtt;
        let url = BrokerUrl::parse(&m.url).map_err(|e| {
            invalid(
                "mqtt.url",
                format!("{:?}", e.url),
                e.why,
                "allowed mqtt://[user:password@]host[:port] or mqtts://…",
            )
        })?;
        // `mqtt://user:password@host` is accepted: the credentials move to their keys, so
        // the URL that is printed and passed on holds no password.
        if let (stripped, Some((user, password))) = broker::split_credentials(&m.url) {
            if m.username.is_some() || m.password.is_some() || m.password_file.is_some() {
                return Err(invalid(
                    "mqtt.url",
                    format!("{:?}", broker::redact(&m.url)),
                    "credentials both in the URL and in mqtt.username/password",
                    "give them in one place",
                ));
            }
            m.username = Some(user);
            m.password = password.map(Secret::new);
            m.url = stripped;
        }
        for (i, b) in m.brokers.iter().enumerate() {
            let key = format!("mqtt.brokers[{i}]");
            let u = BrokerUrl::parse(b).map_err(|e| {
                invalid(
                    &key,
                    format!("{:?}", e.url),
                    e.why,
                    "allowed mqtt://host[:port] or mqtts://host[:port]",
                )
            })?;
            if broker::split_credentials(b).1.is_some() {
                return Err(invalid(
                    &key,
                    format!("{:?}", broker::redact(b)),
                    "credentials in a fallback broker's URL",
                    "every broker uses mqtt.username/password",
                ));
            }
            if u.tls != url.tls {
                return Err(invalid(
                    &key,
                    format!("{b:?}"),
                    "mixes mqtt:// and mqtts:// with mqtt.url",
                    "use the same scheme for every broker",
                ));
            }
        }
        range("mqtt.spool_bytes", m.spool_bytes, 4096, 1 << 30)?;
        range("mqtt.keepalive_s", m.keepalive_s.into(), 5, 3600)?;
        for (k, q) in [
            ("mqtt.qos.calls", m.qos.calls),
            ("mqtt.qos.rtp", m.qos.rtp),
            ("mqtt.qos.health", m.qos.health),
            ("mqtt.qos.kpi", m.qos.kpi),
        ] {
            range(k, q.into(), 0, 1)?;
        }
        range(
            "mqtt.max_message_bytes",
            m.max_message_bytes.into(),
            1024,
            1 << 24,
        )?;
        range(
            "mqtt.outbox_messages",
            m.outbox_messages.into(),
            16,
            10_000_000,
        )?;
        range("mqtt.outbox_bytes", m.outbox_bytes, 64 * 1024, 4 << 30)?;
        if m.outbox_bytes < u64::from(m.max_message_bytes) * 4 {
            return Err(invalid(
                "mqtt.outbox_bytes",
                m.outbox_bytes,
                "too small for the largest message",
                format!(
                    "at least 4 x mqtt.max_message_bytes ({})",
                    u64::from(m.max_message_bytes) * 4
                ),
            ));
        }
        range("mqtt.reconnect_min_ms", m.reconnect_min_ms, 10, 600_000)?;
        range("mqtt.reconnect_max_ms", m.reconnect_max_ms, 10, 3_600_000)?;
        if m.reconnect_min_ms > m.reconnect_max_ms {
            return Err(invalid(
                "mqtt.reconnect_min_ms",
                m.reconnect_min_ms,
                format!(
                    "reconnect_min_ms must be ≤ reconnect_max_ms ({})",
                    m.reconnect_max_ms
                ),
                "lower reconnect_min_ms or raise reconnect_max_ms",
            ));
        }
        range("mqtt.connect_timeout_s", m.connect_timeout_s, 1, 300)?;
        secret_or_file(base, &mut m.password, &m.password_file, "mqtt.password")?;
        if m.password.is_some() && m.username.is_none() {
            return Err(invalid(
                "mqtt.username",
                "(unset)",
                "missing",
                "a username is required when a password is set",
            ));
        }
        let tls_files = m.ca_file.is_some() || m.client_cert.is_some() || m.client_key.is_some();
        if tls_files && !url.tls {
            return Err(invalid(
                "mqtt.url",
                format!("{:?}", broker::redact(&m.url)),
                "not TLS",
                "mqtts:// when ca_file, client_cert or client_key is set",
            ));
        }
        if m.client_cert.is_some() != m.client_key.is_some() {
            return Err(invalid(
                "mqtt.client_key",
                "(one of the pair)",
                "set without its partner",
                "client_cert and client_key together",
            ));
        }
        for (k, p) in [
            ("mqtt.ca_file", &mut m.ca_file),
            ("mqtt.client_cert", &mut m.client_cert),
            ("mqtt.client_key", &mut m.client_key),
        ] {
            if let Some(p) = p {
                *p = base.join(&*p);
                std::fs::metadata(&*p).map_err(|err| ConfigError::Io {
                    path: p.clone(),
                    what: k.into(),
                    err,
                })?;
            }
        }

        let o = &self.output;
        range(
            "output.health_interval_s",
            o.health_interval_s.into(),
            1,
            3600,
        )?;
        range("output.kpi_interval_s", o.kpi_interval_s.into(), 10, 86_400)?;

        let p = &mut self.privacy;
        range("privacy.keep_digits", p.keep_digits.into(), 0, 16)?;
        secret_or_file(base, &mut p.secret, &p.secret_file, "privacy.secret")?;
        if p.mode == Mode::Hash {
            match &p.secret {
                None => {
                    return Err(invalid(
                        "privacy.secret",
                        "(unset)",
                        "missing",
                        "mode = \"hash\" needs privacy.secret or privacy.secret_file",
                    ));
                }
                Some(s) if s.expose().len() < 16 => {
                    return Err(invalid(
                        "privacy.secret",
                        "<redacted>",
                        "too short",
                        "at least 16 bytes",
                    ));
                }
                _ => {}
            }
        }

        let t = &self.tracker;
        for (k, v) in [
            ("tracker.max_calls", t.max_calls),
            ("tracker.max_streams", t.max_streams),
            ("tracker.max_media_endpoints", t.max_media_endpoints),
            ("tracker.max_ip_fragments", t.max_ip_fragments),
            ("tracker.max_tcp_streams", t.max_tcp_streams),
        ] {
            range(k, v.into(), 1, 10_000_000)?;
        }
        for (k, v) in [
            ("tracker.setup_timeout_s", t.setup_timeout_s),
            ("tracker.call_idle_timeout_s", t.call_idle_timeout_s),
            ("tracker.stream_timeout_s", t.stream_timeout_s),
            ("tracker.media_silence_s", t.media_silence_s),
        ] {
            range(k, v.into(), 1, 86_400)?;
        }
        Ok(())
    }
}

/// The publisher's settings; fails only when the sensor id cannot be derived.
impl TryFrom<&Config> for PublishSettings {
    type Error = ConfigError;
    fn try_from(c: &Config) -> Result<PublishSettings, ConfigError> {
        Ok(PublishSettings {
            connect: c.connect(),
            fallbacks: c.mqtt.brokers.clone(),
            spool: None,
            site: c.sensor.site.clone(),
            sensor: c.sensor_id()?,
            interfaces: c.capture.interfaces.clone(),
            qos: c.mqtt.qos,
            payload: c.output.payload,
            max_message_bytes: c.mqtt.max_message_bytes as usize,
            outbox_messages: c.mqtt.outbox_messages,
            outbox_bytes: c.mqtt.outbox_bytes,
            reconnect_min: std::time::Duration::from_millis(c.mqtt.reconnect_min_ms),
            reconnect_max: std::time::Duration::from_millis(c.mqtt.reconnect_max_ms),
            health_interval_s: c.output.health_interval_s,
            kpi_interval_s: c.output.kpi_interval_s,
            privacy: c.privacy.rule(),
        })
    }
}

fn range(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(invalid(
            key,
            v,
            "out of range",
            format!("allowed {lo} to {hi}"),
        ));
    }
    Ok(())
}

/// A secret given inline as `key` or in the file `key_file` (not both): the file's is read
/// into `secret`.
fn secret_or_file(
    base: &Path,
    secret: &mut Option<Secret>,
    file: &Option<PathBuf>,
    key: &str,
) -> Result<(), ConfigError> {
    let file_key = format!("{key}_file");
    if secret.is_some() && file.is_some() {
        return Err(invalid(
            &file_key,
            "(set)",
            format!("set together with {key}"),
            format!("only one of {key} and {file_key}"),
        ));
    }
    if let Some(f) = file {
        *secret = Some(read_secret(base, f, &file_key)?);
    }
    Ok(())
}

fn read_secret(base: &Path, p: &Path, key: &str) -> Result<Secret, ConfigError> {
    let path = base.join(p);
    let s = std::fs::read_to_string(&path).map_err(|err| ConfigError::Io {
        path: path.clone(),
        what: key.into(),
        err,
    })?;
    // A trailing newline from `echo secret > file` is not part of the secret.
    let s = s.trim_end_matches(['\r', '\n']);
    if s.is_empty() {
        return Err(invalid(
            key,
            path.display(),
            "empty",
            "a file holding a non-empty secret",
        ));
    }
    Ok(Secret::new(s))
}

/// `vs-` and the interface's MAC without colons, read from sysfs.
pub fn id_from_mac(ifname: &str) -> Result<String, ConfigError> {
    let path = PathBuf::from(format!("/sys/class/net/{ifname}/address"));
    let mac = std::fs::read_to_string(&path).map_err(|err| ConfigError::Io {
        path: path.clone(),
        what: "the MAC address of capture interface (to derive sensor.id)".into(),
        err,
    })?;
    let hex: String = mac.trim().chars().filter(char::is_ascii_hexdigit).collect();
    if hex.len() != 12 || hex.chars().all(|c| c == '0') {
        return Err(invalid(
            "sensor.id",
            "(unset)",
            format!("interface {ifname} has no usable MAC ({:?})", mac.trim()),
            "set sensor.id",
        ));
    }
    Ok(format!("vs-{}", hex.to_ascii_lowercase()))
}

/// Parses and validates configuration text. `base` resolves relative `*_file` paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with(text, path, &[], |_| {})
}

fn parse_with(
    text: &str,
    path: &Path,
    flags: &[(&str, &str)],
    overrides: impl FnOnce(&mut Config),
) -> Result<Config, ConfigError> {
    let mut cfg: Config =
        toml::from_str(text).map_err(|e| error::from_toml(&e, text, path.to_path_buf()))?;
    overrides(&mut cfg);
    let base = path.parent().unwrap_or(Path::new("."));
    cfg.validate(base)
        .map_err(|e| match error::by_flag(e, flags) {
            Ok(flagged) => flagged,
            Err(e) => error::locate(e, text, path.to_path_buf()),
        })?;
    Ok(cfg)
}

/// Reads, parses and validates a configuration file.
pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Io {
        path: path.to_path_buf(),
        what: "configuration file".into(),
        err,
    })?;
    parse(&text, path)
}

/// The file (or the defaults when there is none) with `overrides` (command-line flags)
/// applied, then validated once: a flag is held to the same rules as the key it sets.
pub fn load_with(
    path: Option<&Path>,
    overrides: impl FnOnce(&mut Config),
) -> Result<Config, ConfigError> {
    load_with_flags(path, &[], overrides)
}

/// As [`load_with`]; `flags` lists `(key, flag)` for the keys the command line set, so an
/// error about one names the flag (`--broker`), not a line of the file.
pub fn load_with_flags(
    path: Option<&Path>,
    flags: &[(&str, &str)],
    overrides: impl FnOnce(&mut Config),
) -> Result<Config, ConfigError> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|err| ConfigError::Io {
                path: p.to_path_buf(),
                what: "configuration file".into(),
                err,
            })?;
            parse_with(&text, p, flags, overrides)
        }
        None => {
            let mut cfg = Config::default();
            overrides(&mut cfg);
            cfg.validate(Path::new("."))
                .map_err(|e| error::by_flag(e, flags).unwrap_or_else(|e| e))?;
            Ok(cfg)
        }
    }
}

/// A configuration from command-line flags (`replay --broker`, tests): defaults elsewhere.
pub fn options_from_cli(
    broker: &str,
    site: &str,
    sensor: &str,
    payload: Format,
) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    cfg.mqtt.url = broker.to_string();
    cfg.sensor.site = site.to_string();
    cfg.sensor.id = Some(sensor.to_string());
    cfg.output.payload = payload;
    cfg.validate(Path::new("."))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Config, ConfigError> {
        parse(s, Path::new("/etc/voipsensor/sensor.toml"))
    }

    #[test]
    fn the_example_file_parses_and_holds_the_defaults() {
        let text = include_str!("../sensor.example.toml");
        let cfg = parse_str(text).unwrap();
        let mut want = Config::default();
        want.sensor.site = cfg.sensor.site.clone();
        want.sensor.id = cfg.sensor.id.clone();
        want.capture.interfaces = cfg.capture.interfaces.clone();
        assert_eq!(cfg, want, "sensor.example.toml must document the defaults");
    }

    #[test]
    fn a_secret_given_both_inline_and_in_a_file_is_refused_naming_the_file_key() {
        let e = parse_str(
            "[sensor]\nsite = \"p\"\n[mqtt]\nusername = \"u\"\npassword = \"x\"\n\
             password_file = \"pw\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mqtt.password_file"), "{e}");
        assert!(
            e.contains("only one of mqtt.password and mqtt.password_file"),
            "{e}"
        );
        let e =
            parse_str("[sensor]\nsite = \"p\"\n[privacy]\nsecret = \"x\"\nsecret_file = \"s\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("set together with privacy.secret"), "{e}");
        assert!(
            e.contains("only one of privacy.secret and privacy.secret_file"),
            "{e}"
        );
    }

    #[test]
    fn minimal_file_needs_only_the_site() {
        let cfg = parse_str("[sensor]\nsite = \"paris\"\nid = \"t1\"\n").unwrap();
        assert_eq!(cfg.mqtt.qos.calls, 1);
        assert_eq!(cfg.sensor_id().unwrap(), "t1");
        let e = parse_str("").unwrap_err().to_string();
        assert!(e.contains("sensor.site"), "{e}");
    }

    #[test]
    fn fallback_brokers_are_checked_and_named_by_position() {
        let base = "[sensor]\nsite = \"p\"\nid = \"t1\"\n[mqtt]\nurl = \"mqtt://a:1883\"\n";
        let ok = parse_str(&format!("{base}brokers = [\"mqtt://b:1883\"]\n")).unwrap();
        let s = PublishSettings::try_from(&ok).unwrap();
        assert_eq!(s.fallbacks, ["mqtt://b:1883"]);
        for (brokers, why) in [
            ("[\"mqtt://b\", \"http://c\"]", "mqtt.brokers[1]"),
            ("[\"mqtts://b\"]", "mixes mqtt:// and mqtts://"),
            ("[\"mqtt://u:pw@b\"]", "credentials in a fallback"),
        ] {
            let e = parse_str(&format!("{base}brokers = {brokers}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{brokers}: {e}");
            assert!(!e.contains("pw@"), "no password in errors: {e}");
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = parse_str("[sensor]\nsite = \"p\"\n[mqtt]\nqos_calls = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":4: mqtt.qos_calls = 1: unknown key"), "{e}");
    }

    #[test]
    fn bad_enum_value_lists_the_allowed_ones() {
        let e = parse_str("[sensor]\nsite = \"p\"\n[output]\npayload = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("xml") && e.contains("postcard") && e.contains("json"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_value_names_key_value_and_range() {
        let e = parse_str("[sensor]\nsite = \"p\"\n[mqtt]\nkeepalive_s = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mqtt.keepalive_s = 1") && e.contains("5 to 3600"),
            "{e}"
        );
        let e = parse_str("[sensor]\nsite = \"a/b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sensor.site") && e.contains("'/'"), "{e}");
    }

    #[test]
    fn a_bad_broker_url_names_the_key() {
        let e = parse_str("[sensor]\nsite = \"p\"\n[mqtt]\nurl = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mqtt.url") && e.contains("http://x"), "{e}");
    }

    #[test]
    fn the_default_tracker_section_is_the_trackers_defaults() {
        // `replay` without a file and `run` with one must build the same tracker.
        assert_eq!(
            format!("{:?}", Config::default().tracker_config()),
            format!("{:?}", TrackerConfig::default())
        );
    }

    #[test]
    fn flags_are_held_to_the_files_rules() {
        let e = load_with(None, |c| {
            c.sensor.site = "p".into();
            c.capture.buffer_mb = 0;
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("capture.buffer_mb = 0") && e.contains("1 to 4096"),
            "{e}"
        );
        let cfg = load_with(None, |c| c.sensor.site = "p".into()).unwrap();
        assert_eq!(cfg.sensor.site, "p");
    }

    #[test]
    fn secrets_never_appear_in_debug_or_errors() {
        let cfg = parse_str(
            "[sensor]\nsite = \"p\"\n[mqtt]\nusername = \"u\"\npassword = \"hunter2-secret\"\n\
             [privacy]\nmode = \"hash\"\nsecret = \"0123456789abcdef-key\"\n",
        )
        .unwrap();
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("0123456789abcdef"),
            "{dbg}"
        );
        let e = parse_str(
            "[sensor]\nsite = \"p\"\n[privacy]\nmode = \"hash\"\nsecret = \"short-key\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("privacy.secret") && !e.contains("short-key"),
            "{e}"
        );
    }

    #[test]
    fn password_file_is_read_relative_to_the_config() {
        let dir = std::env::temp_dir().join(format!("vs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        let cfg = parse(
            "[sensor]\nsite = \"p\"\n[mqtt]\nusername = \"u\"\npassword_file = \"pw\"\n",
            &dir.join("sensor.toml"),
        )
        .unwrap();
        assert_eq!(
            cfg.mqtt.password.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        let e = parse(
            "[sensor]\nsite = \"p\"\n[mqtt]\nusername = \"u\"\npassword_file = \"nope\"\n",
            &dir.join("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mqtt.password_file") && e.contains("nope"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn sensor_id_defaults_to_the_nic_mac() {
        // Loopback has an all-zero MAC: the error says to set sensor.id.
        let mut cfg = Config::default();
        cfg.capture.interfaces = vec!["lo".into()];
        let e = cfg.sensor_id().unwrap_err().to_string();
        assert!(e.contains("sensor.id"), "{e}");
        let real = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| id_from_mac(n).is_ok());
        if let Some(n) = real {
            cfg.capture.interfaces = vec![n];
            let id = cfg.sensor_id().unwrap();
            assert!(id.starts_with("vs-") && id.len() == 15, "{id}");
        }
    }
}
