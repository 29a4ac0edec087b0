//! Faults in the running sensor, each with the call events counted end to end (what the
//! sensor says it published against the `seq` numbers a subscriber received): the capture
//! interface removed and restored, the broker flapping during live capture (three SIGKILLs
//! in ~15 s here, kept short for the CI budget), and a SIGKILL with a supervisor restart.
//!
//! The sensor runs in the test's namespace on one end of a veth pair whose other end is in
//! a namespace of the test's own (`vsdeliv…`); traffic is the demo capture sent by
//! `tcpreplay` there. A visible skip (a failure under `CI`) when not root.

mod common;

use common::broker::{Broker, Sub, tempdir, wait_for, wait_until};
use common::netns::{Ns, must};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use voipsensor::publish::payload::{self, Message};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voipsensor")
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A namespace holding the sending end `peer` of a veth pair; the capturing end `cap` stays
/// in the test's namespace. Both deleted on drop.
struct Link {
    ns: Ns,
    cap: String,
    peer: String,
}

impl Link {
    #[track_caller]
    fn new() -> Option<Link> {
        let ns = Ns::new("vsdeliv")?;
        // Interface names have 15 bytes at most.
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = std::process::id() % 100_000;
        let l = Link {
            ns,
            cap: format!("vdl{id}c{n}"),
            peer: format!("vdl{id}p{n}"),
        };
        l.plug();
        Some(l)
    }

    /// (Re)creates the pair, the peer end in the namespace.
    fn plug(&self) {
        self.ns.veth_out(&self.cap, &self.peer);
    }

    /// Removes the pair (the capture interface disappears).
    fn unplug(&self) {
        must(&["ip", "link", "del", &self.cap]);
    }

    /// Sends `pcap` into the capture interface, `speed` times faster than recorded.
    fn replay(&self, pcap: &Path, speed: u32) {
        self.ns
            .replay(&self.peer, pcap, &[&format!("--multiplier={speed}")]);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The capture end is outside the namespace: dropping `ns` would leave it.
        let _ = Command::new("ip").args(["link", "del", &self.cap]).status();
    }
}

/// The sensor's file: capture `iface`, publish to `url`, spool in `spool`.
fn config(iface: &str, url: &str, spool: &Path) -> PathBuf {
    let cfg = spool.with_extension("toml");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\nsite = \"s1\"\nid = \"f1\"\n[capture]\ninterfaces = [\"{iface}\"]\n\
             [mqtt]\nurl = \"{url}\"\nreconnect_min_ms = 200\nreconnect_max_ms = 1000\n\
             connect_timeout_s = 2\nspool = \"{}\"\n",
            spool.display()
        ),
    )
    .unwrap();
    cfg
}

/// `voipsensor run` publishing to `url`, stderr collected.
struct Sensor {
    child: Child,
    err: Arc<Mutex<Vec<String>>>,
}

