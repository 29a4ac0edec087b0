//! Delivery you can prove: every call event (`calls`, QoS 1) reaches the broker at least
//! once, in `seq` order per connection, with duplicates only as resends of messages the
//! broker had not acknowledged, across connection resets, selective and reordered acks,
//! real mosquitto killed with SIGKILL (persistence on and off), and a slow link.
//!
//! The scripted broker is a small MQTT 3.1.1 server (rumqttc's own `mqttbytes::v4` codec):
//! it acks some publishes at once, some late and out of order, some never, and resets the
//! connection after a few publishes, or when the client goes quiet with acks withheld.

mod common;

use bytes::BytesMut;
use common::broker::{Broker, Sub, free_port, tempdir, wait_for};
use rumqttc::mqttbytes;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet, PingResp, PubAck};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use voipsensor::config::{self, Config};
use voipsensor::publish::Publisher;
use voipsensor::publish::payload::{self, Format, Message};
use voipsensor::track::event::{CallEventKind, Event};

fn call(i: u32) -> Event {
    let mut c = common::call_event(i, CallEventKind::Answered, 1_000);
    c.code = Some(200);
    c.setup_ms = Some(1200);
    c.pdd_ms = Some(700);
    Event::Call(c)
}

fn cfg(url: &str, min_ms: u64, max_ms: u64) -> Config {
    let mut c = config::options_from_cli(url, "s1", "d1", Format::Postcard).unwrap();
    c.mqtt.reconnect_min_ms = min_ms;
    c.mqtt.reconnect_max_ms = max_ms;
    c.mqtt.connect_timeout_s = 2;
    c.mqtt.keepalive_s = 5;
    c
}

fn seq_of(p: &[u8]) -> u64 {
    match payload::decode(p) {
        Ok(Message::Event { seq, .. }) => seq,
        other => panic!("not an event on calls: {other:?}"),
    }
}

/// A tiny deterministic generator (xorshift64*): the script is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// One `calls` message as the scripted broker received it.
#[derive(Debug, Clone, Copy)]
struct Rx {
    conn: u32,
    seq: u64,
    acked: bool,
}

#[derive(Default)]
struct Log {
    rx: Vec<Rx>,
    connections: u32,
    resets: u32,
}

struct Scripted {
    port: u16,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    fn start(seed: u64) -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed);
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => {
                            let conn = {
                                let mut g = log.lock().unwrap();
                                g.connections += 1;
                                g.connections
                            };
                            let (log, seed) = (log.clone(), rng.below(u64::MAX) | 1);
                            std::thread::spawn(move || serve(s, conn, Rng(seed), &log));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        Scripted { port, log, stop }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One connection: CONNACK, then per QoS 1 publish an ack now (60 %), late and out of
/// order (20 %) or never (20 %); a reset after 3..=30 publishes, or after 300 ms of quiet
/// with an ack withheld. The reset sends what was acked, then FIN, then drains the
/// client: an ack written is an ack the client can read.
fn serve(mut s: TcpStream, conn: u32, mut rng: Rng, log: &Mutex<Log>) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let limit = 3 + rng.below(28);
    let mut buf = BytesMut::with_capacity(1 << 16);
    let mut chunk = [0u8; 8192];
    let mut publishes = 0;
    let mut withheld = 0;
    // Acks held back, sent after a later one: (pkid, index in the log).
    let mut late: Vec<(u16, Option<usize>)> = Vec::new();
    let mut quiet_since = Instant::now();
    let reset = loop {
        match s.read(&mut chunk) {
            Ok(0) => break false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                quiet_since = Instant::now();
            }
            Err(_) => {
                if (withheld > 0 || !late.is_empty())
                    && quiet_since.elapsed() > Duration::from_millis(300)
                {
                    break true;
                }
                continue;
            }
        }
        let mut out = BytesMut::new();
        let mut done = None;
        loop {
            let p = match Packet::read(&mut buf, 1 << 20) {
                Ok(p) => p,
                Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(e) => panic!("scripted broker: bad packet from the sensor: {e:?}"),
            };
            match p {
                Packet::Connect(_) => {
                    ConnAck::new(ConnectReturnCode::Success, false)
                        .write(&mut out)
                        .unwrap();
                }
                Packet::PingReq => {
                    PingResp.write(&mut out).unwrap();
                }
                Packet::Disconnect => done = Some(false),
                Packet::Publish(p) if p.qos != rumqttc::QoS::AtMostOnce => {
                    publishes += 1;
                    let idx = p.topic.ends_with("/calls").then(|| {
                        let mut g = log.lock().unwrap();
                        g.rx.push(Rx {
                            conn,
                            seq: seq_of(&p.payload),
                            acked: false,
                        });
                        g.rx.len() - 1
                    });
                    match rng.below(10) {
                        0..=5 => {
                            ack(&mut out, p.pkid, idx, log);
                            // Then the late ones, newest first: out of order.
                            while let Some((pkid, idx)) = late.pop() {
                                ack(&mut out, pkid, idx, log);
                            }
                        }
                        6 | 7 => late.push((p.pkid, idx)),
                        _ => withheld += 1,
                    }
                    if publishes >= limit {
                        done = Some(true);
                    }
                }
                _ => {}
            }
            if done.is_some() {
                break;
            }
        }
        if s.write_all(&out).is_err() {
            break false;
        }
        if let Some(reset) = done {
            break reset;
        }
    };
    if reset {
        log.lock().unwrap().resets += 1;
        let _ = s.shutdown(Shutdown::Write);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) && !matches!(s.read(&mut chunk), Ok(0)) {}
    }
}

