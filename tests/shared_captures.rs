//! The core against real third-party captures and tshark's reading of them
//! (`../shared/pcaps/README.md`, `expected/*.txt`). A visible skip (a failure under `CI`)
//! when `../shared` is absent.

mod common;
use common::*;
use voipsensor::track::event::{CallEventKind as K, Party};

fn codes(events: &[voipsensor::track::event::Event], kind: K) -> Vec<u16> {
    let mut v: Vec<u16> = calls_of(events, kind)
        .iter()
        .filter_map(|c| c.code)
        .collect();
    v.sort();
    v
}

#[test]
fn tcp_6060_segmented_capture_has_37_invite_dialogs_with_their_outcomes() {
    let Some(p) = shared("sip_tcp6060_segmented_70calls.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    // tshark -d tcp.port==6060,sip: 406 SIP messages, 37 INVITE, 2 CANCEL, 63 UPDATE.
    assert_eq!(c.sip.messages, 406, "{:#?}", c.sip);
    assert_eq!(c.sip.requests.invite, 37);
    assert_eq!(c.sip.requests.update, 63);
    // 37 INVITEs are captured; 3 more dialogs show only their final response (the capture
    // began mid-setup) and are tracked from there, which is where the 486, one 487 and
    // one 200 come from. 3 captured INVITEs get no final response before the end.
    assert_eq!(calls_of(&ev, K::Invite).len(), 37);
    assert_eq!((c.calls.attempted, c.calls.joined_late), (40, 3));
    assert_eq!(
        c.calls.open_at_stop, 23,
        "answered without BYE in the capture, or no final"
    );
    assert_eq!(calls_of(&ev, K::Answered).len(), 33);
    assert_eq!(codes(&ev, K::Cancelled), vec![487, 487]);
    assert_eq!(codes(&ev, K::Failed), vec![403, 486]);
}

#[test]
fn aaa_capture_counts_a_407_retry_as_one_call_and_finds_four_failures() {
    let Some(p) = shared("aaa_register_cancel_4xx.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    assert_eq!(c.calls.attempted, 4, "{:#?}", c.calls);
    assert_eq!(codes(&ev, K::Failed), vec![403, 403, 408, 480]);
    // The 480 came after a 183: post-dial delay is known for that call.
    let f480 = calls_of(&ev, K::Failed)
        .into_iter()
        .find(|c| c.code == Some(480))
        .unwrap();
    assert!(f480.pdd_ms.is_some(), "{f480:?}");
    assert!(calls_of(&ev, K::Answered).is_empty());
    assert!(
        c.sip.register.challenged >= 1 && c.sip.register.ok >= 1,
        "{:?}",
        c.sip.register
    );
    assert!(c.sip.requests.cancel >= 1);
}

#[test]
fn erspan_capture_has_three_answered_calls_with_hold_and_resume() {
    let Some(p) = shared("erspan_sip_multicall_hold.pcapng") else {
        return;
    };
    let (ev, c) = replay(&p);
    // The mirror arrives as Ethernet bridged over GRE (0x6558), the README's "ERSPAN".
    assert!(c.wire.gre > 0, "{:?}", c.wire);
    assert_eq!(calls_of(&ev, K::Invite).len(), 3, "{:?}", c.calls);
    assert_eq!(calls_of(&ev, K::Answered).len(), 3);
    assert_eq!(calls_of(&ev, K::Ended).len(), 3);
    assert!(!calls_of(&ev, K::Hold).is_empty(), "no hold event");
    assert!(!calls_of(&ev, K::Resume).is_empty(), "no resume event");
}

#[test]
fn ipv6_fragmented_call_is_answered_and_ended_with_prack_and_update() {
    let Some(p) = shared("ipv6_fragmented_sip_prack_update.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    assert!(c.wire.fragments_reassembled >= 1, "{:?}", c.wire);
    assert_eq!(c.calls.attempted, 1);
    assert_eq!(calls_of(&ev, K::Answered).len(), 1);
    assert_eq!(calls_of(&ev, K::Ended).len(), 1);
    assert!(!calls_of(&ev, K::EarlyMedia).is_empty() || !calls_of(&ev, K::Ringing).is_empty());
    // Every message is captured twice (two legs): tshark counts 4 PRACK and 4 UPDATE
    // packets, 1 resent message.
    assert_eq!(
        (c.sip.requests.prack, c.sip.requests.update),
        (4, 4),
        "{:?}",
        c.sip.requests
    );
    assert_eq!(c.sip.messages, 32);
    let end = calls_of(&ev, K::Ended)[0];
    assert!(end.duration_ms.is_some() && end.setup_ms.is_some());
}

#[test]
fn raw_ip_link_type_call_fails_403() {
    let Some(p) = shared("sip_udp_rawip_linktype.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    // tshark: 8 messages, 1 INVITE, 3 REGISTER/401, one 403. The 403 answers an INVITE of
    // another Call-ID that is not in the capture: tracked from the response (joined late).
    assert_eq!(c.sip.messages, 8);
    assert_eq!(calls_of(&ev, K::Invite).len(), 1);
    assert_eq!(codes(&ev, K::Failed), vec![403]);
    assert_eq!(c.sip.register.challenged, 3);
}

#[test]
fn ipip_tunnel_messages_are_read_as_well_as_plain_ones() {
    let Some(p) = shared("sip_tcp_ipip_tunnel.pcap") else {
        return;
    };
    let (_, c) = replay(&p);
    assert!(c.wire.ipip >= 1, "{:?}", c.wire);
    assert_eq!(c.sip.messages, 4, "{:?}", c.sip);
}

#[test]
fn ipv6_udp_call_with_broken_timestamps_is_read_over_ipv6() {
    let Some(p) = shared("sip_ipv6_udp_call.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    // This capture's timestamps jump by years between packets (and go backwards twice):
    // in packet time the call times out before its 200 arrives. What must hold: every
    // message is read, over IPv6, and the clock never runs backwards.
    assert_eq!(c.sip.messages, 6);
    assert_eq!(c.time_went_backwards, 2);
    let inv = calls_of(&ev, K::Invite);
    assert_eq!(inv.len(), 1);
    assert!(inv[0].src.is_ipv6() && inv[0].dst.is_ipv6());
    assert_eq!(calls_of(&ev, K::Answered).len(), 1);
    let _ = Party::Caller;
}

#[test]
fn every_shared_capture_replays_without_error_and_counts_every_frame() {
    let Some(dir) = shared_pcaps() else { return };
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let (_, c) = replay(&p);
        assert!(c.frames > 0, "{name}");
        n += 1;
    }
    assert!(n >= 20, "only {n} captures found");
}

#[test]
fn sip_over_websocket_is_read_like_tshark() {
    let Some(p) = shared("sip_websocket.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    // tshark: 39 SIP messages, 11 of them in WebSocket frames after an HTTP Upgrade.
    assert_eq!(c.sip.messages, 39, "{:?}", c.sip);
    assert_eq!(c.sip.over_websocket, 11);
    assert_eq!(c.sip.malformed, 0);
    assert_eq!(calls_of(&ev, K::Answered).len(), 2);
}
