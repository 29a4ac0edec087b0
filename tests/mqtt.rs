//! Publishing against a real mosquitto broker started by each test on a free loopback port
//! (a visible skip, a failure under `CI`, when the `mosquitto` binary is missing).

mod common;
use common::broker::{Broker, Sub, password_file, tempdir, wait_for, wait_until};
use common::tls::{make_ca, server_cert};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use voipsensor::config::{self, Config};
use voipsensor::publish::Publisher;
use voipsensor::publish::payload::{self, Format, Message, State};
use voipsensor::track::event::{CallEventKind, Event, RtpInterval, Ts};

fn call(i: u32, kind: CallEventKind) -> Event {
    let mut c = common::call_event(i, kind, 1_000_000);
    c.code = (kind == CallEventKind::Failed).then_some(486);
    c.pdd_ms = Some(700 + i);
    Event::Call(c)
}

fn interval(sec: u32, ssrc: u32) -> Event {
    Event::RtpInterval(RtpInterval {
        ts: Ts(1_700_000_000_000_000 + u64::from(sec) * 1_000_000),
        ssrc,
        packets: 50,
        expected: 50,
        jitter_ms: 1.25,
        mos: Some(4.3),
        ..Default::default()
    })
}

fn cfg(b: &Broker, sensor: &str, f: Format) -> Config {
    let mut c = config::options_from_cli(&b.url(), "s1", sensor, f).unwrap();
    c.mqtt.reconnect_min_ms = 200;
    c.mqtt.reconnect_max_ms = 1000;
    c.mqtt.connect_timeout_s = 3;
    c
}

/// Decoded `calls` events, first delivery of each `seq` only (QoS 1 may redeliver).
fn calls(sub: &Sub) -> Vec<(u64, Event)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for p in sub.on("/calls") {
        match payload::decode(&p) {
            Ok(Message::Event { seq, event }) => {
                if seen.insert(seq) {
                    out.push((seq, event));
                }
            }
            other => panic!("not an event on calls: {other:?}"),
        }
    }
    out
}

#[test]
fn published_events_arrive_in_order_and_decode_equal_with_retained_online_status() {
    let dir = tempdir("order");
    let Some(b) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let sub = Sub::start(b.port, "order-sub");
    let mut p = Publisher::start(&cfg(&b, "order", Format::Postcard)).unwrap();
    let mut sent = Vec::new();
    for i in 0..50 {
        let ev = call(
            i,
            if i % 3 == 0 {
                CallEventKind::Failed
            } else {
                CallEventKind::Invite
            },
        );
        p.publish(&ev);
        p.publish(&interval(i, 1));
        p.publish(&interval(i, 2));
        p.tick(
            ev.ts(),
            &serde_json::json!({"capture": {"kernel_drops": 0}}),
        );
        sent.push(ev);
    }
    // Retained online status is there while connected, for late subscribers too.
    let out = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &b.port.to_string(),
            "-t",
            "voipsensor/v1/s1/order/status",
            "-C",
            "1",
            "-W",
            "5",
            "-F",
            "%x",
        ])
        .output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        let hex = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let Message::Status(s) = payload::decode(&bytes).unwrap() else {
            panic!("not a status")
        };
        assert_eq!(s.state, State::Online);
        assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
    }
    let stats = p.finish(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.outbox.dropped_calls + stats.outbox.dropped_metrics, 0);
    wait_for("50 call events", Duration::from_secs(10), || {
        calls(&sub).len() >= 50
    });
    let got = calls(&sub);
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "in order");
    assert_eq!(got.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), sent);
    // Every interval arrived, batched per second. The last batch goes out at the finish,
    // after the last call event, and may reach the subscriber after it: waited for.
    let intervals = || -> usize {
        sub.on("/rtp")
            .iter()
            .map(|p| match payload::decode(p).unwrap() {
                Message::Rtp(b) => b.intervals.len(),
                _ => 0,
            })
            .sum()
    };
    let waited = wait_until(Duration::from_secs(5), || {
        intervals() >= 100 && !sub.on("/health").is_empty() && !sub.on("/kpi").is_empty()
    });
    assert_eq!(
        intervals(),
        100,
        "intervals received (waited up to 5 s: {waited:?})"
    );
    assert!(
        !sub.on("/health").is_empty(),
        "health published every 10 s of packet time"
    );
    let kpi = sub.on("/kpi");
    let Message::Kpi(k) = payload::decode(&kpi[0]).unwrap() else {
        panic!()
    };
    assert!(
        k.attempted > 0 && k.failed_by_code.iter().any(|(c, _)| *c == 486),
        "{k:?}"
    );
    // After a clean finish the retained status says offline.
    wait_for("offline status", Duration::from_secs(5), || {
        sub.last_state() == Some(State::Offline)
    });
}

