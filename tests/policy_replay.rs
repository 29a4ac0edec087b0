//! `replay` drives the live sensor's policy on packet time, so its rules run on real
//! captures: one that shows SIP in one direction only raises "mirror looks
//! unidirectional". Replay logs the policy at debug level: its default stdout and stderr
//! stay what they were.

mod common;
use std::process::Command;

fn replay(file: &std::path::Path, log: Option<&str>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voipsensor"));
    c.args(["replay", "--summary"]).arg(file);
    match log {
        Some(l) => c.env("RUST_LOG", l),
        None => c.env_remove("RUST_LOG"),
    };
    c.output().unwrap()
}

#[test]
fn replay_raises_the_unidirectional_mirror_warning_on_a_one_way_capture() {
    let p = common::shared("aaa_register_cancel_4xx.pcap");
    if !common::need(
        p.is_some(),
        "../shared/pcaps/aaa_register_cancel_4xx.pcap is absent",
    ) {
        return;
    }
    let p = p.unwrap();
    let out = replay(&p, Some("voipsensor::policy=debug"));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mirror looks unidirectional (only 192.168.1.2→200.68.120.81 seen)"),
        "{err}"
    );
    let quiet = replay(&p, None);
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    assert_eq!(quiet.stdout, out.stdout);
}

#[test]
fn replay_of_a_two_way_capture_raises_no_policy_warning() {
    let p = common::shared("sip_call_rtp_g711.pcap");
    if !common::need(
        p.is_some(),
        "../shared/pcaps/sip_call_rtp_g711.pcap is absent",
    ) {
        return;
    }
    let out = replay(&p.unwrap(), Some("voipsensor::policy=debug"));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("voipsensor::policy"), "{err}");
}
