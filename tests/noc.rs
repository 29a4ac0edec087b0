//! `voipsensor noc` with the real parts: mosquitto, Debian's Prometheus scraping the NOC on
//! loopback, `voipsensor replay --broker` as the sensors, headless Chromium on the fleet page;
//! and two instances sharing the load through an MQTT v5 shared subscription.

mod common;

use common::broker::{Broker, free_port, tempdir, wait_for};
use common::chromium::chromium;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use voipsensor::fixture::{self, Builder};
use voipsensor::track::event::Event;

const BIN: &str = env!("CARGO_BIN_EXE_voipsensor");

/// A child process killed (SIGKILL) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on 127.0.0.1:port: (status, body), or None while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    // hyper sends small bodies with Content-Length, large ones chunked: undo the chunking.
    if text[..text.find("\r\n\r\n")?]
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((len, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.push_str(tail.get(..n)?);
            rest = tail.get(n + 2..)?;
        }
        return Some((code, out));
    }
    Some((code, body.to_string()))
}

/// Sum of the samples of `name` whose labels include every `k="v"` of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metrics(port: u16) -> String {
    get(port, "/metrics").map(|(_, b)| b).unwrap_or_default()
}

/// `voipsensor noc` on a free port, connected to `broker`; waits until /metrics answers.
fn noc(broker: &Broker, id: &str, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["noc", "--broker", &broker.url(), "--client-id", id])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start voipsensor noc");
    let p = Proc(child);
    wait_for("noc's /metrics", Duration::from_secs(20), || {
        get(port, "/metrics").is_some_and(|(c, _)| c == 200)
    });
    (p, port)
}

fn demo_pcap(dir: &Path) -> PathBuf {
    let p = dir.join("demo.pcap");
    let mut b = Builder::new();
    fixture::demo(&mut b);
    b.write_pcap(&p).unwrap();
    p
}

