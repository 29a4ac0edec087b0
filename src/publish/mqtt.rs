//! The MQTT driver: a rumqttc event loop on its own thread (tokio current-thread runtime)
//! between the sans-IO [`Pipeline`] (events to messages, on the caller's thread) and
//! [`Session`] (delivery state, shared under a lock), so the tracker thread never waits
//! on the network. Everything that decides lives in those two; this moves bytes.

use crate::publish::backoff::Backoff;
use crate::publish::broker::{BrokerUrl, explain, mqtt_options};
use crate::publish::outbox::Outbox;
use crate::publish::pace::Pace;
use crate::publish::payload::{OutboxStats, State};
use crate::publish::pipeline::Pipeline;
use crate::publish::session::Session;
use crate::publish::settings::PublishSettings;
use crate::publish::spool::{self, SpoolSettings};
use crate::publish::topic::{Leaf, Topics};
use crate::track::event::{Event, EventSink, Ts};
use anyhow::{Context, bail};
use rumqttc::{
    AsyncClient, ConnectionError, Event as MqEvent, EventLoop, MqttOptions, Outgoing, Packet, QoS,
};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Messages with rumqttc and not yet acknowledged: well under its in-flight window (`PKID_SPAN`),
/// so its packet ids never collide and its channel never fills.
const MAX_HANDED: usize = 64;

/// What the network thread and the publisher share.
struct Net {
    session: Session,
    last_error: Option<String>,
    /// First connection attempt's outcome, for [`Publisher::start`].
    first: Option<Result<(), (String, bool)>>,
    stop: bool,
    done: bool,
}

