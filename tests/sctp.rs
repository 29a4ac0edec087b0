//! SIP over SCTP (RFC 4168): DATA chunks read as SIP messages, fragmented ones rebuilt in a
//! bounded buffer, counted like tshark counts them.

mod common;
use common::*;
use std::process::Command;
use voipsensor::fixture::Builder;
use voipsensor::track::event::CallEventKind;
use voipsensor::track::tracker::TrackerConfig;

/// tshark's "Number of SIP messages: N" of `sip,stat`.
fn tshark_sip_messages(p: &std::path::Path) -> u64 {
    let out = Command::new("tshark")
        .args(["-n", "-q", "-z", "sip,stat", "-r"])
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Number of SIP messages: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("sip,stat has a message count")
}

#[test]
fn sip_sctp_capture_s_four_messages_are_counted_as_sip_as_tshark_does() {
    let Some(p) = shared("sip_sctp.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    // The INVITE arrives in two DATA fragments and is rebuilt.
    assert_eq!(c.sctp.fragments, 2);
    assert_eq!(c.sctp.reassembled, 1);
    assert_eq!(c.sctp.fragments_dropped, 0);
    assert_eq!(c.sip.over_sctp, 4);
    assert_eq!(c.sip.messages, 4);
    assert_eq!(c.sip.malformed, 0);
    assert_eq!((c.sip.requests.invite, c.sip.requests.ack), (1, 1));
    assert_eq!((c.sip.responses.r1xx, c.sip.responses.r4xx), (1, 1));
    // Tracked like UDP: the call fails with 403.
    let f = finals(&ev);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].event, f[0].code), (CallEventKind::Failed, Some(403)));
    if need_tool("tshark", "tshark") {
        assert_eq!(c.sip.messages, tshark_sip_messages(&p));
    }
}

#[test]
fn a_fixture_call_over_sctp_matches_tshark_and_is_tracked() {
    let mut b = Builder::new();
    let (a, z) = (
        "10.3.0.1:5060".parse().unwrap(),
        "10.3.0.2:5060".parse().unwrap(),
    );
    let msgs = voipsensor::fixture::defective_call(
        "sctp@fixture",
        a,
        z,
        false,
        voipsensor::fixture::Defect::None,
    );
    let t0 = 1_700_000_000_000_000u64;
    for (k, (from_a, m)) in msgs.iter().enumerate() {
        let (s, d) = if *from_a { (a, z) } else { (z, a) };
        // Messages over 300 bytes go as fragments, as a small path MTU makes them.
        b.sctp(t0 + k as u64 * 100_000, s, d, k as u32 * 4, m, 300);
    }
    let (ev, c) = run_frames(&b, TrackerConfig::default());
    assert_eq!(c.sip.over_sctp, 7);
    assert!(c.sctp.reassembled >= 1, "{:?}", c.sctp);
    assert_eq!(finals(&ev)[0].event, CallEventKind::Ended);
    if need_tool("tshark", "tshark") {
        let p = std::env::temp_dir().join(format!("voipsensor-sctp-{}.pcap", std::process::id()));
        b.write_pcap(&p).unwrap();
        assert_eq!(tshark_sip_messages(&p), 7);
        // tshark verifies the CRC32c the fixture wrote: every packet good.
        let out = Command::new("tshark")
            .args([
                "-n",
                "-o",
                "sctp.checksum:CRC 32c",
                "-Y",
                "sctp.checksum.status == 1",
                "-r",
            ])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let good = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(good, b.len(), "packets with a good CRC32c");
    }
}