fn replay(pcap: &Path, broker: &Broker, site: &str, sensor: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("replay")
        .arg(pcap)
        .args([
            "--broker",
            &broker.url(),
            "--site",
            site,
            "--sensor",
            sensor,
            "--summary",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// What the tracker makes of a capture: final call events by outcome, RTP packets, scored
/// stream-seconds, `calls` messages.
struct Expected {
    finals: usize,
    answered: usize,
    failed_486: usize,
    packets: u64,
    scored_seconds: usize,
    calls_messages: usize,
}

fn expected(pcap: &Path) -> Expected {
    let (events, _) = common::replay(pcap);
    let calls = common::calls(&events);
    let finals: Vec<_> = calls.iter().filter(|c| c.event.is_final()).collect();
    let iv = || {
        events.iter().filter_map(|e| match e {
            Event::RtpInterval(i) => Some(i),
            _ => None,
        })
    };
    Expected {
        finals: finals.len(),
        answered: finals
            .iter()
            .filter(|c| {
                c.duration_ms.is_some() || c.event == voipsensor::track::event::CallEventKind::Ended
            })
            .count(),
        failed_486: finals.iter().filter(|c| c.code == Some(486)).count(),
        packets: iv().map(|i| u64::from(i.packets)).sum(),
        scored_seconds: iv().filter(|i| i.mos.is_some()).count(),
        calls_messages: events
            .iter()
            .filter(|e| !matches!(e, Event::RtpInterval(_)))
            .count(),
    }
}

/// Debian's Prometheus scraping `target` every second, with the shipped alert rules.
struct Prometheus {
    _p: Proc,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, target: u16) -> Prometheus {
        let port = free_port();
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/alerts.yml");
        let conf = dir.join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: noc\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n",
                rules.display()
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            _p: Proc(child),
            port,
        };
        wait_for("prometheus ready", Duration::from_secs(30), || {
            get(port, "/-/ready").is_some_and(|(c, _)| c == 200)
        });
        p
    }

    /// An instant query's single value (None: no result yet).
    fn query(&self, q: &str) -> Option<f64> {
        let enc = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC);
        let (_, body) = get(self.port, &format!("/api/v1/query?query={enc}"))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `q` evaluates to `want`.
    #[track_caller]
    fn expect(&self, q: &str, want: f64) {
        let mut last = None;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            last = self.query(q);
            if last == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("prometheus: {q} = {last:?}, expected {want}");
    }
}

#[test]
fn replayed_sensors_reach_prometheus_and_the_fleet_page_and_a_killed_one_goes_offline() {
    if !(common::need_tool("prometheus", "prometheus")
        && common::need_tool("chromium", "chromium")
        && common::need_tool("mosquitto_pub", "mosquitto-clients"))
    {
        return;
    }
    let dir = tempdir("noc-it");
    let Some(broker) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let (_noc, port) = noc(&broker, "noc-it", &[]);
    let prom = Prometheus::start(&dir, port);

    // Sensor paris/t1: the demo capture, postcard, replayed to the end (then a clean offline).
    let demo = demo_pcap(&dir);
    let want = expected(&demo);
    assert_eq!(want.finals, 12);
    let st = replay(&demo, &broker, "paris", "t1", &[]).status().unwrap();
    assert!(st.success());
    // Sensor lyon/t2: a longer capture in JSON at packet pace, killed later.
    let long = dir.join("long.pcap");
    let st = Command::new(BIN)
        .args(["fixture", long.to_str().unwrap(), "--scenario", "long"])
        .args(["--calls", "3", "--seconds", "60", "--call-seconds", "6"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut t2 = Proc(
        replay(
            &long,
            &broker,
            "lyon",
            "t2",
            &["--payload", "json", "--pace", "1"],
        )
        .spawn()
        .unwrap(),
    );

    // Calls, outcomes and stream figures in Prometheus, as the tracker counts them.
    let t1 = r#"site="paris",sensor="t1""#;
    prom.expect(
        &format!("sum(voipsensor_calls_total{{{t1}}})"),
        want.finals as f64,
    );
    prom.expect(
        &format!(r#"sum(voipsensor_calls_total{{{t1},outcome="answered"}})"#),
        want.answered as f64,
    );
    prom.expect(
        &format!(r#"sum(voipsensor_calls_total{{{t1},outcome="failed",code="486"}})"#),
        want.failed_486 as f64,
    );
    prom.expect(
        &format!("sum(voipsensor_rtp_packets_total{{{t1}}})"),
        want.packets as f64,
    );
    prom.expect(
        &format!("sum(voipsensor_stream_second_mos_count{{{t1}}})"),
        want.scored_seconds as f64,
    );
    prom.expect(
        &format!("sum(voipsensor_call_setup_seconds_count{{{t1}}})"),
        want.answered as f64,
    );
    prom.expect(&format!("voipsensor_sensor_up{{{t1}}}"), 0.0);
    // The rules loaded in the real Prometheus.
    let (_, rules) = get(prom.port, "/api/v1/rules").unwrap();
    assert!(
        rules.contains("VoipsensorSensorOffline") && rules.contains("VoipsensorMosP5Low"),
        "{rules}"
    );

    // A warning the sensor reports in its health (JSON, as a sensor configured so sends it).
    let health = r#"{"type":"health","ts":1700000000.0,"uptime_s":60,"connected":true,"reconnects":0,"outbox_dropped_calls":0,"outbox_dropped_metrics":0,"capture_total_dropped_kernel":0,"capture_total_dropped_interface":0,"capture_duplicates":0,"warnings":[{"code":"unidirectional_mirror","message":"mirror looks unidirectional (only 10.1.1.1→10.2.2.2 seen)"}]}"#;
    let st = Command::new("mosquitto_pub")
        .args([
            "-p",
            &broker.port.to_string(),
            "-t",
            "voipsensor/v1/paris/t1/health",
            "-q",
            "1",
            "-m",
            health,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    prom.expect(
        &format!(r#"voipsensor_mirror_warning{{{t1},warning="unidirectional_mirror"}}"#),
        1.0,
    );

    // t2 online, with calls in progress and some ended.
    wait_for(
        "t2 online with ended calls",
        Duration::from_secs(40),
        || {
            let m = metrics(port);
            metric(&m, "voipsensor_sensor_up", &[("sensor", "t2")]) == 1.0
                && metric(&m, "voipsensor_calls_total", &[("sensor", "t2")]) >= 3.0
        },
    );

    // The fleet page in a browser: both sensors, their calls, the warning.
    let url = format!("http://127.0.0.1:{port}/");
    let dom = chromium(&dir, &["--dump-dom"], &url);
    assert!(
        dom.contains(r#"data-site="paris" data-sensor="t1" data-state="offline""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-site="lyon" data-sensor="t2" data-state="online""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-attempted="12""#),
        "t1's 12 calls: {dom}"
    );
    assert!(
        dom.contains(r#"data-code="unidirectional_mirror""#),
        "{dom}"
    );
    assert!(dom.contains("mirror looks unidirectional"), "{dom}");
    // Worst first: the offline sensor leads.
    assert!(dom.find("data-sensor=\"t1\"").unwrap() < dom.find("data-sensor=\"t2\"").unwrap());
    let shot = std::env::var_os("NOC_SCREENSHOTS")
        .map(|d| PathBuf::from(d).join("noc-fleet.png"))
        .unwrap_or_else(|| dir.join("noc-fleet.png"));
    chromium(
        &dir,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,300",
            "--hide-scrollbars",
        ],
        &url,
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 5000,
        "screenshot {}",
        shot.display()
    );

    // The site page lists t2's calls and charts one of them per second.
    let (code, site) = get(port, "/site/lyon").unwrap();
    assert_eq!(code, 200);
    assert!(site.matches("<tr class='call'").count() >= 3, "{site}");
    let link = site
        .split("href='")
        .filter_map(|s| s.split('\'').next())
        .find(|h| h.contains("call="))
        .expect("a charted call")
        .replace("&amp;", "&");
    let (_, chart) = get(port, &link).unwrap();
    for m in ["mos", "lost", "jitter_ms"] {
        assert!(
            chart.contains(&format!("data-metric='{m}'")),
            "{m}: {chart}"
        );
    }
    assert!(chart.contains("class='series' data-n='"), "{chart}");

    // SIGKILL: no clean offline; the broker publishes the Last Will.
    unsafe { libc::kill(t2.0.id() as i32, libc::SIGKILL) };
    let _ = t2.0.wait();
    wait_for("t2 offline in /metrics", Duration::from_secs(20), || {
        metric(&metrics(port), "voipsensor_sensor_up", &[("sensor", "t2")]) == 0.0
    });
    let (_, page) = get(port, "/").unwrap();
    assert!(
        page.contains("data-site='lyon' data-sensor='t2' data-state='offline'"),
        "{page}"
    );
    prom.expect(r#"voipsensor_sensor_up{site="lyon",sensor="t2"}"#, 0.0);
    drop(t2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn two_noc_instances_in_a_share_group_count_every_call_once() {
    if !common::need_tool("mosquitto_pub", "mosquitto-clients") {
        return;
    }
    let dir = tempdir("noc-share");
    let Some(broker) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let (_a, pa) = noc(&broker, "noc-a", &["--share-group", "nocs"]);
    let (_b, pb) = noc(&broker, "noc-b", &["--share-group", "nocs"]);
    // Both subscribed: each has read a retained status (subscribed after the shared leaves).
    let st = Command::new("mosquitto_pub")
        .args(["-p", &broker.port.to_string(), "-r", "-q", "1", "-t", "voipsensor/v1/probe/p1/status"])
        .args(["-m", r#"{"type":"status","state":"online","site":"probe","sensor":"p1","version":"x","interfaces":[],"vlans":[],"encapsulations":[],"started":1.0,"clock_synced":true}"#])
        .status()
        .unwrap();
    assert!(st.success());
    for p in [pa, pb] {
        wait_for("probe status on both", Duration::from_secs(20), || {
            metric(&metrics(p), "voipsensor_sensor_up", &[("sensor", "p1")]) == 1.0
        });
    }
    let demo = demo_pcap(&dir);
    let want = expected(&demo);
    assert!(
        replay(&demo, &broker, "s1", "t1", &[])
            .status()
            .unwrap()
            .success()
    );
    let sum = |name: &str, labels: &[(&str, &str)]| {
        (
            metric(&metrics(pa), name, labels),
            metric(&metrics(pb), name, labels),
        )
    };
    wait_for("every call counted", Duration::from_secs(20), || {
        let (a, b) = sum("voipsensor_calls_total", &[("sensor", "t1")]);
        a + b >= want.finals as f64
    });
    std::thread::sleep(Duration::from_millis(500));
    let (a, b) = sum("voipsensor_calls_total", &[("sensor", "t1")]);
    assert_eq!(a + b, want.finals as f64, "calls: {a} + {b}");
    assert!(a > 0.0 && b > 0.0, "the group shares the load: {a} + {b}");
    let (a, b) = sum("voipsensor_noc_messages_total", &[("leaf", "calls")]);
    assert_eq!(
        a + b,
        want.calls_messages as f64,
        "calls messages: {a} + {b}"
    );
    let (a, b) = sum("voipsensor_rtp_packets_total", &[("sensor", "t1")]);
    assert_eq!(a + b, want.packets as f64, "rtp packets: {a} + {b}");
    // The retained status (and the sensor's clean offline) reached both.
    let (a, b) = sum("voipsensor_sensor_info", &[("sensor", "t1")]);
    assert_eq!((a, b), (1.0, 1.0));
    let (a, b) = sum("voipsensor_sensor_up", &[("sensor", "t1")]);
    assert_eq!((a, b), (0.0, 0.0));
    std::fs::remove_dir_all(&dir).ok();
}