#[test]
fn json_payload_is_flat_and_readable() {
    let dir = tempdir("json");
    let Some(b) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let sub = Sub::start(b.port, "json-sub");
    let mut p = Publisher::start(&cfg(&b, "json", Format::Json)).unwrap();
    p.publish(&call(1, CallEventKind::Invite));
    p.publish(&interval(1, 7));
    p.finish(Duration::from_secs(10)).unwrap();
    wait_for("json call", Duration::from_secs(5), || {
        !sub.on("/calls").is_empty() && !sub.on("/rtp").is_empty()
    });
    let v: serde_json::Value = serde_json::from_slice(&sub.on("/calls")[0]).unwrap();
    assert_eq!(v["type"], "call");
    assert_eq!(v["caller"], "+33140000001");
    assert_eq!(
        payload::event_from_json(&v).unwrap(),
        call(1, CallEventKind::Invite)
    );
    let r: serde_json::Value = serde_json::from_slice(&sub.on("/rtp")[0]).unwrap();
    assert_eq!(r[0]["type"], "rtp_interval");
    assert_eq!(r[0]["jitter_ms"], 1.25);
}

#[test]
fn last_will_marks_a_killed_publisher_offline() {
    let dir = tempdir("will");
    let Some(b) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let sub = Sub::start(b.port, "will-sub");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voipsensor"))
        .args([
            "publish-test",
            "--broker",
            &b.url(),
            "--site",
            "s1",
            "--sensor",
            "will",
            "--count",
            "2",
            "--interval-ms",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("published"), "{line}");
    wait_for("online status", Duration::from_secs(5), || {
        sub.last_state() == Some(State::Online)
    });
    child.kill().unwrap(); // SIGKILL: no clean disconnect, the broker must send the will
    child.wait().unwrap();
    wait_for("offline will", Duration::from_secs(10), || {
        sub.last_state() == Some(State::Offline)
    });
    assert_eq!(calls(&sub).len(), 2);
}

#[test]
fn broker_down_20s_mid_stream_loses_no_call_event_and_counts_metric_drops() {
    let dir = tempdir("outage");
    let Some(mut b) = Broker::start(&dir, "allow_anonymous true\nmax_queued_messages 100000")
    else {
        return;
    };
    let sub = Sub::start(b.port, "outage-sub");
    let mut c = cfg(&b, "outage", Format::Postcard);
    c.mqtt.outbox_messages = 300;
    c.output.health_interval_s = 10;
    let mut p = Publisher::start(&c).unwrap();
    // One call event and one rtp second per 100 ms of wall time (packet time x10):
    // 300 iterations; broker down from iteration 50 to 250 (20 s). During the outage 200
    // call events and 200+ metric messages compete for 300 outbox slots.
    let mut sent = Vec::new();
    let t0 = Instant::now();
    for i in 0..300u32 {
        if i == 50 {
            b.stop();
        }
        if i == 250 {
            b.restart();
        }
        let ev = call(i, CallEventKind::Invite);
        p.publish(&ev);
        p.publish(&interval(i, 1));
        p.tick(ev.ts(), &serde_json::json!({"iteration": i}));
        sent.push(ev);
        let due = t0 + Duration::from_millis(100 * u64::from(i + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let stats = p.finish(Duration::from_secs(30)).unwrap();
    assert_eq!(stats.outbox.dropped_calls, 0, "{stats:?}");
    assert!(
        stats.outbox.dropped_metrics > 0,
        "outbox filled, metrics must have gone: {stats:?}"
    );
    assert!(stats.connections >= 2, "{stats:?}");
    wait_for("all 300 call events", Duration::from_secs(20), || {
        calls(&sub).len() >= 300
    });
    let got = calls(&sub);
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=300).collect::<Vec<_>>(), "no loss, in order");
    assert_eq!(got.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), sent);
    // Health after the reconnect reports the drops.
    let reported = sub.on("/health").iter().any(|p| match payload::decode(p) {
        Ok(Message::Health(h)) => h.outbox.dropped_metrics > 0 && h.reconnects >= 1,
        _ => false,
    });
    assert!(
        reported,
        "a health message reports the metric drops and the reconnect"
    );
}

#[test]
fn tls_with_a_test_ca_works_and_a_wrong_ca_is_rejected_clearly() {
    if !common::need_tool("openssl", "openssl") {
        return;
    }
    let dir = tempdir("tls");
    make_ca(&dir, "ca");
    make_ca(&dir, "otherca");
    server_cert(&dir);
    let d = dir.display();
    let Some(b) = Broker::start(
        &dir,
        &format!(
            "allow_anonymous true\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key"
        ),
    ) else {
        return;
    };
    let url = format!("mqtts://127.0.0.1:{}", b.port);
    let mut c = cfg(&b, "tls", Format::Postcard);
    c.mqtt.url = url.clone();
    c.mqtt.ca_file = Some(dir.join("ca.pem"));
    let mut p = Publisher::start(&c).unwrap();
    assert!(p.is_connected());
    p.publish(&call(1, CallEventKind::Invite));
    p.finish(Duration::from_secs(10)).unwrap();

    c.mqtt.ca_file = Some(dir.join("otherca.pem"));
    let e = Publisher::start(&c)
        .err()
        .expect("a wrong CA must be rejected")
        .to_string();
    assert!(
        e.contains("TLS") && e.contains("certificate") && e.contains("mqtt.ca_file"),
        "{e}"
    );
    eprintln!("wrong CA: {e}");
}

#[test]
fn bad_credentials_are_a_clear_error() {
    if !common::need_tool("mosquitto_passwd", "mosquitto") {
        return;
    }
    let dir = tempdir("auth");
    let pw = password_file(&dir);
    let Some(b) = Broker::start(
        &dir,
        &format!("allow_anonymous false\npassword_file {}", pw.display()),
    ) else {
        return;
    };
    let mut c = cfg(&b, "auth", Format::Postcard);
    c.mqtt.username = Some("sensor".into());
    c.mqtt.password = Some(config::Secret::new("wrong-pass"));
    let e = Publisher::start(&c)
        .err()
        .expect("bad password must fail")
        .to_string();
    assert!(
        e.contains("refused the connection") && e.contains("username or password")
            || e.contains("not authorized"),
        "{e}"
    );
    assert!(
        !e.contains("wrong-pass"),
        "the password must not be echoed: {e}"
    );
    eprintln!("bad credentials: {e}");
    c.mqtt.password = Some(config::Secret::new("right-pass"));
    let p = Publisher::start(&c).unwrap();
    assert!(p.is_connected());
    p.finish(Duration::from_secs(5)).unwrap();
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voipsensor"))
}

/// `watch` lines minus the transport fields are exactly `replay`'s JSON lines.
fn strip_transport(line: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("topic");
    m.remove("seq");
    v.to_string()
}

#[test]
fn watch_prints_replay_lines_for_postcard_and_json_payloads() {
    let dir = tempdir("watch");
    let Some(b) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let watch = bin()
        .args([
            "watch",
            "--broker",
            &b.url(),
            "--site",
            "s1",
            "--count",
            "8",
            "--timeout-s",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is subscribed (it logs "watching" on SUBACK).
    let mut watch = watch;
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("watching") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "watch exited before subscribing"
        );
    }
    let evs = [call(1, CallEventKind::Invite), interval(1, 5)];
    for (sensor, f) in [("wpc", Format::Postcard), ("wjs", Format::Json)] {
        let mut p = Publisher::start(&cfg(&b, sensor, f)).unwrap();
        for e in &evs {
            p.publish(e);
        }
        p.finish(Duration::from_secs(10)).unwrap();
    }
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"type\":\"status\""))
        .collect();
    for sensor in ["wpc", "wjs"] {
        let mine: Vec<String> = lines
            .iter()
            .filter(|l| l.contains(&format!("/s1/{sensor}/")))
            .map(|l| strip_transport(l))
            .collect();
        let want: Vec<String> = evs.iter().map(voipsensor::publish::json::to_line).collect();
        assert_eq!(mine, want, "{sensor}: {text}");
    }
}

