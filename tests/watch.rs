//! `voipsensor watch` as a NOC engineer uses it: it waits for a broker that is down at
//! start, says when nothing arrives, keeps a named persistent session, and reports a
//! sensor's `seq` restarting.

mod common;
use common::broker::{Broker, free_port, tempdir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voipsensor"));
    c.env_remove("RUST_LOG");
    c
}

/// mosquitto on `port` (persistence on: a named session survives between watches).
fn broker(dir: &Path, port: u16) -> Option<Broker> {
    Broker::start_on(dir, port, true, "allow_anonymous true")
}

fn fixture(dir: &Path) -> PathBuf {
    let p = dir.join("demo.pcap");
    assert!(bin().arg("fixture").arg(&p).status().unwrap().success());
    p
}

fn publish(pcap: &Path, url: &str) {
    let st = bin()
        .arg("replay")
        .arg(pcap)
        .args([
            "--broker",
            url,
            "--site",
            "s1",
            "--sensor",
            "t1",
            "--summary",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Reads stderr lines until one contains `want` (or the child's stderr ends).
fn wait_for(err: &mut impl BufRead, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("stderr ended without {want:?}: {seen:?}");
        }
        let hit = line.contains(want);
        seen.push(line);
        if hit {
            return seen;
        }
    }
}

#[test]
fn watch_waits_for_a_broker_down_at_start_and_says_when_nothing_arrives() {
    let dir = tempdir("retry");
    let port = free_port();
    if !common::need_tool("mosquitto", "mosquitto") {
        return;
    }
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut w = bin()
        .args([
            "watch",
            "--broker",
            &url,
            "--quiet-s",
            "1",
            "--timeout-s",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(w.stderr.take().unwrap());
    let first = wait_for(&mut err, "retrying");
    assert!(
        first.last().unwrap().contains("Connection refused"),
        "{first:?}"
    );
    let _b = broker(&dir, port).expect("mosquitto is installed (checked above)");
    wait_for(&mut err, &format!("connected to {url}"));
    let quiet = wait_for(&mut err, "nothing received");
    assert!(
        quiet
            .last()
            .unwrap()
            .contains("nothing received on voipsensor/v1/+/+/# for 1 s"),
        "{quiet:?}"
    );
    let _ = w.kill();
    let _ = w.wait();
}

#[test]
fn a_named_session_receives_what_was_published_while_watch_was_away_and_a_restart_is_reported() {
    let dir = tempdir("session");
    let port = free_port();
    let Some(_b) = broker(&dir, port) else { return };
    let url = format!("mqtt://127.0.0.1:{port}");
    let pcap = fixture(&dir);
    // First watch: creates the session (and its subscription), then leaves.
    let st = bin()
        .args([
            "watch",
            "--broker",
            &url,
            "--session",
            "noc1",
            "--site",
            "s1",
        ])
        .args(["--timeout-s", "1"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // Published twice while no watch runs: the second run's seq starts again at 1.
    publish(&pcap, &url);
    publish(&pcap, &url);
    let o = bin()
        .args([
            "watch",
            "--broker",
            &url,
            "--session",
            "noc1",
            "--site",
            "s1",
        ])
        .args(["--timeout-s", "3"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let calls = out.lines().filter(|l| l.contains("/calls\"")).count();
    assert!(calls > 4, "the session kept nothing: {out}");
    assert!(
        err.contains("voipsensor watch: s1/t1: sensor restarted (seq back to 1 after"),
        "{err}"
    );
}