impl Sensor {
    fn start(iface: &str, url: &str, spool: &Path) -> Sensor {
        let cfg = config(iface, url, spool);
        let mut child = Command::new(bin())
            .args(["run", "--health-interval-s", "1", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = common::lines_of(child.stderr.take().unwrap());
        let s = Sensor { child, err };
        s.wait_err("capturing", 1, Duration::from_secs(20));
        s
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().join("\n")
    }

    /// Waits until `n` stderr lines contain `needle`.
    fn wait_err(&self, needle: &str, n: usize, t: Duration) {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if self.count(needle) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "not {n} × {needle:?} on stderr within {t:?}:\n{}",
            self.stderr()
        );
    }

    fn count(&self, needle: &str) -> usize {
        self.err
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// SIGTERM, a clean exit; returns how many call events it says it published.
    fn stop(mut self) -> u64 {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let st = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let err = self.stderr();
        assert!(st.success(), "exit {st:?}:\n{err}");
        let line = err
            .lines()
            .find(|l| l.contains("published: "))
            .unwrap_or_else(|| panic!("no published count:\n{err}"));
        // "… message(s) sent (N call event(s), …"
        line.split(" sent (")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable: {line}"))
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo(dir: &Path) -> PathBuf {
    let p = dir.join("demo.pcap");
    assert!(
        Command::new(bin())
            .arg("fixture")
            .arg(&p)
            .status()
            .unwrap()
            .success()
    );
    p
}

/// The `calls` seqs received, per run of the sensor (a run starts again at 1).
fn runs(sub: &Sub) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in sub.on("/calls") {
        let Ok(Message::Event { seq, .. }) = payload::decode(&p) else {
            panic!("not an event on calls");
        };
        if seq == 1 && seen.contains(&1) {
            out.push(Vec::new());
            seen.clear();
        }
        if out.is_empty() {
            out.push(Vec::new());
        }
        if seen.insert(seq) {
            out.last_mut().unwrap().push(seq);
        }
    }
    for r in &mut out {
        r.sort_unstable();
    }
    out
}

/// Distinct `calls` seqs received, sorted (one run of the sensor).
fn one_run(sub: &Sub) -> Vec<u64> {
    let s: std::collections::BTreeSet<u64> = sub
        .on("/calls")
        .iter()
        .map(|p| match payload::decode(p) {
            Ok(Message::Event { seq, .. }) => seq,
            other => panic!("not an event on calls: {other:?}"),
        })
        .collect();
    s.into_iter().collect()
}

/// Waits until the subscriber holds `published` distinct call events; else fails saying
/// which of them are missing.
#[track_caller]
fn all_arrive(sub: &Sub, published: u64) {
    if wait_until(Duration::from_secs(10), || {
        one_run(sub).len() as u64 == published
    })
    .is_none()
    {
        let got = one_run(sub);
        let missing: Vec<u64> = (1..=published).filter(|s| !got.contains(s)).collect();
        panic!(
            "{published} call events published, {} received in 10 s; missing seqs {missing:?}",
            got.len()
        );
    }
}

fn contiguous(r: &[u64]) -> bool {
    r.iter().copied().eq(1..=r.len() as u64)
}

/// The link, a broker that queues plenty, its subscriber `TAG-sub`, the demo capture in
/// the folder `TAG`; with the sensor capturing on the link and publishing to the broker.
struct Rig {
    link: Link,
    dir: PathBuf,
    b: Broker,
    sub: Sub,
    pcap: PathBuf,
}

impl Rig {
    #[track_caller]
    fn start(tag: &str) -> Option<(Rig, Sensor)> {
        let link = Link::new()?;
        let dir = tempdir(tag);
        let mut b = Broker::start(&dir, "allow_anonymous true\nmax_queued_messages 100000")?;
        let sub = Sub::start(b.port, &format!("{tag}-sub"));
        // A SIGKILLed mosquitto restarts from its last saved state, and without this save it
        // would come back without the subscriber's session: whatever the sensor published
        // before the subscriber subscribed again would have no one to go to. A clean stop
        // now saves the session (its subscription, an empty queue); every later restart
        // loads it, so messages that arrive before the subscriber is back are queued for it.
        b.stop();
        b.restart();
        let pcap = demo(&dir);
        let s = Sensor::start(&link.cap, &b.url(), &dir.join("spool"));
        Some((
            Rig {
                link,
                dir,
                b,
                sub,
                pcap,
            },
            s,
        ))
    }
}

#[test]
fn capture_interface_removed_and_restored_keeps_capturing_and_every_call_event_arrives() {
    let Some((rig, s)) = Rig::start("deliv-faults-if") else {
        return;
    };
    let Rig {
        link, sub, pcap, ..
    } = &rig;
    link.replay(pcap, 4);
    link.unplug();
    s.wait_err("interface disappeared", 1, Duration::from_secs(10));
    link.plug();
    s.wait_err("capture resumed", 1, Duration::from_secs(10));
    link.replay(pcap, 4);
    std::thread::sleep(Duration::from_secs(1));
    let published = s.stop();
    all_arrive(sub, published);
    let r = one_run(sub);
    println!(
        "interface removed and restored: {published} call events published, {} received, \
         no gap",
        r.len()
    );
    assert!(contiguous(&r), "gaps: {r:?}");
    // The demo has 60 call events; the second replay after the restore added more.
    assert!(
        published > 60,
        "the restored interface was not captured: {published}"
    );
}

#[test]
fn broker_flapping_during_live_capture_loses_no_call_event() {
    let Some((mut rig, s)) = Rig::start("deliv-faults-flap") else {
        return;
    };
    let Rig {
        link, b, sub, pcap, ..
    } = &mut rig;
    // The demo at real speed (12.5 s) while the broker is SIGKILLed three times.
    std::thread::scope(|t| {
        let sender = t.spawn(|| link.ns.replay(&link.peer, pcap, &[]));
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(1500));
            b.kill();
            std::thread::sleep(Duration::from_millis(1500));
            b.restart();
        }
        assert!(sender.join().is_ok(), "tcpreplay failed");
    });
    std::thread::sleep(Duration::from_secs(1));
    let published = s.stop();
    all_arrive(sub, published);
    let r = one_run(sub);
    println!(
        "broker SIGKILLed 3 times during live capture: {published} call events published, \
         {} received, no gap",
        r.len()
    );
    assert!(contiguous(&r), "gaps: {r:?}");
    assert!(published >= 40, "{published}");
}

#[test]
fn sigkill_and_a_supervisor_restart_shows_offline_then_delivers_the_new_run_completely() {
    let Some((rig, s)) = Rig::start("deliv-faults-kill") else {
        return;
    };
    let Rig {
        link,
        dir,
        b,
        sub,
        pcap,
    } = &rig;
    link.replay(pcap, 4);
    wait_for(
        "the first run's call events",
        Duration::from_secs(10),
        || runs(sub).first().map_or(0, Vec::len) >= 40,
    );
    s.kill();
    // The broker publishes the Last Will: a retained offline status.
    wait_for("the Last Will", Duration::from_secs(10), || {
        sub.last_state() == Some(payload::State::Offline)
    });
    // The supervisor starts it again.
    let s = Sensor::start(&link.cap, &b.url(), &dir.join("spool"));
    link.replay(pcap, 4);
    std::thread::sleep(Duration::from_secs(1));
    let published = s.stop();
    wait_for(
        "the second run's call events",
        Duration::from_secs(10),
        || runs(sub).get(1).map_or(0, Vec::len) as u64 == published,
    );
    let r = runs(sub);
    println!(
        "SIGKILL + restart: first run {} call events received before the kill (no gap), \
         second run {published} published, {} received",
        r[0].len(),
        r[1].len()
    );
    assert!(contiguous(&r[0]), "first run gaps: {:?}", r[0]);
    assert!(contiguous(&r[1]), "second run gaps: {:?}", r[1]);
}

/// Files opened for writing in an strace log (`openat(…, O_WRONLY|…)`).
fn written_files(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|l| l.contains("open") && (l.contains("O_WRONLY") || l.contains("O_RDWR")))
        .filter(|l| !l.contains("= -1 "))
        .filter_map(|l| l.split('"').nth(1).map(String::from))
        .collect()
}