#[test]
fn decode_reads_mosquitto_sub_hex_lines_and_framed_files() {
    let msg = Message::Event {
        seq: 7,
        event: call(3, CallEventKind::Failed),
    };
    let bytes = payload::to_postcard(&msg);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let run = |input: Vec<u8>| {
        let mut c = bin()
            .arg("decode")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(&input).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let want = voipsensor::publish::json::to_line(&call(3, CallEventKind::Failed));
    // `mosquitto_sub -F '%t %x'`
    let text = run(format!("voipsensor/v1/s1/t1/calls {hex}\n{hex}\n").into_bytes());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"topic\":\"voipsensor/v1/s1/t1/calls\""));
    assert_eq!(strip_transport(lines[0]), want);
    assert_eq!(strip_transport(lines[1]), want);
    // Length-prefixed frames.
    let mut framed = Vec::new();
    for _ in 0..3 {
        framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        framed.extend_from_slice(&bytes);
    }
    assert_eq!(run(framed).lines().count(), 3);
}

#[test]
fn check_config_accepts_the_example_and_names_the_bad_key() {
    let ok = bin()
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/sensor.example.toml"),
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = tempdir("checkcfg");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[sensor]\nsite = \"s1\"\nid = \"t1\"\n[mqtt]\nurl = \"http://broker\"\n",
    )
    .unwrap();
    let out = bin().arg("check-config").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("mqtt.url") && e.contains("http://broker") && e.contains("mqtts://"),
        "{e}"
    );
}

