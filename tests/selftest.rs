//! `voipsensor selftest` against a real mosquitto with a password file and an ACL: good
//! credentials pass (CONNECT and a round trip), bad ones fail with the reason and exit 5,
//! a port that speaks HTTP fails with the reason.

mod common;
use common::broker::{Broker, free_port, password_file, tempdir};
use common::tls::{make_ca, server_cert};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// mosquitto on a free loopback port: user `sensor` may use its own tree only.
fn broker(dir: &Path) -> Option<Broker> {
    broker_with(dir, "")
}

/// As [`broker`], with `extra` mosquitto.conf lines on the listener (TLS).
fn broker_with(dir: &Path, extra: &str) -> Option<Broker> {
    if !common::need_tool("mosquitto", "mosquitto")
        || !common::need_tool("mosquitto_passwd", "mosquitto")
    {
        return None;
    }
    let pw = password_file(dir);
    let acl = dir.join("acl");
    std::fs::write(&acl, "user sensor\ntopic readwrite voipsensor/v1/s1/t1/#\n").unwrap();
    Broker::start_on(
        dir,
        free_port(),
        false,
        &format!(
            "{extra}\nallow_anonymous false\npassword_file {}\nacl_file {}",
            pw.display(),
            acl.display()
        ),
    )
}

/// Runs `selftest --json` on a config for `url`; returns the exit code and the items.
fn selftest(dir: &Path, url: &str, creds: &str) -> (i32, serde_json::Value) {
    selftest_extra(dir, url, creds, "")
}

fn selftest_extra(dir: &Path, url: &str, creds: &str, extra: &str) -> (i32, serde_json::Value) {
    let cfg = dir.join("sensor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\nsite = \"s1\"\nid = \"t1\"\n[capture]\ninterfaces = [\"lo\"]\n\
             [mqtt]\nurl = \"{url}\"\n{creds}{extra}"
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_voipsensor"))
        .args(["selftest", "--timeout-s", "3", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    (o.status.code().unwrap(), v)
}

fn item<'a>(v: &'a serde_json::Value, name: &str) -> (&'a str, &'a str) {
    let i = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == name)
        .unwrap_or_else(|| panic!("no {name} item: {v}"));
    (i["verdict"].as_str().unwrap(), i["text"].as_str().unwrap())
}

#[test]
fn good_credentials_connect_and_complete_a_round_trip() {
    let dir = tempdir("good");
    let Some(b) = broker(&dir) else { return };
    let url = format!("mqtt://127.0.0.1:{}", b.port);
    let (code, v) = selftest(
        &dir,
        &url,
        "username = \"sensor\"\npassword = \"right-pass\"\n",
    );
    assert_eq!(
        item(&v, "broker"),
        (
            "ok",
            format!("{url}: CONNECT accepted as sensor (CONNACK: accepted)").as_str()
        )
    );
    let (verdict, text) = item(&v, "round trip");
    assert_eq!(verdict, "ok", "{text}");
    assert!(
        text.starts_with("published and received back on voipsensor/v1/s1/t1/selftest in "),
        "{text}"
    );
    // Capturing on `lo` needs CAP_NET_RAW: without it the verdict fails for that reason only.
    if common::need_root() {
        assert_eq!(code, 0, "{v}");
    }
    assert!(!v.to_string().contains("right-pass"));
}

#[test]
fn bad_credentials_fail_with_the_reason_and_exit_5() {
    let dir = tempdir("bad");
    let Some(b) = broker(&dir) else { return };
    let url = format!("mqtt://sensor:wrong-pass@127.0.0.1:{}", b.port);
    let (code, v) = selftest(&dir, &url, "");
    assert_eq!(code, 5, "{v}");
    let (verdict, text) = item(&v, "broker");
    assert_eq!(verdict, "fail");
    assert!(
        text.contains("refused the connection")
            && (text.contains("bad username or password") || text.contains("not authorized")),
        "{text}"
    );
    assert_eq!(v["verdict"], "fail");
    assert!(!v.to_string().contains("wrong-pass"), "{v}");
}

#[test]
fn a_port_that_speaks_http_fails_with_the_reason() {
    let dir = tempdir("http");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let url = format!("mqtt://127.0.0.1:{port}");
    let (code, v) = selftest(&dir, &url, "");
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        item(&v, "broker"),
        (
            "fail",
            format!(
                "{url} answered, but not in MQTT (no valid CONNACK): is this the broker's MQTT port?"
            )
            .as_str()
        )
    );
}

#[test]
fn a_closed_port_fails_at_once_saying_the_connection_was_refused() {
    let dir = tempdir("closed");
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    let t0 = Instant::now();
    let (code, v) = selftest(&dir, &url, "");
    assert_eq!(code, 1);
    let (verdict, text) = item(&v, "broker");
    assert_eq!(verdict, "fail");
    assert!(text.contains("Connection refused"), "{text}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[test]
fn publishing_to_a_broker_that_refuses_the_credentials_exits_5_saying_so_once() {
    let dir = tempdir("refuse");
    let Some(b) = broker(&dir) else { return };
    let pcap = dir.join("demo.pcap");
    let bin = env!("CARGO_BIN_EXE_voipsensor");
    assert!(
        Command::new(bin)
            .arg("fixture")
            .arg(&pcap)
            .status()
            .unwrap()
            .success()
    );
    let url = format!("mqtt://sensor:wrong-pass@127.0.0.1:{}", b.port);
    let o = Command::new(bin)
        .env_remove("RUST_LOG")
        .arg("replay")
        .arg(&pcap)
        .args([
            "--broker",
            &url,
            "--site",
            "s1",
            "--sensor",
            "t1",
            "--summary",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert_eq!(err.matches("refused the connection").count(), 1, "{err}");
    assert!(!err.contains("wrong-pass"), "{err}");
}

#[test]
fn a_tls_certificate_for_another_name_fails_naming_the_certificates_names() {
    if !common::need_tool("openssl", "openssl") {
        return;
    }
    let dir = tempdir("tls");
    make_ca(&dir, "ca");
    server_cert(&dir);
    let d = dir.display();
    let Some(b) = broker_with(
        &dir,
        &format!("cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key"),
    ) else {
        return;
    };
    let creds = "username = \"sensor\"\npassword = \"right-pass\"\n";
    let ca = format!("ca_file = \"{d}/ca.pem\"\n");
    // The right name: CONNECT and round trip over TLS.
    let (_, v) = selftest_extra(&dir, &format!("mqtts://127.0.0.1:{}", b.port), creds, &ca);
    assert_eq!(item(&v, "round trip").0, "ok", "{v}");
    // Another name for the same broker: refused, saying which names the certificate holds.
    let url = format!("mqtts://localhost:{}", b.port);
    let (code, v) = selftest_extra(&dir, &url, creds, &ca);
    assert_eq!(code, 5, "{v}");
    assert_eq!(
        item(&v, "broker"),
        (
            "fail",
            format!(
                "TLS with broker {url} failed: the broker's certificate was rejected: certificate not \
                 valid for name \"localhost\"; certificate is only valid for IpAddress(127.0.0.1) \
                 (check mqtt.ca_file and the broker's certificate)"
            )
            .as_str()
        )
    );
}
