//! The MQTT connection: a rumqttc event loop on its own thread (tokio current-thread
//! runtime), fed from the [`Outbox`] so the tracker thread never waits on the network.
//!
//! Delivery: our outbox, not rumqttc's session, is the store. A message handed to rumqttc
//! stays on our `handed` list until the broker acknowledges it (QoS 1) or it is written
//! (QoS 0); when the connection drops, everything unacknowledged goes back to the front of
//! the outbox, in order, and rumqttc's own replay list is cleared. So a broker restart that
//! loses the session loses nothing, at the price of possible duplicates (QoS 1 is
//! at-least-once anyway; `seq` lets consumers drop them).

use crate::config::{BrokerUrl, Config};
use crate::publish::outbox::{Class, OutMsg, Outbox};
use crate::publish::payload::{self, Format, Message, OutboxStats, State, Status};
use crate::publish::topic::{Leaf, Topics};
use anyhow::{Context, anyhow, bail};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event as MqEvent, EventLoop, MqttOptions,
    Outgoing, Packet, QoS,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Messages handed to rumqttc and not yet acknowledged: well under rumqttc's in-flight
/// window (100), so packet ids never collide and its channel never fills.
const MAX_HANDED: usize = 64;

/// Builds rumqttc options from the configuration (used by the publisher and `watch`).
pub fn mqtt_options(
    cfg: &Config,
    client_id: &str,
    max_packet: usize,
) -> anyhow::Result<(MqttOptions, BrokerUrl)> {
    let url = BrokerUrl::parse(&cfg.mqtt.url)?;
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    o.set_keep_alive(Duration::from_secs(cfg.mqtt.keepalive_s.into()));
    o.set_max_packet_size(max_packet, max_packet);
    if let Some(user) = &cfg.mqtt.username {
        let pw = cfg
            .mqtt
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        o.set_credentials(user.clone(), pw);
    }
    if url.tls {
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config(cfg)?)),
        ));
    }
    Ok((o, url))
}