#[test]
fn sigterm_with_the_broker_down_spools_the_queue_the_next_start_sends_it_first_and_run_writes_no_other_file()
 {
    let Some(link) = Link::new() else { return };
    if !common::need_tool("strace", "strace") {
        return;
    }
    let dir = tempdir("deliv-faults-spool");
    let pcap = demo(&dir);
    let port = common::broker::free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let spool = dir.join("spool");
    // First run, traced: the broker never comes up.
    let trace = dir.join("strace.log");
    let cfg = config(&link.cap, &url, &spool);
    let mut child = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,creat,truncate,rename,mkdir",
            "-o",
        ])
        .arg(&trace)
        .arg(bin())
        .args(["run", "--health-interval-s", "1", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = common::lines_of(child.stderr.take().unwrap());
    wait_for("capturing", Duration::from_secs(20), || {
        err.lock().unwrap().iter().any(|l| l.contains("capturing"))
    });
    link.replay(&pcap, 4);
    std::thread::sleep(Duration::from_secs(1));
    // strace's child is the sensor: signal it, not strace.
    let pid = std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
        .unwrap();
    let pid: i32 = pid.split_whitespace().next().unwrap().parse().unwrap();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    let log = err.lock().unwrap().join("\n");
    assert!(log.contains("spooled to"), "{log}");
    let spool_file = spool.join("outbox");
    assert!(spool_file.is_file(), "{log}");
    let writes = written_files(&std::fs::read_to_string(&trace).unwrap());
    let others: Vec<&String> = writes
        .iter()
        .filter(|f| !f.starts_with(&spool.display().to_string()))
        .collect();
    assert!(
        others.is_empty(),
        "run opened for writing more than its spool: {others:?}"
    );
    // The broker is back; the supervisor starts the sensor again.
    let Some(b) = Broker::start_on(&dir, port, false, "allow_anonymous true") else {
        return;
    };
    let sub = Sub::start(b.port, "deliv-faults-spool-sub");
    let s = Sensor::start(&link.cap, &url, &spool);
    link.replay(&pcap, 4);
    std::thread::sleep(Duration::from_secs(1));
    let published = s.stop();
    let r = || runs(&sub);
    wait_for("both runs", Duration::from_secs(10), || {
        r().get(1).map_or(0, Vec::len) as u64 == published
    });
    let r = r();
    println!(
        "SIGTERM with the broker down: {} call events spooled, sent first by the next start; \
         then {published} of the new run; files opened for writing: {writes:?}",
        r[0].len()
    );
    assert!(r[0].len() >= 40, "spooled run: {:?}", r[0]);
    assert!(contiguous(&r[0]) && contiguous(&r[1]));
    assert!(!spool_file.exists());
}