fn ack(out: &mut BytesMut, pkid: u16, idx: Option<usize>, log: &Mutex<Log>) {
    PubAck::new(pkid).write(out).unwrap();
    if let Some(i) = idx {
        log.lock().unwrap().rx[i].acked = true;
    }
}

/// Checks the broker's log: every `seq` of 1..=n received, increasing on each
/// connection, and each repeat preceded only by receptions the broker never acked.
/// Returns the number of duplicates.
fn check(rx: &[Rx], n: u64) -> usize {
    let mut last: HashMap<u32, u64> = HashMap::new();
    let mut acked_before: BTreeMap<u64, bool> = BTreeMap::new();
    let mut dups = 0;
    for r in rx {
        if let Some(&l) = last.get(&r.conn) {
            assert!(
                r.seq > l,
                "connection {}: seq {} after {l}: order broken",
                r.conn,
                r.seq
            );
        }
        last.insert(r.conn, r.seq);
        match acked_before.get(&r.seq) {
            Some(true) => panic!("seq {} sent again after the broker acked it", r.seq),
            Some(false) => dups += 1,
            None => {}
        }
        *acked_before.entry(r.seq).or_default() |= r.acked;
    }
    let lost: Vec<u64> = (1..=n).filter(|s| !acked_before.contains_key(s)).collect();
    assert!(lost.is_empty(), "call events lost: {lost:?}");
    let unacked: Vec<u64> = (1..=n).filter(|s| !acked_before[s]).collect();
    assert!(
        unacked.is_empty(),
        "never acknowledged yet the sensor stopped: {unacked:?}"
    );
    dups
}