/// rustls client configuration with the ring provider chosen explicitly (no process-wide
/// default needed), the CA file or the system roots, and an optional client certificate.
fn tls_config(cfg: &Config) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &cfg.mqtt.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| {
                anyhow!(
                    "mqtt.ca_file {}: cannot read PEM certificates: {e}",
                    ca.display()
                )
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            bail!(
                "mqtt.ca_file {}: no usable CA certificate in it",
                ca.display()
            );
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            bail!(
                "mqtts:// without mqtt.ca_file and no system CA certificates found: set mqtt.ca_file"
            );
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots);
    match (&cfg.mqtt.client_cert, &cfg.mqtt.client_key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| {
                    anyhow!(
                        "mqtt.client_cert {}: cannot read PEM certificates: {e}",
                        cert.display()
                    )
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                anyhow!(
                    "mqtt.client_key {}: cannot read a PEM private key: {e}",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .context("mqtt.client_cert/client_key do not form a usable pair")
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A connection failure in words an operator can act on, and whether retrying can help.
pub fn explain(e: &ConnectionError, url: &str) -> (String, bool) {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let (why, fatal) = match code {
                ConnectReturnCode::BadUserNamePassword => (
                    "bad username or password (check mqtt.username, mqtt.password)",
                    true,
                ),
                ConnectReturnCode::NotAuthorized => (
                    "not authorized (check credentials and the broker's ACL)",
                    true,
                ),
                ConnectReturnCode::BadClientId => ("client id rejected (check sensor.id)", true),
                ConnectReturnCode::RefusedProtocolVersion => {
                    ("MQTT 3.1.1 not supported by the broker", true)
                }
                _ => ("server unavailable", false),
            };
            (format!("broker {url} refused the connection: {why}"), fatal)
        }
        ConnectionError::Tls(t) => {
            let detail = tls_detail(t);
            let fatal = detail.contains("certificate") || detail.contains("Certificate");
            (
                format!(
                    "TLS with broker {url} failed: {detail}{}",
                    if fatal {
                        " (check mqtt.ca_file and the broker's certificate)"
                    } else {
                        ""
                    }
                ),
                fatal,
            )
        }
        ConnectionError::Io(io) => (format!("cannot reach broker {url}: {io}"), false),
        ConnectionError::NetworkTimeout => (
            format!("cannot reach broker {url}: connection timed out"),
            false,
        ),
        other => (format!("connection to broker {url} lost: {other}"), false),
    }
}

fn tls_detail(t: &rumqttc::TlsError) -> String {
    if let rumqttc::TlsError::Io(io) = t
        && let Some(inner) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
    {
        return match inner {
            rustls::Error::InvalidCertificate(c) => {
                format!("the broker's certificate was rejected: {c:?}")
            }
            other => other.to_string(),
        };
    }
    t.to_string()
}

/// What the network thread and the publisher share.
struct Net {
    outbox: Outbox,
    handed: VecDeque<Handed>,
    connected: bool,
    connections: u64,
    last_error: Option<String>,
    /// First connection attempt's outcome, for [`Publisher::start`].
    first: Option<Result<(), (String, bool)>>,
    stop: bool,
    done: bool,
    /// The retained online status (re)sent on every connect; updated when what the mirror
    /// delivers (VLANs, encapsulations) changes.
    online: Vec<u8>,
}

struct Handed {
    msg: OutMsg,
    /// The online status sent on connect: re-made on the next connect, never requeued.
    online: bool,
    pkid: Option<u16>,
}

struct Shared {
    net: Mutex<Net>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Net> {
        // A panic elsewhere while holding the lock leaves plain data: keep going.
        self.net.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn qos_of(q: u8) -> QoS {
    if q == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// Hands queued messages to rumqttc while connected and under the in-flight bound.
fn feed(net: &mut Net, client: &AsyncClient, topics: &Topics) {
    while net.connected && net.handed.len() < MAX_HANDED {
        let Some(m) = net.outbox.pop() else { break };
        match client.try_publish(
            topics.get(m.leaf),
            qos_of(m.qos),
            m.retain,
            m.payload.clone(),
        ) {
            Ok(()) => net.handed.push_back(Handed {
                msg: m,
                online: false,
                pkid: None,
            }),
            Err(_) => {
                net.outbox.requeue_front(std::iter::once(m));
                break;
            }
        }
    }
}

/// Counters returned by [`Publisher::finish`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishStats {
    pub outbox: OutboxStats,
    pub connections: u64,
    pub calls_published: u64,
    pub rtp_messages: u64,
    pub last_error: Option<String>,
}

/// The publishing half of the sensor: events in (never blocking), MQTT out.
pub struct Publisher {
    topics: Arc<Topics>,
    format: Format,
    qos: crate::config::Qos,
    privacy: crate::publish::privacy::Privacy,
    max_message_bytes: usize,
    shared: Arc<Shared>,
    client: AsyncClient,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
    status: Status,
    seq_calls: u64,
    seq_rtp: u64,
    rtp: Vec<crate::track::event::RtpInterval>,
    rtp_second: Option<u64>,
    rtp_messages: u64,
    kpi: crate::publish::kpi::KpiAcc,
    health_period_us: u64,
    next_health: Option<u64>,
    first_ts: Option<crate::track::event::Ts>,
    pace: Option<Pace>,
}

/// Replay pacing: event time mapped onto wall time at `speed`.
struct Pace {
    speed: f64,
    origin: Option<(u64, Instant)>,
}

impl Publisher {
    /// Connects (waiting for the first attempt's outcome, at most `connect_timeout_s`).
    /// Configuration, credential and certificate problems are errors; an unreachable broker
    /// is only a warning: events queue in the outbox until it comes.
    pub fn start(cfg: &Config) -> anyhow::Result<Publisher> {
        Publisher::start_with(cfg, Vec::new())
    }

    /// As [`start`](Self::start), naming the capture interfaces (or file) in the status.
    pub fn start_with(cfg: &Config, interfaces: Vec<String>) -> anyhow::Result<Publisher> {
        let sensor = cfg.sensor_id()?;
        let topics = Arc::new(Topics::new(&cfg.sensor.site, &sensor)?);
        let format = cfg.output.payload;
        let max_message_bytes = cfg.mqtt.max_message_bytes as usize;
        let (mut opts, _) = mqtt_options(cfg, &sensor, max_message_bytes + 4096)?;
        let interfaces = if interfaces.is_empty() {
            cfg.capture.interfaces.clone()
        } else {
            interfaces
        };
        let status = Status {
            state: State::Online,
            site: cfg.sensor.site.clone(),
            sensor: sensor.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            interfaces,
            vlans: Vec::new(),
            encapsulations: Vec::new(),
            started: crate::track::event::Ts(wall_us()),
            clock_synced: crate::clock::synchronised(),
            error: None,
        };
        let offline = payload::encode(
            &Message::Status(Status {
                state: State::Offline,
                ..status.clone()
            }),
            format,
        );
        opts.set_last_will(rumqttc::LastWill::new(
            topics.get(Leaf::Status),
            offline,
            QoS::AtLeastOnce,
            true,
        ));
        // Persistent session: the broker keeps QoS 1 state across our reconnects.
        opts.set_clean_session(false);
        opts.set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(opts, MAX_HANDED * 2);
        let mut netopts = rumqttc::NetworkOptions::new();
        netopts.set_connection_timeout(cfg.mqtt.connect_timeout_s);
        eventloop.set_network_options(netopts);

        let shared = Arc::new(Shared {
            net: Mutex::new(Net {
                outbox: Outbox::new(cfg.mqtt.outbox_messages, cfg.mqtt.outbox_bytes),
                handed: VecDeque::with_capacity(MAX_HANDED),
                connected: false,
                connections: 0,
                last_error: None,
                first: None,
                stop: false,
                done: false,
                online: payload::encode(&Message::Status(status.clone()), format),
            }),
            changed: Condvar::new(),
        });
        let url = cfg.mqtt.url.clone();
        let thread = {
            let (shared, client, topics, url) =
                (shared.clone(), client.clone(), topics.clone(), url.clone());
            let backoff = (
                Duration::from_millis(cfg.mqtt.reconnect_min_ms),
                Duration::from_millis(cfg.mqtt.reconnect_max_ms),
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the MQTT runtime")?;
            std::thread::Builder::new()
                .name("mqtt".into())
                .spawn(move || {
                    rt.block_on(net_main(
                        eventloop,
                        client,
                        shared.clone(),
                        topics,
                        url,
                        backoff,
                    ));
                    shared.lock().done = true;
                    shared.changed.notify_all();
                })
                .context("cannot start the MQTT thread")?
        };

        // Wait for the first attempt's outcome so bad credentials or certificates fail now.
        let wait = Duration::from_secs(cfg.mqtt.connect_timeout_s + 1);
        let first = {
            let net = shared.lock();
            let (net, _) = shared
                .changed
                .wait_timeout_while(net, wait, |n| n.first.is_none())
                .unwrap_or_else(|p| p.into_inner());
            net.first.clone()
        };
        let mut publisher = Publisher {
            topics,
            format,
            qos: cfg.mqtt.qos,
            privacy: cfg.privacy.rule(),
            max_message_bytes,
            shared,
            client,
            thread: Some(thread),
            url,
            status,
            seq_calls: 0,
            seq_rtp: 0,
            rtp: Vec::new(),
            rtp_second: None,
            rtp_messages: 0,
            kpi: crate::publish::kpi::KpiAcc::new(cfg.output.kpi_interval_s),
            health_period_us: u64::from(cfg.output.health_interval_s) * 1_000_000,
            next_health: None,
            first_ts: None,
            pace: None,
        };
        match first {
            Some(Err((msg, true))) => {
                publisher.stop_thread();
                bail!("{msg}");
            }
            Some(Err((msg, false))) => log::warn!("{msg}; queueing until the broker is reachable"),
            None => log::warn!(
                "broker {} not answering yet; queueing until it is",
                publisher.url
            ),
            Some(Ok(())) => log::info!(
                "connected to {} as {}",
                publisher.url,
                publisher.topics.base()
            ),
        }
        Ok(publisher)
    }

    /// Paces publishing to event time (replay tests): an event at packet time `t` is not
    /// published before `(t - first) / speed` of wall time has passed.
    pub fn set_pace(&mut self, speed: Option<f64>) {
        self.pace = speed.filter(|s| *s > 0.0).map(|speed| Pace {
            speed,
            origin: None,
        });
    }

    fn pace_to(&mut self, t: crate::track::event::Ts) {
        let Some(p) = &mut self.pace else { return };
        let (t0, w0) = *p.origin.get_or_insert((t.0, Instant::now()));
        let due = w0 + Duration::from_secs_f64(t.0.saturating_sub(t0) as f64 / 1e6 / p.speed);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }

    /// Updates the retained status with what the mirror delivers (VLAN ids, encapsulations
    /// seen), so a technician can confirm the SPAN session from the NOC. Republished only
    /// when it changed.
    pub fn set_delivery(&mut self, vlans: Vec<u16>, encapsulations: Vec<String>) {
        if self.status.vlans == vlans && self.status.encapsulations == encapsulations {
            return;
        }
        self.status.vlans = vlans;
        self.status.encapsulations = encapsulations;
        self.republish_status();
    }

    /// Re-sends the retained online status (and keeps it for the next reconnect).
    fn republish_status(&mut self) {
        let bytes = payload::encode(&Message::Status(self.status.clone()), self.format);
        let mut net = self.shared.lock();
        net.online = bytes.clone();
        let mut m = OutMsg::new(Leaf::Status, Class::Call, 1, bytes);
        m.retain = true;
        net.outbox.push(m);
        feed(&mut net, &self.client, &self.topics);
    }

    fn enqueue(&mut self, leaf: Leaf, class: Class, qos: u8, payload: Vec<u8>) {
        let mut net = self.shared.lock();
        net.outbox.push(OutMsg::new(leaf, class, qos, payload));
        feed(&mut net, &self.client, &self.topics);
    }

    /// Queues one event (never blocks on the network). RTP intervals are batched per second.
    pub fn publish(&mut self, ev: &crate::track::event::Event) {
        use crate::track::event::Event;
        let ts = ev.ts();
        self.pace_to(ts);
        self.first_ts.get_or_insert(ts);
        let mut ev = ev.clone();
        self.privacy.apply(&mut ev);
        match ev {
            Event::RtpInterval(i) => {
                let sec = i.ts.0 / 1_000_000;
                if self.rtp_second.is_some_and(|s| s != sec) {
                    self.flush_rtp();
                }
                self.rtp_second = Some(sec);
                self.rtp.push(i);
            }
            other => {
                if let Event::Call(c) = &other {
                    self.kpi.observe(c);
                }
                self.seq_calls += 1;
                let bytes = payload::encode(
                    &Message::Event {
                        seq: self.seq_calls,
                        event: other,
                    },
                    self.format,
                );
                self.enqueue(Leaf::Calls, Class::Call, self.qos.calls, bytes);
            }
        }
    }

    /// Publishes the buffered second of RTP intervals, split to fit `max_message_bytes`.
    fn flush_rtp(&mut self) {
        let Some(sec) = self.rtp_second.take() else {
            return;
        };
        let intervals = std::mem::take(&mut self.rtp);
        if intervals.is_empty() {
            return;
        }
        // Pack greedily by encoded size; the margin covers the batch header.
        let budget = self.max_message_bytes.saturating_sub(64);
        let mut parts: Vec<Vec<crate::track::event::RtpInterval>> = vec![Vec::new()];
        let mut used = 0;
        for i in intervals {
            let size = match self.format {
                Format::Postcard => postcard::to_allocvec(&i).map(|v| v.len()).unwrap_or(budget),
                Format::Json => {
                    crate::publish::json::to_line(&crate::track::event::Event::RtpInterval(
                        i.clone(),
                    ))
                    .len()
                        + 1
                }
            };
            let last = parts.len() - 1;
            if used + size > budget && !parts[last].is_empty() {
                parts.push(Vec::new());
                used = 0;
            }
            used += size;
            let last = parts.len() - 1;
            parts[last].push(i);
        }
        let n = parts.len() as u16;
        for (k, intervals) in parts.into_iter().enumerate() {
            self.seq_rtp += 1;
            let msg = Message::Rtp(payload::RtpBatch {
                seq: self.seq_rtp,
                ts: crate::track::event::Ts(sec * 1_000_000),
                part: k as u16,
                parts: n,
                intervals,
            });
            let bytes = payload::encode(&msg, self.format);
            self.rtp_messages += 1;
            self.enqueue(Leaf::Rtp, Class::Metric, self.qos.rtp, bytes);
        }
    }

    /// Drives time-based output: the last RTP second, `health` and `kpi`. `now` is packet
    /// time in replay, wall time live; `counters` are the caller's (capture, tables...).
    pub fn tick(&mut self, now: crate::track::event::Ts, counters: &impl serde::Serialize) {
        self.pace_to(now);
        self.first_ts.get_or_insert(now);
        // Intervals of second S come out once packet time passes S+1; a second more is slack.
        if self.rtp_second.is_some_and(|s| now.0 / 1_000_000 >= s + 2) {
            self.flush_rtp();
        }
        let next = *self
            .next_health
            .get_or_insert(now.0 - now.0 % self.health_period_us + self.health_period_us);
        if now.0 >= next {
            self.publish_health(now, counters);
            // Skip periods with no tick (idle capture) rather than bursting.
            self.next_health = Some(now.0 - now.0 % self.health_period_us + self.health_period_us);
        }
        if let Some(k) = self.kpi.roll(now) {
            let bytes = payload::encode(&Message::Kpi(k), self.format);
            self.enqueue(Leaf::Kpi, Class::Metric, self.qos.kpi, bytes);
        }
    }

    fn publish_health(&mut self, now: crate::track::event::Ts, counters: &impl serde::Serialize) {
        let synced = crate::clock::synchronised();
        if synced != self.status.clock_synced {
            self.status.clock_synced = synced;
            self.republish_status();
        }
        let (outbox, connected, connections) = {
            let net = self.shared.lock();
            (Self::outbox_stats(&net), net.connected, net.connections)
        };
        let h = payload::Health {
            ts: now,
            uptime_s: now.0.saturating_sub(self.first_ts.unwrap_or(now).0) / 1_000_000,
            connected,
            reconnects: connections.saturating_sub(1),
            outbox,
            counters_json: serde_json::to_string(counters).unwrap_or_else(|_| "{}".into()),
        };
        let bytes = payload::encode(&Message::Health(h), self.format);
        self.enqueue(Leaf::Health, Class::Metric, self.qos.health, bytes);
    }

    fn outbox_stats(net: &Net) -> OutboxStats {
        let mut s = net.outbox.stats();
        s.depth += net.handed.len() as u32;
        s.depth_bytes += net
            .handed
            .iter()
            .map(|h| h.msg.payload.len() as u64)
            .sum::<u64>();
        s
    }

    /// Outbox and connection counters now.
    pub fn stats(&self) -> PublishStats {
        let net = self.shared.lock();
        PublishStats {
            outbox: Self::outbox_stats(&net),
            connections: net.connections,
            calls_published: self.seq_calls,
            rtp_messages: self.rtp_messages,
            last_error: net.last_error.clone(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Flushes the last RTP second and KPI period, publishes a final health record and the
    /// retained offline status, waits up to `timeout` for everything to be acknowledged,
    /// then disconnects cleanly. An error if anything was left undelivered.
    pub fn finish(mut self, timeout: Duration) -> anyhow::Result<PublishStats> {
        self.finish_inner(timeout)
    }

    fn finish_inner(&mut self, timeout: Duration) -> anyhow::Result<PublishStats> {
        self.flush_rtp();
        if let Some(k) = self.kpi.flush() {
            let bytes = payload::encode(&Message::Kpi(k), self.format);
            self.enqueue(Leaf::Kpi, Class::Metric, self.qos.kpi, bytes);
        }
        let offline = payload::encode(
            &Message::Status(Status {
                state: State::Offline,
                ..self.status.clone()
            }),
            self.format,
        );
        {
            let mut net = self.shared.lock();
            let mut m = OutMsg::new(Leaf::Status, Class::Call, 1, offline);
            m.retain = true;
            net.outbox.push(m);
            feed(&mut net, &self.client, &self.topics);
        }
        let deadline = Instant::now() + timeout;
        let left = {
            let net = self.shared.lock();
            let (net, _) = self
                .shared
                .changed
                .wait_timeout_while(net, timeout, |n| {
                    !(n.done || (n.outbox.is_empty() && n.handed.is_empty()))
                })
                .unwrap_or_else(|p| p.into_inner());
            net.outbox.len() + net.handed.len()
        };
        let stats = self.stats();
        self.stop_thread_by(deadline.max(Instant::now() + Duration::from_secs(2)));
        if left > 0 {
            bail!(
                "{left} message(s) not delivered to {} within {:?}{}",
                self.url,
                timeout,
                stats
                    .last_error
                    .as_deref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
        }
        Ok(stats)
    }

    fn stop_thread(&mut self) {
        self.stop_thread_by(Instant::now() + Duration::from_secs(2));
    }

    fn stop_thread_by(&mut self, deadline: Instant) {
        {
            let mut net = self.shared.lock();
            net.stop = true;
        }
        // A clean DISCONNECT: the broker then does not publish the Last Will (we published
        // the offline status ourselves).
        let _ = self.client.try_disconnect();
        let net = self.shared.lock();
        let _ = self.shared.changed.wait_timeout_while(
            net,
            deadline.saturating_duration_since(Instant::now()),
            |n| !n.done,
        );
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_thread();
        }
    }
}

impl crate::track::event::EventSink for Publisher {
    fn emit(&mut self, ev: &crate::track::event::Event) {
        self.publish(ev)
    }
}

async fn net_main(
    mut eventloop: EventLoop,
    client: AsyncClient,
    shared: Arc<Shared>,
    topics: Arc<Topics>,
    url: String,
    (min, max): (Duration, Duration),
) {
    let mut backoff = min;
    loop {
        let ev = eventloop.poll().await;
        // The lock is released before any await (the backoff sleep).
        let mut step = Step::Go;
        {
            let mut net = shared.lock();
            match ev {
                Ok(MqEvent::Incoming(Packet::ConnAck(_))) => {
                    net.connected = true;
                    net.connections += 1;
                    net.last_error = None;
                    net.first.get_or_insert(Ok(()));
                    backoff = min;
                    if net.connections > 1 {
                        log::info!(
                            "reconnected to {url}; {} message(s) queued",
                            net.outbox.len()
                        );
                    }
                    // Online status first, then the backlog in order.
                    let online = net.online.clone();
                    let mut m = OutMsg::new(Leaf::Status, Class::Call, 1, online.clone());
                    m.retain = true;
                    if client
                        .try_publish(
                            topics.get(Leaf::Status),
                            QoS::AtLeastOnce,
                            true,
                            online.clone(),
                        )
                        .is_ok()
                    {
                        net.handed.push_back(Handed {
                            msg: m,
                            online: true,
                            pkid: None,
                        });
                    }
                    feed(&mut net, &client, &topics);
                }
                Ok(MqEvent::Outgoing(Outgoing::Publish(pkid))) => {
                    if let Some(i) = net.handed.iter().position(|h| h.pkid.is_none()) {
                        if net.handed[i].msg.qos == 0 {
                            net.handed.remove(i);
                            net.outbox.count_sent(1);
                            feed(&mut net, &client, &topics);
                        } else {
                            net.handed[i].pkid = Some(pkid);
                        }
                    }
                }
                Ok(MqEvent::Incoming(Packet::PubAck(ack))) => {
                    if let Some(i) = net.handed.iter().position(|h| h.pkid == Some(ack.pkid)) {
                        net.handed.remove(i);
                        net.outbox.count_sent(1);
                        feed(&mut net, &client, &topics);
                    }
                }
                Ok(MqEvent::Outgoing(Outgoing::Disconnect)) => {
                    net.connected = false;
                    step = Step::Stop;
                }
                Ok(_) => {}
                Err(e) => {
                    // rumqttc would replay its unacknowledged list (or silently drop it when the
                    // broker lost the session); ours is the one that counts. Drain its channel
                    // and replay list under the lock so nothing is sent twice by us.
                    eventloop.clean();
                    eventloop.pending.clear();
                    let handed: Vec<OutMsg> = net
                        .handed
                        .drain(..)
                        .filter(|h| !h.online)
                        .map(|h| h.msg)
                        .collect();
                    net.outbox.requeue_front(handed.into_iter());
                    net.connected = false;
                    if net.stop || matches!(e, ConnectionError::RequestsDone) {
                        step = Step::Stop;
                    }
                    let (msg, fatal) = explain(&e, &url);
                    if net.last_error.as_deref() != Some(msg.as_str()) {
                        if fatal {
                            log::error!("{msg}")
                        } else {
                            log::warn!("{msg}")
                        }
                    }
                    net.last_error = Some(msg.clone());
                    net.first.get_or_insert(Err((msg, fatal)));
                    if step == Step::Go {
                        step = Step::Backoff;
                    }
                }
            }
        }
        shared.changed.notify_all();
        match step {
            Step::Go => {}
            Step::Stop => break,
            Step::Backoff => {
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Step {
    Go,
    Backoff,
    Stop,
}

fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Random factor in [0.75, 1.25) from std's randomly keyed hasher (no RNG dependency).
fn jitter(d: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let f = 0.75 + (r % 10_000) as f64 / 20_000.0;
    d.mul_f64(f)
}
