//! `voipsensor run` on real interfaces: network namespaces and veth pairs made by the test,
//! traffic from `tcpreplay` and SIPp. A visible skip (a failure under `CI`) when not root or
//! when namespaces cannot be made; CI runs as root.

mod common;

use common::netns::{Ns, must};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voipsensor")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("voipsensor-live-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// `voipsensor run` in a namespace, stdout and stderr collected line by line.
struct Sensor {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Sensor {
    fn start(ns: &Ns, args: &[&str]) -> Sensor {
        let mut child = ns
            .exec(&[bin(), "run", "--health-interval-s", "1"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = common::lines_of(child.stdout.take().unwrap());
        let err = common::lines_of(child.stderr.take().unwrap());
        let s = Sensor { child, out, err };
        s.wait_err("capturing", Duration::from_secs(20));
        s
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signals our own child (`ip netns exec` execs the sensor: same pid).
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().join("\n")
    }

    fn wait_err(&self, needle: &str, t: Duration) {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if self.err.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no {needle:?} on stderr within {t:?}:\n{}", self.stderr());
    }

    /// Waits for a stdout JSON line matching `pred`.
    fn wait_json(&self, t: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if let Some(v) = self
                .out
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| pred(v))
            {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no matching JSON line within {t:?}; stderr:\n{}",
            self.stderr()
        );
    }

    /// SIGTERM, waits for a clean exit, returns every stdout line as JSON.
    fn stop(mut self) -> Vec<Value> {
        self.signal(libc::SIGTERM);
        let end = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "sensor did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200)); // reader threads drain
        assert!(status.success(), "exit {status:?}:\n{}", self.stderr());
        self.json()
    }

    fn json(&self) -> Vec<Value> {
        self.out
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// mosquitto on `port` inside a namespace, given half a second to listen; killed on drop.
struct NsBroker(Child);

impl NsBroker {
    #[track_caller]
    fn start(ns: &Ns, port: u16) -> Option<NsBroker> {
        if !common::need_tool("mosquitto", "mosquitto") {
            return None;
        }
        let child = ns
            .exec(&["mosquitto", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        Some(NsBroker(child))
    }
}

impl Drop for NsBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo capture, written once per test process (parallel tests must not read it
/// half-written).
fn demo() -> PathBuf {
    static DEMO: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let p = tmp("demo.pcap");
        let st = Command::new(bin()).arg("fixture").arg(&p).status().unwrap();
        assert!(st.success());
        p
    })
    .clone()
}

/// Replays the demo into `iface` at top speed, gives the sensor 1.5 s to read it all and
/// stops it: its JSON lines.
fn demo_then_stop(ns: &Ns, iface: &str, s: Sensor) -> Vec<Value> {
    ns.replay(iface, &demo(), &["--topspeed"]);
    std::thread::sleep(Duration::from_millis(1500));
    s.stop()
}

/// The call events' fields that do not depend on packet timing, for comparing a live run
/// with `replay` (tcpreplay re-times packets; timeouts and the final closure differ).
fn call_facts(lines: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == "call")
        .filter(|l| {
            !matches!(
                l["event"].as_str(),
                Some("timeout" | "sensor_stopped" | "evicted")
            )
        })
        .map(|l| {
            format!(
                "{} {} {} {} {} {} {} {} {}",
                l["event"],
                l["call_id"],
                l["caller"],
                l["callee"],
                l["src"],
                l["dst"],
                l["code"],
                l["reason"],
                l["ended_by"]
            )
        })
        .collect();
    v.sort();
    v
}

/// RTP packets per stream (ssrc, src, dst), summed over its intervals: independent of how
/// packets fall into seconds.
fn rtp_totals(lines: &[Value]) -> Vec<String> {
    let mut m = std::collections::BTreeMap::<String, u64>::new();
    for l in lines.iter().filter(|l| l["type"] == "rtp_interval") {
        *m.entry(format!("{} {} {}", l["ssrc"], l["src"], l["dst"]))
            .or_default() += l["packets"].as_u64().unwrap_or(0);
    }
    m.into_iter().map(|(k, n)| format!("{k} {n}")).collect()
}

fn replay_json(p: &Path) -> Vec<Value> {
    let out = Command::new(bin()).arg("replay").arg(p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ethernet(p: &Path) -> bool {
    voipsensor::capture::file::CaptureFile::open(p).is_ok_and(|c| c.dlt() == 1)
}

#[test]
fn live_capture_of_a_replayed_capture_gives_the_same_calls_as_replay() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let mut inputs = vec![demo()];
    for name in [
        "fax_call_t38_reinvite_dtmf.pcap",
        "aaa_register_cancel_4xx.pcap",
        "erspan_sip_multicall_hold.pcapng",
        "sip_tcp6060_segmented_70calls.pcap",
        "sip_call_rtp_g711.pcap",
    ] {
        if let Some(p) = common::shared(name)
            && ethernet(&p)
        {
            inputs.push(p);
        }
    }
    for p in inputs {
        let s = Sensor::start(&ns, &["-i", "vsb"]);
        ns.replay("vsa", &p, &["--topspeed"]);
        std::thread::sleep(Duration::from_millis(1500));
        let live = s.stop();
        let want = replay_json(&p);
        assert!(!call_facts(&want).is_empty(), "{}", p.display());
        assert_eq!(
            call_facts(&live),
            call_facts(&want),
            "call events differ for {}",
            p.display()
        );
        assert_eq!(
            rtp_totals(&live),
            rtp_totals(&want),
            "RTP per stream differs for {}",
            p.display()
        );
        let health = live.iter().rev().find(|l| l["type"] == "health").unwrap();
        assert_eq!(health["capture"]["total"]["dropped_kernel"], 0);
    }
}

#[test]
fn a_sipp_call_is_seen_and_measured_as_json_lines() {
    let Some(ns) = Ns::new("vslive") else { return };
    if !common::need_tool("sipp", "sip-tester") {
        return;
    }
    // Two namespaces so the call really crosses the veth: UAC in `peer`, UAS in `ns`.
    let Some(peer) = Ns::new("vslive") else {
        return;
    };
    ns.veth("vsa", "vsb");
    must(&["ip", "-n", &ns.0, "link", "set", "vsa", "netns", &peer.0]);
    must(&[
        "ip",
        "-n",
        &peer.0,
        "addr",
        "add",
        "10.77.0.1/24",
        "dev",
        "vsa",
    ]);
    must(&["ip", "-n", &peer.0, "link", "set", "vsa", "up"]);
    must(&[
        "ip",
        "-n",
        &ns.0,
        "addr",
        "add",
        "10.77.0.2/24",
        "dev",
        "vsb",
    ]);
    let s = Sensor::start(&ns, &["-i", "vsb"]);
    let mut uas = ns
        .exec(&[
            "sipp",
            "-sn",
            "uas",
            "-i",
            "10.77.0.2",
            "-p",
            "5060",
            "-mi",
            "10.77.0.2",
            "-mp",
            "16000",
            "-rtp_echo",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // uac_pcap plays real G.711 RTP (and RFC 2833 digits) from `pcap/`; the UAS echoes it.
    let media = tmp("sipp");
    std::fs::create_dir_all(&media).unwrap();
    let _ = std::os::unix::fs::symlink("/usr/share/sip-tester", media.join("pcap"));
    let st = peer
        .exec(&[
            "sipp",
            "-sn",
            "uac_pcap",
            "10.77.0.2:5060",
            "-i",
            "10.77.0.1",
            "-p",
            "5070",
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
        ])
        .current_dir(&media)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let _ = uas.kill();
    let _ = uas.wait();
    assert!(st.success(), "sipp uac failed: {st:?}");
    s.wait_json(Duration::from_secs(10), |v| {
        v["type"] == "call" && v["event"] == "ended"
    });
    std::thread::sleep(Duration::from_secs(3)); // last intervals and stream ends
    let lines = s.stop();
    let events: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "call")
        .filter_map(|l| l["event"].as_str())
        .collect();
    for e in ["invite", "answered", "ended"] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    let intervals: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "rtp_interval")
        .collect();
    assert!(
        intervals.len() >= 4,
        "{} rtp_interval lines",
        intervals.len()
    );
    assert!(
        intervals
            .iter()
            .any(|i| i["mos"].as_f64().is_some_and(|m| m > 3.0))
    );
    let ended = lines.iter().find(|l| l["event"] == "ended").unwrap();
    // Both directions measured (flat or nested JSON form).
    for side in ["caller", "callee"] {
        let packets = ended[format!("quality_{side}_packets")]
            .as_u64()
            .or_else(|| ended[format!("quality_{side}")]["packets"].as_u64())
            .unwrap_or(0);
        assert!(packets > 100, "{side}: {packets} packets in {ended}");
    }
}

#[test]
fn capture_resumes_after_the_interface_is_deleted_and_recreated() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb"]);
    must(&["ip", "-n", &ns.0, "link", "del", "vsa"]);
    s.wait_err("capture lost", Duration::from_secs(10));
    s.wait_json(Duration::from_secs(10), |v| {
        v["type"] == "health" && v["interfaces"][0]["state"] == "absent"
    });
    ns.veth("vsa", "vsb");
    s.wait_err("capture resumed", Duration::from_secs(20));
    let lines = demo_then_stop(&ns, "vsa", s);
    assert!(lines.iter().filter(|l| l["type"] == "call").count() > 20);
    let h = lines.iter().rev().find(|l| l["type"] == "health").unwrap();
    assert_eq!(h["interfaces"][0]["state"], "capturing");
    assert!(h["interfaces"][0]["reopens"].as_u64().unwrap() >= 1);
}

#[test]
fn an_interface_absent_at_start_is_waited_for() {
    let Some(ns) = Ns::new("vslive") else { return };
    let child = ns
        .exec(&[bin(), "run", "-i", "vsb", "--health-interval-s", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    ns.veth("vsa", "vsb");
    std::thread::sleep(Duration::from_secs(4));
    // SAFETY: our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("no such interface"), "{err}");
    assert!(err.contains("vsb: capturing"), "{err}");
}

#[test]
fn sigterm_ends_the_open_calls_with_sensor_stopped_and_exits_0() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb"]);
    // The first 400 frames: calls answered, none hung up yet.
    ns.replay("vsa", &demo(), &["--topspeed", "--limit", "400"]);
    s.wait_json(Duration::from_secs(10), |v| v["event"] == "answered");
    let lines = s.stop();
    let stopped: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "call" && l["event"] == "sensor_stopped")
        .collect();
    assert!(!stopped.is_empty(), "no sensor_stopped call");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "stream_end" && l["reason"] == "sensor_stopped")
    );
    assert_eq!(lines.last().unwrap()["type"], "summary");
}

#[test]
fn a_one_direction_only_mirror_raises_the_unidirectional_warning() {
    let Some(ns) = Ns::new("vslive") else { return };
    if !common::need_tool("tshark", "tshark") {
        return;
    }
    // Only what the callers (10.0.1.x) send: the mirror of one direction of the trunk.
    let one_way = tmp("one_way.pcap");
    must(&[
        "tshark",
        "-r",
        demo().to_str().unwrap(),
        "-Y",
        "ip.src == 10.0.1.0/24",
        "-F",
        "pcap",
        "-w",
        one_way.to_str().unwrap(),
    ]);
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb"]);
    ns.replay("vsa", &one_way, &["--topspeed"]);
    let h = s.wait_json(Duration::from_secs(20), |v| {
        v["type"] == "health"
            && v["warnings"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["code"] == "unidirectional_mirror"))
    });
    let w = h["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "unidirectional_mirror")
        .unwrap();
    let msg = w["message"].as_str().unwrap();
    assert!(msg.contains("only 10.0.1."), "{msg}");
    assert!(msg.contains("→10.0.2."), "{msg}");
    s.wait_err("mirror looks unidirectional", Duration::from_secs(2));
    s.stop();
}

#[test]
fn kernel_drops_appear_in_health_when_the_ring_overflows() {
    let Some(ns) = Ns::new("vslive") else { return };
    let load = tmp("load.pcap");
    if !load.exists() {
        must(&[
            bin(),
            "fixture",
            load.to_str().unwrap(),
            "--scenario",
            "long",
            "--calls",
            "100",
            "--seconds",
            "10",
        ]);
    }
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb", "--buffer-mb", "1"]);
    // A stopped reader and a fast sender: the 1 MiB ring must overflow.
    s.signal(libc::SIGSTOP);
    ns.replay("vsa", &load, &["--topspeed"]);
    s.signal(libc::SIGCONT);
    let h = s.wait_json(Duration::from_secs(10), |v| {
        v["type"] == "health"
            && v["capture"]["total"]["dropped_kernel"]
                .as_u64()
                .is_some_and(|d| d > 0)
    });
    assert!(
        h["interfaces"][0]["total"]["dropped_kernel"]
            .as_u64()
            .unwrap()
            > 0
    );
    s.wait_err("capture dropping", Duration::from_secs(3));
    let lines = s.stop();
    // Metrics of the seconds with drops say so.
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "rtp_interval" && l["capture_loss"] == true),
        "no rtp_interval with capture_loss"
    );
}