#[test]
fn resets_and_selective_out_of_order_acks_lose_no_call_event_and_resend_only_unacked_ones() {
    const N: u32 = 1500;
    let b = Scripted::start(0x5EED_0001);
    let url = format!("mqtt://127.0.0.1:{}", b.port);
    let mut p = Publisher::start(&cfg(&url, 10, 40)).unwrap();
    for i in 1..=N {
        p.publish(&call(i));
        // Publishing goes on while acks arrive and connections reset.
        if i % 25 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let stats = p.finish(Duration::from_secs(60)).unwrap();
    let g = b.log.lock().unwrap();
    let dups = check(&g.rx, u64::from(N));
    println!(
        "scripted broker: {N} call events, {} resets over {} connections, {} receptions, \
         {dups} duplicates (all resends of unacked messages), 0 lost, order held; \
         sensor: {stats}",
        g.resets,
        g.connections,
        g.rx.len()
    );
    assert!(g.resets >= 50, "only {} resets", g.resets);
    assert!(dups > 0, "the script withheld acks: some resends must show");
    assert_eq!(stats.outbox.dropped_calls, 0);
}

/// A TCP proxy adding `delay` each way; [`DelayProxy::cut`] resets every connection, and
/// while [`DelayProxy::close`]d it drops new ones at once (until [`DelayProxy::open`]).
struct DelayProxy {
    port: u16,
    live: Arc<Mutex<Vec<TcpStream>>>,
    open: Arc<AtomicBool>,
}

impl DelayProxy {
    fn start(upstream: u16, delay: Duration) -> DelayProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let live = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicBool::new(true));
        {
            let (live, open) = (live.clone(), open.clone());
            std::thread::spawn(move || {
                for c in l.incoming() {
                    let Ok(c) = c else { continue };
                    if !open.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection reset
                    }
                    let Ok(u) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    let _ = c.set_nodelay(true);
                    let _ = u.set_nodelay(true);
                    {
                        let mut g = live.lock().unwrap();
                        g.push(c.try_clone().unwrap());
                        g.push(u.try_clone().unwrap());
                    }
                    pump(c.try_clone().unwrap(), u.try_clone().unwrap(), delay);
                    pump(u, c, delay);
                }
            });
        }
        DelayProxy { port, live, open }
    }

    /// New connections are dropped, live ones reset.
    fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut();
    }

    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    fn cut(&self) {
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to`, each chunk held back by `delay` (order kept).
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut b = [0u8; 8192];
        while let Ok(n) = from.read(&mut b) {
            if n == 0 || tx.send((Instant::now() + delay, b[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// Distinct `calls` seqs the subscriber got, checking nothing else arrived there.
fn seqs(sub: &Sub) -> std::collections::BTreeSet<u64> {
    sub.on("/calls").iter().map(|p| seq_of(p)).collect()
}

#[test]
fn a_slow_link_cut_repeatedly_delivers_every_call_event_through_a_delay_proxy() {
    const N: u32 = 300;
    let dir = tempdir("deliv-proxy");
    let Some(b) = Broker::start(&dir, "allow_anonymous true\nmax_queued_messages 100000") else {
        return;
    };
    let sub = Sub::start(b.port, "deliv-proxy-sub");
    // 40 ms each way: an 80 ms round trip, a branch WAN link.
    let proxy = DelayProxy::start(b.port, Duration::from_millis(40));
    let url = format!("mqtt://127.0.0.1:{}", proxy.port);
    let mut p = Publisher::start(&cfg(&url, 50, 200)).unwrap();
    let mut cuts = 0u64;
    for i in 1..=N {
        p.publish(&call(i));
        std::thread::sleep(Duration::from_millis(5));
        if i % 50 == 0 {
            proxy.cut();
            cuts += 1;
        }
    }
    let stats = p.finish(Duration::from_secs(30)).unwrap();
    wait_for("every call event", Duration::from_secs(10), || {
        seqs(&sub).len() == N as usize
    });
    let got = seqs(&sub);
    assert_eq!(got.first(), Some(&1));
    assert_eq!(got.last(), Some(&u64::from(N)));
    println!(
        "delay proxy (40 ms each way, {cuts} cuts): {N} call events, {} received with \
         duplicates, 0 lost; sensor: {stats}",
        sub.on("/calls").len()
    );
    assert_eq!(stats.outbox.dropped_calls, 0);
    assert!(stats.connections > cuts / 2, "{stats}");
}

fn mosquitto_killed_repeatedly(persistence: bool) {
    const N: u32 = 400;
    let dir = tempdir(&format!("deliv-kill-{persistence}"));
    let Some(mut b) = Broker::start_on(
        &dir,
        free_port(),
        persistence,
        "allow_anonymous true\nmax_queued_messages 100000",
    ) else {
        return;
    };
    let sub = Sub::start(b.port, &format!("deliv-kill-sub-{persistence}"));
    // A SIGKILLed mosquitto forgets the subscriber's session (with persistence, it starts
    // from its last save, and there is none): what the sensor sent before the subscriber
    // subscribed again would go to no one. So the sensor reaches the broker through a
    // gate opened only once the subscriber is back: no timing is relied on.
    let gate = DelayProxy::start(b.port, Duration::ZERO);
    let mut p =
        Publisher::start(&cfg(&format!("mqtt://127.0.0.1:{}", gate.port), 300, 600)).unwrap();
    let mut kills = 0u64;
    for i in 1..=N {
        p.publish(&call(i));
        std::thread::sleep(Duration::from_millis(10));
        if i % 50 == 25 {
            gate.close();
            b.kill();
            kills += 1;
        }
        if i % 50 == 35 {
            let before = sub.subscriptions();
            b.restart();
            wait_for("the subscriber back", Duration::from_secs(10), || {
                sub.subscriptions() > before
            });
            gate.open();
        }
    }
    let stats = p.finish(Duration::from_secs(20)).unwrap();
    wait_for("every call event", Duration::from_secs(10), || {
        seqs(&sub).len() == N as usize
    });
    println!(
        "mosquitto SIGKILLed {kills} times (persistence {persistence}): {N} call events \
         delivered, 0 lost; sensor: {stats}"
    );
    assert_eq!(stats.outbox.dropped_calls, 0);
    assert!(stats.connections > kills, "{stats}");
}

#[test]
fn mosquitto_killed_and_restarted_repeatedly_with_persistence_loses_no_call_event() {
    mosquitto_killed_repeatedly(true);
}

#[test]
fn mosquitto_killed_and_restarted_repeatedly_without_persistence_loses_no_call_event() {
    mosquitto_killed_repeatedly(false);
}

#[test]
fn the_first_broker_killed_mid_stream_fails_over_to_the_second_and_back_losing_no_call_event() {
    const N: u32 = 400;
    let dir_a = tempdir("deliv-fo-a");
    let dir_b = tempdir("deliv-fo-b");
    let extra = "allow_anonymous true\nmax_queued_messages 100000";
    let Some(mut a) = Broker::start_on(&dir_a, free_port(), false, extra) else {
        return;
    };
    let Some(b) = Broker::start_on(&dir_b, free_port(), false, extra) else {
        return;
    };
    let sub_a = Sub::start(a.port, "deliv-fo-sub-a");
    let sub_b = Sub::start(b.port, "deliv-fo-sub-b");
    let mut c = cfg(&a.url(), 200, 1000);
    c.mqtt.brokers = vec![b.url()];
    let mut p = Publisher::start(&c).unwrap();
    let (mut killed_at, mut back_at) = (Instant::now(), Instant::now());
    for i in 1..=N {
        p.publish(&call(i));
        std::thread::sleep(Duration::from_millis(10));
        if i == 100 {
            a.kill();
            killed_at = Instant::now();
        }
        if i == 250 {
            a.restart();
            back_at = Instant::now();
        }
    }
    let stats = p.finish(Duration::from_secs(20)).unwrap();
    let all = || {
        let mut s = seqs(&sub_a);
        s.extend(seqs(&sub_b));
        s
    };
    wait_for(
        "every call event on one broker or the other",
        Duration::from_secs(10),
        || all().len() == N as usize,
    );
    let (on_a, on_b) = (seqs(&sub_a), seqs(&sub_b));
    println!(
        "failover: {N} call events, {} on the first broker, {} on the second (killed after \
         100, back after 250; {:.1} s down), 0 lost; sensor: {stats}",
        on_a.len(),
        on_b.len(),
        (back_at - killed_at).as_secs_f64()
    );
    assert!(
        on_b.contains(&150),
        "failed over: the second broker got events meanwhile"
    );
    assert!(
        (N - 50..=N).all(|s| on_a.contains(&u64::from(s))),
        "returned to the first broker once it answered again"
    );
    assert_eq!(stats.outbox.dropped_calls, 0);
}

#[test]
fn a_stop_with_the_broker_down_spools_the_queue_and_the_next_start_sends_it_first() {
    let dir = tempdir("deliv-spool");
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let spool = voipsensor::publish::spool::SpoolSettings {
        dir: dir.join("spool"),
        max_bytes: 1 << 20,
    };
    let settings = || {
        let mut s = voipsensor::publish::PublishSettings::try_from(&cfg(&url, 100, 200)).unwrap();
        s.spool = Some(spool.clone());
        s
    };
    // The broker is down for the whole first run.
    let mut p = Publisher::start(settings()).unwrap();
    for i in 1..=40 {
        p.publish(&call(i));
    }
    let stats = p.finish(Duration::from_secs(1)).unwrap();
    assert_eq!(stats.outbox.dropped_calls, 0, "{stats}");
    assert!(
        spool.file().is_file(),
        "spooled to {}",
        spool.file().display()
    );
    let Some(_b) = Broker::start_on(&dir, port, false, "allow_anonymous true") else {
        return;
    };
    let sub = Sub::start(port, "deliv-spool-sub");
    let mut p = Publisher::start(settings()).unwrap();
    for i in 1..=5 {
        p.publish(&call(1000 + i));
    }
    p.finish(Duration::from_secs(10)).unwrap();
    wait_for("45 call events", Duration::from_secs(10), || {
        sub.on("/calls").len() >= 45
    });
    let got: Vec<u64> = sub.on("/calls").iter().map(|p| seq_of(p)).collect();
    let want: Vec<u64> = (1..=40).chain(1..=5).collect();
    assert_eq!(got, want, "the spooled run first, then the new one");
    assert!(!spool.file().exists(), "the spool is taken once");
}

#[test]
fn a_long_backoff_ends_as_soon_as_the_broker_answers_a_probe_and_at_once_on_shutdown() {
    let dir = tempdir("deliv-probe");
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    // A 60 s backoff: only a probe (every second at most) can bring the reconnect earlier.
    let mut p = Publisher::start(&cfg(&url, 60_000, 60_000)).unwrap();
    p.publish(&call(1));
    std::thread::sleep(Duration::from_millis(500));
    let Some(_b) = Broker::start_on(&dir, port, false, "allow_anonymous true") else {
        return;
    };
    let up = Instant::now();
    let sub = Sub::start(port, "deliv-probe-sub");
    wait_for(
        "the call event, well before the backoff ends",
        Duration::from_secs(5),
        || !sub.on("/calls").is_empty(),
    );
    println!("delivered {:?} after the broker came up", up.elapsed());
    p.finish(Duration::from_secs(5)).unwrap();

    // Broker down again, a 60 s backoff running: a stop does not wait for it.
    let port = free_port();
    let mut p =
        Publisher::start(&cfg(&format!("mqtt://127.0.0.1:{port}"), 60_000, 60_000)).unwrap();
    p.publish(&call(2));
    let t0 = Instant::now();
    assert!(
        p.finish(Duration::from_millis(500)).is_err(),
        "undelivered: an error"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "stopped after {:?}",
        t0.elapsed()
    );
}
