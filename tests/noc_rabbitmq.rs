//! The tree against a clustered-broker product: Debian's `rabbitmq-server` (3.10) with its
//! `rabbitmq_mqtt` plugin, one node on loopback started by the test (its own node name, ports,
//! epmd port, mnesia and log dirs, Erlang cookie under its own HOME). What holds there and what
//! does not, as assertions (README, "For NOC engineers"):
//! - holds: QoS 1 call events (every one, in order), the retained status, the Last Will;
//! - does not: retained messages for wildcard subscriptions (only an exact topic gets them), and
//!   MQTT v5 (3.10 speaks 3.1.1 only), so `voipsensor noc` (v5, shared subscriptions) cannot
//!   connect; `watch` and the sensor (3.1.1) can.

mod common;

use common::broker::{free_port, tempdir, wait_for};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use voipsensor::fixture::{self, Builder};
use voipsensor::noc::decode::decode;
use voipsensor::publish::payload::{Message, State};
use voipsensor::publish::topic::Leaf;
use voipsensor::track::event::Event;

const BIN: &str = env!("CARGO_BIN_EXE_voipsensor");
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// One RabbitMQ node; killed (its process group, and its epmd) on drop.
struct Rabbit {
    child: Child,
    epmd_port: u16,
    mqtt_port: u16,
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the group is the one we created.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        // epmd refuses to stop while it still lists the node: it goes once beam has died.
        for _ in 0..20 {
            let out = Command::new("epmd")
                .arg("-kill")
                .env("ERL_EPMD_PORT", self.epmd_port.to_string())
                .output();
            if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Killed")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Rabbit {
    fn start(dir: &Path) -> Rabbit {
        let (node, dist, epmd, mqtt) = (free_port(), free_port(), free_port(), free_port());
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[rabbitmq_mqtt].\n").unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{node}\nmqtt.listeners.tcp.default = 127.0.0.1:{mqtt}\n\
                 mqtt.allow_anonymous = true\nloopback_users = none\n"
            ),
        )
        .unwrap();
        let name = format!("vs-b-noc-{}@localhost", std::process::id());
        let child = Command::new(SERVER)
            .env("HOME", dir.join("home"))
            .env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_NODE_PORT", node.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("ERL_EPMD_PORT", epmd.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start rabbitmq-server");
        let r = Rabbit {
            child,
            epmd_port: epmd,
            mqtt_port: mqtt,
        };
        let t0 = Instant::now();
        // Seconds on an idle machine; minutes on a loaded one (its boot is CPU-bound).
        wait_for("rabbitmq's MQTT listener", Duration::from_secs(300), || {
            TcpStream::connect(("127.0.0.1", mqtt)).is_ok()
        });
        println!(
            "rabbitmq-server with rabbitmq_mqtt: MQTT listener up after {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        r
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.mqtt_port)
    }

    /// `mosquitto_sub -V mqttv311` for `count` messages on `filter`: (retained, payload) each.
    fn sub(&self, filter: &str, count: u32, wait_s: u32) -> Child {
        Command::new("mosquitto_sub")
            .args([
                "-V",
                "mqttv311",
                "-p",
                &self.mqtt_port.to_string(),
                "-q",
                "1",
            ])
            .args([
                "-t",
                filter,
                "-C",
                &count.to_string(),
                "-W",
                &wait_s.to_string(),
            ])
            .args(["-F", "%r %x"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

fn statuses(c: Child) -> Vec<(bool, State)> {
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (r, hex) = l.split_once(' ')?;
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            match decode(Leaf::Status, &bytes).ok()? {
                Message::Status(s) => Some((r == "1", s.state)),
                _ => None,
            }
        })
        .collect()
}

fn demo(dir: &Path) -> PathBuf {
    let p = dir.join("demo.pcap");
    let mut b = Builder::new();
    fixture::demo(&mut b);
    b.write_pcap(&p).unwrap();
    p
}

#[test]
fn over_rabbitmq_mqtt_qos1_calls_retained_status_and_last_will_hold_but_v5_does_not() {
    if !(common::need(
        Path::new(SERVER).is_file(),
        "rabbitmq-server is not installed",
    ) && common::need_tool("mosquitto_sub", "mosquitto-clients"))
    {
        return;
    }
    let dir = tempdir("noc-rabbit");
    let rabbit = Rabbit::start(&dir);

    // QoS 1: every call event of the demo capture reaches a 3.1.1 subscriber, in seq order.
    let pcap = demo(&dir);
    let (events, _) = common::replay(&pcap);
    let want = events
        .iter()
        .filter(|e| !matches!(e, Event::RtpInterval(_)))
        .count();
    let watch = Command::new(BIN)
        .args([
            "watch",
            "--broker",
            &rabbit.url(),
            "--site",
            "r1",
            "--timeout-s",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let st = Command::new(BIN)
        .args(["replay", pcap.to_str().unwrap(), "--broker", &rabbit.url()])
        .args(["--site", "r1", "--sensor", "t1", "--summary"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // watch runs until its timeout; what it printed is everything delivered.
    let out = watch.wait_with_output().unwrap();
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("/calls\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["seq"].as_u64())
        .collect();
    assert_eq!(seqs.len(), want, "call events delivered at QoS 1");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order: {seqs:?}"
    );

    // Retained: an exact-topic subscriber gets the (clean) offline status; a wildcard one
    // gets nothing retained (RabbitMQ 3.10's retained store matches exact topics only).
    let exact = statuses(rabbit.sub("voipsensor/v1/r1/t1/status", 1, 10));
    assert_eq!(exact, vec![(true, State::Offline)]);
    let wild = statuses(rabbit.sub("voipsensor/v1/+/+/status", 1, 3));
    assert!(wild.is_empty(), "wildcard got retained {wild:?}");

    // Last Will: a sensor killed with SIGKILL is announced offline, live and retained.
    let long = dir.join("long.pcap");
    let st = Command::new(BIN)
        .args(["fixture", long.to_str().unwrap(), "--scenario", "long"])
        .args(["--calls", "2", "--seconds", "30", "--call-seconds", "5"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let live = rabbit.sub("voipsensor/v1/r1/t2/status", 2, 40);
    std::thread::sleep(Duration::from_secs(1));
    let mut t2 = Command::new(BIN)
        .args(["replay", long.to_str().unwrap(), "--broker", &rabbit.url()])
        .args(["--site", "r1", "--sensor", "t2", "--pace", "1", "--summary"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    unsafe { libc::kill(t2.id() as i32, libc::SIGKILL) };
    let _ = t2.wait();
    assert_eq!(
        statuses(live),
        vec![(false, State::Online), (false, State::Offline)],
        "online, then the Last Will"
    );
    let retained = statuses(rabbit.sub("voipsensor/v1/r1/t2/status", 1, 10));
    assert_eq!(
        retained,
        vec![(true, State::Offline)],
        "the Last Will is retained"
    );

    // MQTT v5: refused, so `noc` (v5, shared subscriptions) sees nothing here.
    let port = free_port();
    let mut noc = Command::new(BIN)
        .args([
            "noc",
            "--broker",
            &rabbit.url(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut m = String::new();
    wait_for("noc's /metrics", Duration::from_secs(20), || {
        m = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        !m.is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    let m = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .unwrap();
    let m = String::from_utf8_lossy(&m.stdout);
    assert!(
        m.contains("voipsensor_noc_sensors 0"),
        "noc over MQTT v5 got data from RabbitMQ 3.10:\n{m}"
    );
    let _ = noc.kill();
    let _ = noc.wait();
    drop(rabbit);
    std::fs::remove_dir_all(&dir).ok();
}
