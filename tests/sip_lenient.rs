//! Real stacks send broken headers: over UDP (the datagram bounds the message) a bad
//! Content-Length or a bad header line keeps the message and counts the defect; over TCP
//! the message is framed strictly.

mod common;
use common::*;
use std::net::SocketAddr;
use voipsensor::fixture::{Builder, Defect, add_defective_call};
use voipsensor::track::event::CallEventKind;
use voipsensor::track::tracker::TrackerConfig;

const T0: u64 = 1_700_000_000_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn run(
    tcp: bool,
    defect: Defect,
) -> (
    Vec<voipsensor::track::event::Event>,
    voipsensor::track::counters::Counters,
) {
    let mut b = Builder::new();
    add_defective_call(
        &mut b,
        "lenient@fixture",
        addr("10.2.0.1:5060"),
        addr("10.2.0.2:5060"),
        T0,
        tcp,
        defect,
    );
    run_frames(&b, TrackerConfig::default())
}

#[test]
fn a_udp_invite_with_a_broken_content_length_is_tracked_and_counted() {
    for d in [
        Defect::ContentLength("bad"),
        Defect::ContentLength("999999"),
        Defect::ContentLength("-5"),
        Defect::NoContentLength,
    ] {
        let (ev, c) = run(false, d);
        assert_eq!(c.sip.bad_content_length, 1, "{d:?}");
        assert_eq!(c.sip.malformed, 0, "{d:?}");
        assert_eq!(c.sip.requests.invite, 1, "{d:?}");
        let invite = calls_of(&ev, CallEventKind::Invite);
        assert_eq!(invite.len(), 1, "{d:?}: the call starts at its INVITE");
        let f = finals(&ev);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].event, CallEventKind::Ended, "{d:?}");
        assert_eq!(c.calls.joined_late, 0, "{d:?}");
    }
}

#[test]
fn a_clean_udp_call_counts_no_defect() {
    let (ev, c) = run(false, Defect::None);
    assert_eq!((c.sip.bad_content_length, c.sip.header_defects), (0, 0));
    assert_eq!(calls_of(&ev, CallEventKind::Invite).len(), 1);
}

#[test]
fn udp_header_lines_that_do_not_parse_are_skipped_and_counted() {
    let (ev, c) = run(false, Defect::BadHeaderLines);
    assert_eq!(c.sip.header_defects, 1);
    assert_eq!(c.sip.malformed, 0);
    assert_eq!(calls_of(&ev, CallEventKind::Invite).len(), 1);
    assert_eq!(finals(&ev)[0].event, CallEventKind::Ended);
}

#[test]
fn over_tcp_a_non_numeric_content_length_is_still_framed_strictly() {
    let (ev, c) = run(true, Defect::ContentLength("bad"));
    // The INVITE is not read (its end is unknown); nothing is forgiven over TCP, and the
    // call is picked up from the responses around it.
    assert_eq!(c.sip.bad_content_length, 0);
    assert_eq!(c.sip.requests.invite, 0);
    assert!(calls_of(&ev, CallEventKind::Invite).is_empty());
    assert_eq!(c.calls.joined_late, 1);
    assert_eq!(finals(&ev).len(), 1);
}

#[test]
fn an_oversize_tcp_invite_is_skipped_counted_and_its_call_still_tracked() {
    let (caller, callee) = (addr("10.2.0.1:5060"), addr("10.2.0.2:5060"));
    let size = voipsensor::sip::MAX_MESSAGE + 4096;
    let mut b = Builder::new();
    add_defective_call(
        &mut b,
        "oversize@fixture",
        caller,
        callee,
        T0,
        true,
        Defect::Oversize(size),
    );
    let (ev, c) = run_frames(&b, TrackerConfig::default());
    assert_eq!(c.sip.oversize, 1);
    assert_eq!(c.sip.requests.invite, 0);
    // Tracked from the messages around it: the responses, ACK and BYE.
    assert_eq!(c.sip.over_tcp, 6);
    assert_eq!(c.calls.joined_late, 1);
    let f = finals(&ev);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].event, CallEventKind::Ended);

    // Nothing lost without a counter: every byte TCP accepted was delivered in a message or
    // skipped as garbage, and the garbage is exactly the oversize INVITE.
    let msgs = voipsensor::fixture::defective_call(
        "oversize@fixture",
        caller,
        callee,
        true,
        Defect::Oversize(size),
    );
    let invite = msgs[0].1.len() as u64;
    let delivered: u64 = msgs[1..].iter().map(|(_, m)| m.len() as u64).sum();
    assert!(invite > voipsensor::sip::MAX_MESSAGE as u64);
    assert_eq!(c.tcp.garbage_bytes, invite);
    assert_eq!(
        c.tcp.bytes,
        delivered + c.tcp.garbage_bytes + c.tcp.resync_bytes,
        "{:?}",
        c.tcp
    );
    assert_eq!((c.tcp.resync_bytes, c.tcp.overflows), (0, 0));
}