/// The must-show: `replay FILE --broker … --site s1 --sensor t1` delivers every call
/// event to `voipsensor/v1/s1/t1/calls`, and `watch` prints the same lines as `replay`.
fn replay_to_broker_matches_replay_output(capture: &Path, payload: &str) {
    let dir = tempdir("replay");
    let Some(b) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let expected = bin().arg("replay").arg(capture).output().unwrap();
    assert!(expected.status.success());
    let want: Vec<String> = String::from_utf8(expected.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            ["call", "stream_end", "dtmf", "media_health"]
                .iter()
                .any(|t| l.contains(&format!("\"type\":\"{t}\"")))
        })
        .map(str::to_string)
        .collect();
    assert!(
        want.len() >= 4,
        "too few call events in {}",
        capture.display()
    );
    let mut watch = bin()
        .args([
            "watch",
            "--broker",
            &b.url(),
            "--site",
            "s1",
            "--sensor",
            "t1",
        ])
        .args(["--timeout-s", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("watching") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "watch exited before subscribing"
        );
    }
    let st = bin()
        .arg("replay")
        .arg(capture)
        .args([
            "--broker",
            &b.url(),
            "--site",
            "s1",
            "--sensor",
            "t1",
            "--payload",
            payload,
            "--summary",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // Read until every call event arrived (health, rtp and status messages come too).
    let mut got = Vec::new();
    for l in BufReader::new(watch.stdout.take().unwrap()).lines() {
        let l = l.unwrap();
        if l.contains("\"topic\":\"voipsensor/v1/s1/t1/calls\"") {
            got.push(strip_transport(&l));
            if got.len() == want.len() {
                break;
            }
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(got, want, "{payload}");
}

#[test]
fn replay_of_the_demo_to_a_broker_delivers_every_call_event_in_order() {
    let dir = tempdir("demo");
    let demo = dir.join("demo.pcap");
    assert!(bin().arg("fixture").arg(&demo).status().unwrap().success());
    replay_to_broker_matches_replay_output(&demo, "postcard");
    replay_to_broker_matches_replay_output(&demo, "json");
}

#[test]
fn replay_of_aaa_to_a_broker_delivers_every_call_event_in_order() {
    let Some(p) = common::shared("aaa_register_cancel_4xx.pcap") else {
        return;
    };
    replay_to_broker_matches_replay_output(&p, "postcard");
}

#[test]
fn json_payload_seen_by_mosquitto_sub_is_flat_json() {
    let dir = tempdir("sub");
    let Some(b) = Broker::start(&dir, "allow_anonymous true") else {
        return;
    };
    let demo = dir.join("demo.pcap");
    assert!(bin().arg("fixture").arg(&demo).status().unwrap().success());
    let port = b.url().rsplit(':').next().unwrap().to_string();
    let sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "voipsensor/v1/#",
            "-W",
            "20",
            "-C",
            "12",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let st = bin()
        .arg("replay")
        .arg(&demo)
        .args([
            "--broker",
            &b.url(),
            "--site",
            "s1",
            "--sensor",
            "t1",
            "--payload",
            "json",
            "--summary",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let out = sub.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let objs: Vec<&serde_json::Value> = match &v {
            serde_json::Value::Array(a) => a.iter().collect(),
            o => vec![o],
        };
        for o in objs {
            let m = o.as_object().expect("an object");
            // Status lists the capture interfaces; every event and metric is flat.
            if m["type"] != "status" {
                assert!(
                    m.values().all(|x| !x.is_array() && !x.is_object()),
                    "not flat: {l}"
                );
            }
            n += 1;
        }
    }
    assert!(n >= 12, "{text}");
}