struct Shared {
    net: Mutex<Net>,
    changed: Condvar,
    /// Ends a backoff wait at once (shutdown).
    wake: tokio::sync::Notify,
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

/// Hands what the session releases to rumqttc.
fn feed(session: &mut Session, client: &AsyncClient, topics: &Topics) {
    while let Some(m) = session.hand() {
        let sent = client.try_publish(
            topics.get(m.leaf),
            qos_of(m.qos),
            m.retain,
            m.payload.clone(),
        );
        if sent.is_err() {
            session.unhand();
            break;
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

impl std::fmt::Display for PublishStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.outbox;
        write!(
            f,
            "{} message(s) sent ({} call event(s), {} rtp message(s)) over {} connection(s); \
             dropped: {} call event(s), {} metric(s); outbox high water {} of {}",
            o.sent,
            self.calls_published,
            self.rtp_messages,
            self.connections,
            o.dropped_calls,
            o.dropped_metrics,
            o.high_water,
            o.capacity
        )?;
        if let Some(e) = &self.last_error {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

/// The publishing half of the sensor: events in (never blocking), MQTT out.
pub struct Publisher {
    topics: Arc<Topics>,
    pipeline: Pipeline,
    shared: Arc<Shared>,
    client: AsyncClient,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
    pace: Option<Pace>,
    spool: Option<SpoolSettings>,
}

impl Publisher {
    /// Connects (waiting for the first attempt's outcome, at most `connect_timeout_s`).
    /// Configuration, credential and certificate problems are errors; an unreachable broker
    /// is only a warning: events queue in the outbox until it comes.
    pub fn start<S>(settings: S) -> anyhow::Result<Publisher>
    where
        S: TryInto<PublishSettings>,
        S::Error: Into<anyhow::Error>,
    {
        let mut s: PublishSettings = settings.try_into().map_err(Into::into)?;
        let topics = Arc::new(Topics::new(&s.site, &s.sensor)?);
        let urls: Vec<String> = std::iter::once(s.connect.url.clone())
            .chain(s.fallbacks.iter().cloned())
            .collect();
        let mut all_opts = Vec::with_capacity(urls.len());
        for u in &urls {
            let c = crate::publish::settings::Connect {
                url: u.clone(),
                ..s.connect.clone()
            };
            all_opts.push(mqtt_options(&c, &s.sensor, s.max_message_bytes + 4096)?.0);
        }
        let privacy = std::mem::replace(&mut s.privacy, crate::publish::privacy::Privacy::none());
        let mut pipeline = Pipeline::new(&s, privacy, Ts(wall_us()));
        // The clock state as of the start goes into the first status (no extra message).
        pipeline.set_clock_synced(crate::clock::synchronised());
        pipeline.drain().for_each(drop);
        for opts in &mut all_opts {
            opts.set_last_will(rumqttc::LastWill::new(
                topics.get(Leaf::Status),
                pipeline.status(State::Offline),
                QoS::AtLeastOnce,
                true,
            ));
            // Persistent session: the broker keeps QoS 1 state across our reconnects.
            opts.set_clean_session(false);
            opts.set_inflight(crate::publish::session::PKID_SPAN);
        }
        let route = Route::new(urls, all_opts, s.reconnect_min)?;
        let (client, mut eventloop) = AsyncClient::new(route.opts[0].clone(), MAX_HANDED * 2);
        let mut netopts = rumqttc::NetworkOptions::new();
        netopts.set_connection_timeout(s.connect.connect_timeout_s);
        eventloop.set_network_options(netopts);

        let mut session = Session::new(
            Outbox::new(s.outbox_messages, s.outbox_bytes),
            pipeline.status(State::Online),
            MAX_HANDED,
        );
        // What the previous run could not deliver goes first.
        if let Some(sp) = &s.spool {
            match spool::take(sp) {
                Ok((msgs, damaged)) => {
                    if !msgs.is_empty() {
                        log::info!(
                            "sending first {} message(s) spooled at the last stop ({})",
                            msgs.len(),
                            sp.file().display()
                        );
                    }
                    if damaged {
                        log::warn!(
                            "{}: damaged spool, read up to the damage",
                            sp.file().display()
                        );
                    }
                    msgs.into_iter().for_each(|m| session.push(m));
                }
                Err(e) => log::warn!("{}: cannot read the spool: {e}", sp.file().display()),
            }
        }
        let shared = Arc::new(Shared {
            net: Mutex::new(Net {
                session,
                last_error: None,
                first: None,
                stop: false,
                done: false,
            }),
            changed: Condvar::new(),
            wake: tokio::sync::Notify::new(),
        });
        let url = s.connect.url.clone();
        let thread = {
            let (shared, client, topics) = (shared.clone(), client.clone(), topics.clone());
            let backoff = Backoff::new(s.reconnect_min, s.reconnect_max);
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
                        route,
                        backoff,
                    ));
                    shared.lock().done = true;
                    shared.changed.notify_all();
                })
                .context("cannot start the MQTT thread")?
        };

        // Wait for the first attempt's outcome so bad credentials or certificates fail now.
        let wait = Duration::from_secs(s.connect.connect_timeout_s + 1);
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
            pipeline,
            shared,
            client,
            thread: Some(thread),
            url,
            pace: None,
            spool: s.spool.clone(),
        };
        match first {
            Some(Err((msg, true))) => {
                publisher.stop_thread();
                return Err(crate::publish::broker::Refused(msg).into());
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
        self.pace = Pace::new(speed);
    }

    fn pace_to(&mut self, t: Ts) {
        if let Some(p) = &mut self.pace {
            p.wait_for(t.0);
        }
    }

    /// Moves what the pipeline produced into the session and on to the client.
    fn forward(&mut self) {
        let mut net = self.shared.lock();
        for m in self.pipeline.drain() {
            net.session.push(m);
        }
        feed(&mut net.session, &self.client, &self.topics);
    }

    /// Updates the retained status with what the mirror delivers (VLAN ids, encapsulations
    /// seen), so a technician can confirm the SPAN session from the NOC. Republished only
    /// when it changed.
    pub fn set_delivery(&mut self, vlans: Vec<u16>, encapsulations: Vec<String>) {
        if let Some(online) = self.pipeline.set_delivery(vlans, encapsulations) {
            self.shared.lock().session.set_online(online);
            self.forward();
        }
    }

    /// Queues one event (never blocks on the network). RTP intervals are batched per second.
    pub fn publish(&mut self, ev: &Event) {
        self.pace_to(ev.ts());
        self.pipeline.event(ev);
        self.forward();
    }

    /// Drives time-based output: the last RTP second, `health` and `kpi`. `now` is packet
    /// time in replay, wall time live; `counters` are the caller's (capture, tables...).
    pub fn tick(&mut self, now: Ts, counters: &impl serde::Serialize) {
        self.pace_to(now);
        if let Some(online) = self.pipeline.set_clock_synced(crate::clock::synchronised()) {
            self.shared.lock().session.set_online(online);
        }
        let link = self.shared.lock().session.link();
        self.pipeline.tick(now, link, counters);
        self.forward();
    }

    /// Outbox and connection counters now.
    pub fn stats(&self) -> PublishStats {
        let net = self.shared.lock();
        let link = net.session.link();
        PublishStats {
            outbox: link.outbox,
            connections: link.connections,
            calls_published: self.pipeline.calls_published(),
            rtp_messages: self.pipeline.rtp_messages(),
            last_error: net.last_error.clone(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.shared.lock().session.is_connected()
    }

    /// Flushes the last RTP second and KPI period, publishes the retained offline status,
    /// waits up to `timeout` for everything to be acknowledged, then disconnects cleanly.
    /// An error if anything was left undelivered.
    pub fn finish(mut self, timeout: Duration) -> anyhow::Result<PublishStats> {
        self.pipeline.finish();
        self.forward();
        let deadline = Instant::now() + timeout;
        let left = {
            let net = self.shared.lock();
            let (net, _) = self
                .shared
                .changed
                .wait_timeout_while(net, timeout, |n| !(n.done || n.session.pending() == 0))
                .unwrap_or_else(|p| p.into_inner());
            net.session.pending()
        };
        let mut stats = self.stats();
        self.stop_thread_by(deadline.max(Instant::now() + Duration::from_secs(2)));
        if left > 0
            && let Some(sp) = &self.spool
        {
            let msgs = self.shared.lock().session.take_pending();
            match spool::write(sp, &msgs) {
                Ok(st) => {
                    stats.outbox.dropped_calls += st.lost_calls;
                    stats.outbox.dropped_metrics += st.lost_metrics;
                    let lost = if st.lost_calls + st.lost_metrics > 0 {
                        format!(
                            "; {} call event(s) and {} metric(s) did not fit in {} bytes: lost",
                            st.lost_calls, st.lost_metrics, sp.max_bytes
                        )
                    } else {
                        String::new()
                    };
                    log::warn!(
                        "{} not reachable: {} call event(s) and {} metric(s) spooled to {} for                          the next start{lost}",
                        self.url,
                        st.calls,
                        st.metrics,
                        sp.file().display()
                    );
                    if st.lost_calls == 0 {
                        return Ok(stats);
                    }
                }
                Err(e) => log::error!("{}: cannot write the spool: {e}", sp.file().display()),
            }
        }
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
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
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

impl EventSink for Publisher {
    fn emit(&mut self, ev: &Event) {
        self.publish(ev)
    }
}

#[derive(PartialEq, Eq)]
enum Step {
    Go,
    Backoff,
    Stop,
}

/// The ordered broker list: the one in use, and how to reach each for a probe.
struct Route {
    urls: Vec<String>,
    addrs: Vec<(String, u16)>,
    opts: Vec<MqttOptions>,
    cur: usize,
    /// How often a down broker (or the first, while on another) is probed.
    probe_every: Duration,
}

impl Route {
    fn new(urls: Vec<String>, opts: Vec<MqttOptions>, min: Duration) -> anyhow::Result<Route> {
        let addrs = urls
            .iter()
            .map(|u| BrokerUrl::parse(u).map(|b| (b.host, b.port)))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{}: {}", e.url, e.why))?;
        Ok(Route {
            urls,
            addrs,
            opts,
            cur: 0,
            probe_every: min.clamp(Duration::from_millis(100), Duration::from_secs(1)),
        })
    }

    fn url(&self) -> &str {
        &self.urls[self.cur]
    }

    /// The next connection attempt goes to broker `i`.
    fn switch(&mut self, eventloop: &mut EventLoop, i: usize) {
        if i != self.cur {
            log::info!("broker {} next (was {})", self.urls[i], self.url());
        }
        self.cur = i;
        eventloop.mqtt_options = self.opts[i].clone();
    }
}

/// A TCP connect to `addr` succeeds within `limit`.
async fn answers(addr: &(String, u16), limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(
            limit,
            tokio::net::TcpStream::connect((addr.0.as_str(), addr.1))
        )
        .await,
        Ok(Ok(_))
    )
}

/// Returns the index of the first of `addrs[..upto]` that answers, probing every `every`.
async fn probe_until(addrs: &[(String, u16)], upto: usize, every: Duration) -> usize {
    loop {
        tokio::time::sleep(every).await;
        for (i, a) in addrs.iter().enumerate().take(upto) {
            if answers(a, every).await {
                return i;
            }
        }
    }
}

/// Ends the connection on our side: what rumqttc had queued is applied, its channel and
/// replay list are dropped, and the session takes back everything not acknowledged.
fn drop_connection(eventloop: &mut EventLoop, session: &mut Session) {
    // The events rumqttc queued before the failure still happened: a PUBACK read in the
    // same batch as the EOF is the broker's, and applying a write whose flush failed is
    // harmless (everything unacknowledged is requeued).
    for ev in eventloop.state.events.drain(..) {
        match ev {
            MqEvent::Outgoing(Outgoing::Publish(pkid)) => session.written(pkid),
            MqEvent::Incoming(Packet::PubAck(ack)) => {
                session.acked(ack.pkid);
            }
            _ => {}
        }
    }
    // rumqttc would replay its unacknowledged list (or silently drop it when the broker
    // lost the session); ours is the one that counts. Its channel and replay list belong
    // to the dead connection: none of them may reach the new one.
    eventloop.clean();
    eventloop.pending.clear();
    session.disconnected();
}

async fn net_main(
    mut eventloop: EventLoop,
    client: AsyncClient,
    shared: Arc<Shared>,
    topics: Arc<Topics>,
    mut route: Route,
    mut backoff: Backoff,
) {
    let n = route.urls.len();
    // While on a fallback, the first broker is probed by a task of its own (the poll below
    // is never cancelled for it) that says when it answers.
    let on_fallback = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first_answers = Arc::new(tokio::sync::Notify::new());
    if n > 1 {
        let (on_fallback, first_answers) = (on_fallback.clone(), first_answers.clone());
        let (addr, every) = (route.addrs[0].clone(), route.probe_every);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if on_fallback.load(std::sync::atomic::Ordering::Relaxed)
                    && answers(&addr, every).await
                {
                    first_answers.notify_one();
                }
            }
        });
    }
    // A broker that refused us (credentials, TLS) is not retried early on a probe.
    let mut refused = false;
    loop {
        // On a fallback, once the first broker answers this connection is left for it (the
        // poll is dropped with the connection; the session requeues its part).
        on_fallback.store(route.cur > 0, std::sync::atomic::Ordering::Relaxed);
        let ev = if route.cur > 0 {
            tokio::select! {
                ev = eventloop.poll() => Some(ev),
                _ = first_answers.notified() => None,
            }
        } else {
            Some(eventloop.poll().await)
        };
        // The lock is released before any await (the backoff sleep).
        let mut step = Step::Go;
        {
            let mut net = shared.lock();
            match ev {
                None => {
                    log::info!("{} answers again: leaving {}", route.urls[0], route.url());
                    drop_connection(&mut eventloop, &mut net.session);
                    route.switch(&mut eventloop, 0);
                    if net.stop {
                        step = Step::Stop;
                    }
                }
                Some(Ok(MqEvent::Incoming(Packet::ConnAck(_)))) => {
                    net.session.connected();
                    net.last_error = None;
                    net.first.get_or_insert(Ok(()));
                    backoff.reset();
                    if net.session.link().connections > 1 {
                        log::info!(
                            "connected to {}; {} message(s) queued",
                            route.url(),
                            net.session.queued()
                        );
                    }
                    feed(&mut net.session, &client, &topics);
                }
                Some(Ok(MqEvent::Outgoing(Outgoing::Publish(pkid)))) => {
                    net.session.written(pkid);
                    feed(&mut net.session, &client, &topics);
                }
                Some(Ok(MqEvent::Incoming(Packet::PubAck(ack)))) => {
                    if net.session.acked(ack.pkid) {
                        feed(&mut net.session, &client, &topics);
                    }
                }
                Some(Ok(MqEvent::Outgoing(Outgoing::Disconnect))) => {
                    net.session.disconnected();
                    step = Step::Stop;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    drop_connection(&mut eventloop, &mut net.session);
                    if net.stop || matches!(e, ConnectionError::RequestsDone) {
                        step = Step::Stop;
                    }
                    let (msg, fatal) = explain(&e, route.url());
                    // The first outcome is reported once, by whoever waits for it.
                    if net.first.is_some() && net.last_error.as_deref() != Some(msg.as_str()) {
                        if fatal {
                            log::error!("{msg}")
                        } else {
                            log::warn!("{msg}")
                        }
                    }
                    refused = fatal;
                    net.last_error = Some(msg.clone());
                    net.first.get_or_insert(Err((msg, fatal)));
                    if step == Step::Go {
                        // The next broker at once; after the last, the first after a wait.
                        if route.cur + 1 < n {
                            route.switch(&mut eventloop, route.cur + 1);
                        } else {
                            route.switch(&mut eventloop, 0);
                            step = Step::Backoff;
                        }
                    }
                }
            }
        }
        shared.changed.notify_all();
        match step {
            Step::Go => {}
            Step::Stop => break,
            Step::Backoff => {
                // Woken early by a shutdown, or by a broker that answers a probe.
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_wait()) => {}
                    _ = shared.wake.notified() => {}
                    i = probe_until(&route.addrs, n, route.probe_every), if !refused => {
                        route.switch(&mut eventloop, i)
                    }
                }
                if shared.lock().stop {
                    break;
                }
            }
        }
    }
}

fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