#[test]
fn after_dropping_to_a_user_only_the_capture_capabilities_remain() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb", "--user", "nobody"]);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
            .unwrap_or_default()
    };
    assert!(!field("Uid:").starts_with("0"), "{status}");
    assert_eq!(field("NoNewPrivs:"), "1");
    // CAP_NET_ADMIN (12) and CAP_NET_RAW (13) only.
    assert_eq!(field("CapEff:"), "0000000000003000");
    // Still captures, and still reopens an interface that comes back.
    must(&["ip", "-n", &ns.0, "link", "del", "vsa"]);
    s.wait_err("capture lost", Duration::from_secs(10));
    ns.veth("vsa", "vsb");
    s.wait_err("capture resumed", Duration::from_secs(20));
    let lines = demo_then_stop(&ns, "vsa", s);
    assert!(lines.iter().filter(|l| l["type"] == "call").count() > 20);
}

#[test]
fn a_frame_mirrored_to_two_interfaces_is_counted_once() {
    let Some(ns) = Ns::new("vslive") else { return };
    // A hub: a bridge that learns nothing floods every frame from x1 to y1 and z1, so the
    // sensor sees each frame on y0 and on z0, as with two SPAN sessions covering one port.
    must(&[
        "ip",
        "-n",
        &ns.0,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "ageing_time",
        "0",
    ]);
    must(&["ip", "-n", &ns.0, "link", "set", "br0", "up"]);
    for (a, b) in [("x0", "x1"), ("y0", "y1"), ("z0", "z1")] {
        ns.veth(a, b);
        must(&["ip", "-n", &ns.0, "link", "set", b, "master", "br0"]);
    }
    let s = Sensor::start(&ns, &["-i", "y0", "-i", "z0"]);
    s.wait_err("z0: capturing", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let p = demo();
    ns.replay("x0", &p, &["--topspeed"]);
    std::thread::sleep(Duration::from_millis(1500));
    let live = s.stop();
    let want = replay_json(&p);
    assert_eq!(call_facts(&live), call_facts(&want));
    assert_eq!(rtp_totals(&live), rtp_totals(&want));
    let h = live.iter().rev().find(|l| l["type"] == "health").unwrap();
    let dups = h["capture"]["duplicates"].as_u64().unwrap();
    assert!(dups >= 3500, "{dups} duplicates for 3566 frames sent twice");
}

#[test]
fn events_and_health_reach_a_broker() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let Some(broker) = NsBroker::start(&ns, 18831) else {
        return;
    };
    let cfg = tmp(&format!("mqtt-{}.toml", ns.0));
    std::fs::write(
        &cfg,
        "[capture]\ninterfaces = [\"vsb\"]\n[sensor]\nsite = \"lab\"\nid = \"live1\"\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:18831\"\n[output]\npayload = \"json\"\nhealth_interval_s = 1\n",
    )
    .unwrap();
    let mut watch = ns
        .exec(&[
            bin(),
            "watch",
            "--broker",
            "mqtt://127.0.0.1:18831",
            "--site",
            "lab",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = common::lines_of(watch.stdout.take().unwrap());
    let s = Sensor::start(&ns, &["--config", cfg.to_str().unwrap()]);
    ns.replay("vsa", &demo(), &["--topspeed"]);
    std::thread::sleep(Duration::from_secs(3));
    let stdout = s.stop();
    std::thread::sleep(Duration::from_secs(1));
    let _ = watch.kill();
    let _ = watch.wait();
    drop(broker);
    assert!(stdout.is_empty(), "events went to stdout with a broker set");
    let got = lines.lock().unwrap().join("\n");
    assert!(
        got.contains("\"answered\""),
        "no call events via MQTT:\n{got}"
    );
    assert!(got.contains("health"), "no health via MQTT:\n{got}");
    assert!(
        got.contains("sensor_stopped") || got.contains("offline"),
        "{got}"
    );
    // The retained status lists what the SPAN session delivers: the demo's VLAN call and
    // its call mirrored inside ERSPAN.
    let status = got
        .lines()
        .filter(|l| l.contains("\"type\":\"status\"") && l.contains("\"online\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["vlans"].as_array().is_some_and(|a| !a.is_empty()))
        .unwrap_or_else(|| panic!("no status listing VLANs:\n{got}"));
    let encaps = status["encapsulations"].to_string();
    assert!(
        encaps.contains("erspan") && encaps.contains("vlan"),
        "{status}"
    );
}

#[test]
fn selftest_gives_a_verdict_per_item_and_fails_on_what_is_wrong() {
    let cfg = tmp("selftest-bad.toml");
    std::fs::write(
        &cfg,
        "[capture]\ninterfaces = [\"vsnosuch0\"]\n[sensor]\nsite = \"lab\"\nid = \"t1\"\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nconnect_timeout_s = 1\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["selftest", "--timeout-s", "1", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("OK   config"), "{text}");
    assert!(text.contains("FAIL interface vsnosuch0"), "{text}");
    assert!(text.contains("no such interface"), "{text}");
    assert!(text.contains("FAIL broker"), "{text}");
    // WARN when the kernel says NTP is not synchronized (a container, a lab box).
    assert!(
        text.contains("OK   clock") || text.contains("WARN clock"),
        "{text}"
    );
    assert!(text.contains("verdict: FAIL"), "{text}");
}

#[test]
fn selftest_passes_with_a_live_interface_and_a_reachable_broker() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let Some(broker) = NsBroker::start(&ns, 18832) else {
        return;
    };
    let cfg = tmp(&format!("selftest-{}.toml", ns.0));
    std::fs::write(
        &cfg,
        "[capture]\ninterfaces = [\"vsb\"]\n[sensor]\nsite = \"lab\"\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:18832\"\n",
    )
    .unwrap();
    let out = ns
        .exec(&[bin(), "selftest", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    drop(broker);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK   interface vsb"), "{text}");
    assert!(text.contains("OK   broker"), "{text}");
    assert!(text.contains("OK   sensor id"), "{text}"); // derived from vsb's MAC
    let list = ns.exec(&[bin(), "interfaces", "--json"]).output().unwrap();
    let rows: Vec<Value> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let vsb = rows.iter().find(|r| r["name"] == "vsb").unwrap();
    assert_eq!(vsb["link"], "up");
    assert!(vsb["mac"].is_string());
}

#[test]
fn a_bpf_filter_still_passes_vlan_tagged_traffic() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb", "--bpf", "udp port 5060"]);
    let lines = demo_then_stop(&ns, "vsa", s);
    let calls: Vec<&Value> = lines.iter().filter(|l| l["type"] == "call").collect();
    assert!(
        calls.iter().any(|c| c["call_id"] == "vlan@voipsensor.demo"),
        "the VLAN-tagged call was filtered out"
    );
    // The filter did apply: no RTP reached the tracker.
    assert!(!lines.iter().any(|l| l["type"] == "rtp_interval"));
}

#[test]
fn a_silent_mirror_port_is_reported_as_no_mirror_traffic() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb", "--no-traffic-s", "2"]);
    let h = s.wait_json(Duration::from_secs(10), |v| {
        v["type"] == "health"
            && v["warnings"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["code"] == "no_mirror_traffic"))
    });
    assert!(
        h["warnings"]
            .to_string()
            .contains("no mirror traffic on vsb")
    );
    // Traffic clears it.
    ns.replay("vsa", &demo(), &["--topspeed"]);
    s.wait_json(Duration::from_secs(5), |v| {
        v["type"] == "health"
            && v["capture"]["total"]["received"].as_u64() > Some(3000)
            && v["warnings"]
                .as_array()
                .is_some_and(|w| !w.iter().any(|w| w["code"] == "no_mirror_traffic"))
    });
    s.stop();
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_is_refused() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    ns.veth("vsc", "vsd");
    let cfg = tmp(&format!("hup-{}.toml", ns.0));
    let write = |ifs: &str| {
        std::fs::write(
            &cfg,
            format!("[capture]\ninterfaces = [{ifs}]\n[sensor]\nsite = \"lab\"\nid = \"t1\"\n"),
        )
        .unwrap()
    };
    write("\"vsb\"");
    let s = Sensor::start(&ns, &["--config", cfg.to_str().unwrap()]);
    write("\"vsb\", \"vsd\"");
    s.signal(libc::SIGHUP);
    s.wait_err("vsd: capturing", Duration::from_secs(10));
    s.wait_err("configuration reloaded", Duration::from_secs(5));
    std::fs::write(&cfg, "[capture]\ninterfaces = 3\n").unwrap();
    s.signal(libc::SIGHUP);
    s.wait_err("not reloaded", Duration::from_secs(5));
    // Still capturing on both.
    let lines = demo_then_stop(&ns, "vsc", s);
    assert!(lines.iter().filter(|l| l["type"] == "call").count() > 20);
}

#[test]
fn capture_continues_after_the_link_goes_down_and_up() {
    let Some(ns) = Ns::new("vslive") else { return };
    ns.veth("vsa", "vsb");
    let s = Sensor::start(&ns, &["-i", "vsb"]);
    must(&["ip", "-n", &ns.0, "link", "set", "vsb", "down"]);
    s.wait_json(Duration::from_secs(10), |v| {
        v["type"] == "health" && v["interfaces"][0]["link"] == "down"
    });
    must(&["ip", "-n", &ns.0, "link", "set", "vsb", "up"]);
    s.wait_json(Duration::from_secs(10), |v| {
        v["type"] == "health"
            && v["interfaces"][0]["link"] == "up"
            && v["interfaces"][0]["state"] == "capturing"
    });
    let lines = demo_then_stop(&ns, "vsa", s);
    assert!(lines.iter().filter(|l| l["type"] == "call").count() > 20);
}
