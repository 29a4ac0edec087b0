//! The call state machine's rules, on SIP written here message by message and fed to the
//! tracker as real frames (through the project's fixture builder).

mod common;
use std::net::SocketAddr;
use voipsensor::fixture::Builder;
use voipsensor::track::event::{CallEventKind as K, Event, Party};
use voipsensor::track::tracker::TrackerConfig;

const A: &str = "10.1.0.1:5060";
const B: &str = "10.2.0.1:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A SIP message. `first` is the request or status line; `cseq` e.g. "1 INVITE".
fn sip(
    first: &str,
    call_id: &str,
    cseq: &str,
    from_tag: &str,
    to_tag: Option<&str>,
    branch: &str,
    body: &str,
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 10.1.0.1:5060;branch={branch}\r\nFrom: \"Alice\" <sip:1001@10.1.0.1>;tag={from_tag}\r\n\
         To: <sip:2002@10.2.0.1>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:1001@10.1.0.1>\r\n\
         {ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn sdp(ip: &str, port: u16, dir: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={dir}\r\n"
    )
}

const INV: &str = "INVITE sip:2002@10.2.0.1 SIP/2.0";

fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

fn run(b: &Builder, cfg: TrackerConfig) -> (Vec<Event>, voipsensor::track::counters::Counters) {
    common::run_frames(b, cfg)
}

fn kinds(ev: &[Event], call_id: &str) -> Vec<K> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Call(c) if c.call_id.as_str() == call_id => Some(c.event),
            _ => None,
        })
        .collect()
}

const T0: u64 = 1_700_000_000_000_000;

#[test]
fn a_retransmitted_invite_is_counted_not_a_new_call() {
    let mut b = Builder::new();
    let inv = sip(INV, "rt1", "1 INVITE", "a1", None, "z9hG4bK1", "");
    b.udp(T0, addr(A), addr(B), &inv);
    b.udp(T0 + 500_000, addr(A), addr(B), &inv);
    b.udp(T0 + 1_500_000, addr(A), addr(B), &inv);
    b.udp(
        T0 + 1_600_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 486 Busy Here",
            "rt1",
            "1 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK1",
            "",
        ),
    );
    let (ev, c) = run(&b, TrackerConfig::default());
    assert_eq!(kinds(&ev, "rt1"), vec![K::Invite, K::Failed]);
    assert_eq!(c.sip.retransmissions, 2);
    assert_eq!(c.calls.attempted, 1);
}

#[test]
fn a_407_challenge_then_a_new_invite_is_one_answered_call() {
    let mut b = Builder::new();
    let o = sdp("10.1.0.1", 20000, "sendrecv");
    b.udp(
        T0,
        addr(A),
        addr(B),
        &sip(INV, "auth", "1 INVITE", "a1", None, "z9hG4bKa", &o),
    );
    b.udp(
        T0 + 10_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 407 Proxy Authentication Required",
            "auth",
            "1 INVITE",
            "a1",
            Some("x"),
            "z9hG4bKa",
            "",
        ),
    );
    b.udp(
        T0 + 20_000,
        addr(A),
        addr(B),
        &sip(
            "ACK sip:2002@10.2.0.1 SIP/2.0",
            "auth",
            "1 ACK",
            "a1",
            Some("x"),
            "z9hG4bKa",
            "",
        ),
    );
    b.udp(
        T0 + 30_000,
        addr(A),
        addr(B),
        &sip(INV, "auth", "2 INVITE", "a1", None, "z9hG4bKb", &o),
    );
    b.udp(
        T0 + 90_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 180 Ringing",
            "auth",
            "2 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bKb",
            "",
        ),
    );
    b.udp(
        T0 + 2_000_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 200 OK",
            "auth",
            "2 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bKb",
            &sdp("10.2.0.1", 30000, "sendrecv"),
        ),
    );
    b.udp(
        T0 + 4_000_000,
        addr(B),
        addr(A),
        &sip(
            "BYE sip:1001@10.1.0.1 SIP/2.0",
            "auth",
            "1 BYE",
            "b1",
            Some("a1"),
            "z9hG4bKc",
            "",
        ),
    );
    let (ev, c) = run(&b, TrackerConfig::default());
    assert_eq!(
        kinds(&ev, "auth"),
        vec![K::Invite, K::Ringing, K::Answered, K::Ended]
    );
    assert_eq!(c.calls.failed, 0);
    let Some(Event::Call(end)) = ev.iter().rev().find(|e| matches!(e, Event::Call(_))) else {
        panic!()
    };
    // The BYE's From tag is not the caller's: the callee hung up.
    assert_eq!(end.ended_by, Some(Party::Callee));
    assert_eq!(end.setup_ms, Some(2000));
    assert_eq!(end.pdd_ms, Some(90));
    assert_eq!(end.duration_ms, Some(2000));
}

#[test]
fn a_late_offer_in_the_200_and_its_answer_in_the_ack_link_the_media() {
    let mut b = Builder::new();
    b.udp(
        T0,
        addr(A),
        addr(B),
        &sip(INV, "late", "1 INVITE", "a1", None, "z9hG4bK1", ""),
    );
    b.udp(
        T0 + 100_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 200 OK",
            "late",
            "1 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK1",
            &sdp("10.2.0.1", 30000, "sendrecv"),
        ),
    );
    b.udp(
        T0 + 120_000,
        addr(A),
        addr(B),
        &sip(
            "ACK sip:2002@10.2.0.1 SIP/2.0",
            "late",
            "1 ACK",
            "a1",
            Some("b1"),
            "z9hG4bK2",
            &sdp("10.1.0.1", 20000, "sendrecv"),
        ),
    );
    for i in 0..100u16 {
        let t = T0 + 200_000 + i as u64 * 20_000;
        b.udp(
            t,
            addr("10.1.0.1:20000"),
            addr("10.2.0.1:30000"),
            &rtp(i, i as u32 * 160, 0xaaaa),
        );
        b.udp(
            t + 5_000,
            addr("10.2.0.1:30000"),
            addr("10.1.0.1:20000"),
            &rtp(1000 + i, i as u32 * 160, 0xbbbb),
        );
    }
    b.udp(
        T0 + 2_500_000,
        addr(A),
        addr(B),
        &sip(
            "BYE sip:2002@10.2.0.1 SIP/2.0",
            "late",
            "2 BYE",
            "a1",
            Some("b1"),
            "z9hG4bK3",
            "",
        ),
    );
    let mut cfg = TrackerConfig::default();
    cfg.media.heuristic = false; // only SDP can link these streams
    let (ev, _) = run(&b, cfg);
    let ends: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::StreamEnd(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 2, "{ev:#?}");
    assert!(
        ends.iter()
            .all(|s| s.call_id.as_deref() == Some("late") && s.packets == 100 && s.lost == 0)
    );
    let Some(Event::Call(end)) = ev.iter().rev().find(|e| matches!(e, Event::Call(_))) else {
        panic!()
    };
    assert_eq!(end.event, K::Ended);
    let q = end.quality_callee.as_ref().expect("callee→caller quality");
    assert_eq!(q.packets, 100);
    assert!(end.quality_caller.is_some());
}

#[test]
fn a_reinvite_to_sendonly_is_hold_and_back_to_sendrecv_is_resume() {
    let mut b = Builder::new();
    b.udp(
        T0,
        addr(A),
        addr(B),
        &sip(
            INV,
            "h",
            "1 INVITE",
            "a1",
            None,
            "z9hG4bK1",
            &sdp("10.1.0.1", 20000, "sendrecv"),
        ),
    );
    b.udp(
        T0 + 100_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 200 OK",
            "h",
            "1 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK1",
            &sdp("10.2.0.1", 30000, "sendrecv"),
        ),
    );
    b.udp(
        T0 + 1_000_000,
        addr(A),
        addr(B),
        &sip(
            INV,
            "h",
            "2 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK2",
            &sdp("10.1.0.1", 20000, "sendonly"),
        ),
    );
    b.udp(
        T0 + 1_100_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 200 OK",
            "h",
            "2 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK2",
            &sdp("10.2.0.1", 30000, "recvonly"),
        ),
    );
    // A re-INVITE refused with 488 does not end the call.
    b.udp(
        T0 + 2_000_000,
        addr(A),
        addr(B),
        &sip(
            INV,
            "h",
            "3 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK3",
            &sdp("10.1.0.1", 20000, "sendrecv"),
        ),
    );
    b.udp(
        T0 + 2_100_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 488 Not Acceptable Here",
            "h",
            "3 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK3",
            "",
        ),
    );
    b.udp(
        T0 + 3_000_000,
        addr(A),
        addr(B),
        &sip(
            "BYE sip:2002@10.2.0.1 SIP/2.0",
            "h",
            "4 BYE",
            "a1",
            Some("b1"),
            "z9hG4bK4",
            "",
        ),
    );
    let (ev, _) = run(&b, TrackerConfig::default());
    assert_eq!(
        kinds(&ev, "h"),
        vec![K::Invite, K::Answered, K::Hold, K::Resume, K::Ended]
    );
}

#[test]
fn an_unanswered_call_times_out_after_the_setup_timeout() {
    let mut b = Builder::new();
    b.udp(
        T0,
        addr(A),
        addr(B),
        &sip(INV, "lost", "1 INVITE", "a1", None, "z9hG4bK1", ""),
    );
    // Unrelated traffic 200 s later moves packet time on.
    b.udp(
        T0 + 200_000_000,
        addr("10.9.0.1:999"),
        addr("10.9.0.2:999"),
        b"tick",
    );
    let (ev, c) = run(&b, TrackerConfig::default());
    assert_eq!(kinds(&ev, "lost"), vec![K::Invite, K::Timeout]);
    assert_eq!(c.calls.timed_out, 1);
}

#[test]
fn a_flood_of_new_call_ids_never_evicts_an_answered_call() {
    let mut b = Builder::new();
    for i in 0..3 {
        let id = format!("real{i}");
        b.udp(
            T0 + i,
            addr(A),
            addr(B),
            &sip(INV, &id, "1 INVITE", "a1", None, "z9hG4bK1", ""),
        );
        b.udp(
            T0 + 100_000 + i,
            addr(B),
            addr(A),
            &sip(
                "SIP/2.0 200 OK",
                &id,
                "1 INVITE",
                "a1",
                Some("b1"),
                "z9hG4bK1",
                "",
            ),
        );
    }
    for i in 0..500u64 {
        let id = format!("flood{i}");
        b.udp(
            T0 + 1_000_000 + i * 1000,
            addr("10.66.0.1:5060"),
            addr(B),
            &sip(INV, &id, "1 INVITE", "f", None, "z9hG4bKf", ""),
        );
    }
    for i in 0..3 {
        let id = format!("real{i}");
        b.udp(
            T0 + 5_000_000 + i,
            addr(A),
            addr(B),
            &sip(
                "BYE sip:2002@10.2.0.1 SIP/2.0",
                &id,
                "2 BYE",
                "a1",
                Some("b1"),
                "z9hG4bK9",
                "",
            ),
        );
    }
    let cfg = TrackerConfig {
        calls: 16,
        ..TrackerConfig::default()
    };
    let (ev, c) = run(&b, cfg);
    for i in 0..3 {
        assert_eq!(
            kinds(&ev, &format!("real{i}")),
            vec![K::Invite, K::Answered, K::Ended]
        );
    }
    // 13 slots for the flood: 487 of its calls were evicted, oldest idle first, each
    // reported, none rejected while an unanswered call could go.
    assert_eq!(c.calls.evicted, 487);
    assert_eq!(c.calls.rejected, 0);
    assert_eq!(c.tables.calls.evicted, 487);
    assert_eq!(c.tables.calls.high_water, 16);
    assert_eq!(kinds(&ev, "flood0"), vec![K::Invite, K::Evicted]);
    assert_eq!(kinds(&ev, "flood499"), vec![K::Invite, K::SensorStopped]);
}

#[test]
fn compact_headers_and_a_cancel_make_a_cancelled_call() {
    let mut b = Builder::new();
    let compact = |first: &str, cseq: &str, to_tag: &str| {
        format!(
            "{first}\r\nv: SIP/2.0/UDP 10.1.0.1:5060;branch=z9hG4bKc1\r\nf: <sip:1001@10.1.0.1>;tag=a1\r\n\
             t: <sip:2002@10.2.0.1>{to_tag}\r\ni: compact1\r\nCSeq: {cseq}\r\nl: 0\r\n\r\n"
        )
        .into_bytes()
    };
    b.udp(T0, addr(A), addr(B), &compact(INV, "1 INVITE", ""));
    b.udp(
        T0 + 50_000,
        addr(B),
        addr(A),
        &compact("SIP/2.0 180 Ringing", "1 INVITE", ";tag=b1"),
    );
    b.udp(
        T0 + 3_000_000,
        addr(A),
        addr(B),
        &compact("CANCEL sip:2002@10.2.0.1 SIP/2.0", "1 CANCEL", ""),
    );
    b.udp(
        T0 + 3_010_000,
        addr(B),
        addr(A),
        &compact("SIP/2.0 200 OK", "1 CANCEL", ";tag=b1"),
    );
    b.udp(
        T0 + 3_020_000,
        addr(B),
        addr(A),
        &compact("SIP/2.0 487 Request Terminated", "1 INVITE", ";tag=b1"),
    );
    let (ev, c) = run(&b, TrackerConfig::default());
    assert_eq!(
        kinds(&ev, "compact1"),
        vec![K::Invite, K::Ringing, K::Cancelled]
    );
    assert_eq!(c.sip.requests.cancel, 1);
}

/// RTCP XR with one VoIP Metrics block (RFC 3611 §4.7) from `sender_ssrc` about `source`.
fn rtcp_xr(sender_ssrc: u32, source: u32) -> Vec<u8> {
    let mut p = vec![0x80, 207, 0, 10];
    p.extend_from_slice(&sender_ssrc.to_be_bytes());
    p.extend_from_slice(&[7, 0, 0, 8]); // block type 7, length 8 words
    p.extend_from_slice(&source.to_be_bytes());
    // loss 4/256, discard 1/256, burst/gap density, burst 0 ms, gap 0 ms, RTT 42 ms, ESD 0
    p.extend_from_slice(&[4, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0]);
    // signal, noise, RERL, Gmin, R 88, ext R unavailable, MOS-LQ 4.1, MOS-CQ 4.0, rx config
    p.extend_from_slice(&[0xEE, 0xAF, 127, 16, 88, 127, 41, 40, 0, 0]);
    p.extend_from_slice(&[0, 60, 0, 120, 0, 200]); // jitter buffer nominal/max/abs max
    p
}

#[test]
fn an_rtcp_xr_voip_metrics_block_is_attached_to_the_stream_it_reports_on() {
    let mut b = Builder::new();
    b.udp(
        T0,
        addr(A),
        addr(B),
        &sip(
            INV,
            "xr",
            "1 INVITE",
            "a1",
            None,
            "z9hG4bK1",
            &sdp("10.1.0.1", 20000, "sendrecv"),
        ),
    );
    b.udp(
        T0 + 100_000,
        addr(B),
        addr(A),
        &sip(
            "SIP/2.0 200 OK",
            "xr",
            "1 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK1",
            &sdp("10.2.0.1", 30000, "sendrecv"),
        ),
    );
    for i in 0..50u16 {
        let t = T0 + 200_000 + i as u64 * 20_000;
        b.udp(
            t,
            addr("10.1.0.1:20000"),
            addr("10.2.0.1:30000"),
            &rtp(i, i as u32 * 160, 0xaaaa),
        );
    }
    // The callee (receiving 0xaaaa on 30000) reports from its RTCP port 30001.
    b.udp(
        T0 + 1_300_000,
        addr("10.2.0.1:30001"),
        addr("10.1.0.1:20001"),
        &rtcp_xr(0xbbbb, 0xaaaa),
    );
    b.udp(
        T0 + 1_500_000,
        addr(A),
        addr(B),
        &sip(
            "BYE sip:2002@10.2.0.1 SIP/2.0",
            "xr",
            "2 BYE",
            "a1",
            Some("b1"),
            "z9hG4bK2",
            "",
        ),
    );
    let (ev, c) = run(&b, TrackerConfig::default());
    assert_eq!(c.rtp.rtcp_packets, 1);
    let end = ev
        .iter()
        .find_map(|e| match e {
            Event::StreamEnd(s) if s.ssrc == 0xaaaa => Some(s),
            _ => None,
        })
        .expect("stream_end of 0xaaaa");
    assert_eq!(end.rtcp_xr_loss_pct, Some(1.563));
    assert_eq!(end.rtcp_xr_discard_pct, Some(0.391));
    assert_eq!(end.rtcp_xr_r_factor, Some(88));
    assert_eq!(end.rtcp_xr_mos_lq, Some(4.1));
    assert_eq!(end.rtcp_xr_mos_cq, Some(4.0));
    assert_eq!(end.rtcp_xr_rtt_ms, Some(42.0));
}

/// A client WebSocket text frame (masked, as RFC 6455 requires of clients).
fn ws_client(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | 126];
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

fn ws_server(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81, 126];
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_call_over_websocket_split_across_segments_is_tracked() {
    let (c, s) = (addr("10.1.0.1:43380"), addr("10.2.0.1:8080"));
    let mut b = Builder::new();
    b.tcp_connect(T0, c, s);
    let get = b"GET / HTTP/1.1\r\nHost: 10.2.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
    b.tcp_send(T0 + 1_000, c, s, get, &[]);
    b.tcp_send(T0 + 2_000, s, c, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip\r\n\r\n", &[]);
    let inv = ws_client(
        &sip(
            INV,
            "ws1",
            "1 INVITE",
            "a1",
            None,
            "z9hG4bK1",
            &sdp("10.1.0.1", 20000, "sendrecv"),
        ),
        [1, 2, 3, 4],
    );
    // The INVITE frame arrives in three segments.
    let n = inv.len();
    b.tcp_send(T0 + 10_000, c, s, &inv, &[20, n / 2, n - 20 - n / 2]);
    b.tcp_send(
        T0 + 50_000,
        s,
        c,
        &ws_server(&sip(
            "SIP/2.0 180 Ringing",
            "ws1",
            "1 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK1",
            "",
        )),
        &[],
    );
    b.tcp_send(
        T0 + 900_000,
        s,
        c,
        &ws_server(&sip(
            "SIP/2.0 200 OK",
            "ws1",
            "1 INVITE",
            "a1",
            Some("b1"),
            "z9hG4bK1",
            &sdp("10.2.0.1", 30000, "sendrecv"),
        )),
        &[],
    );
    b.tcp_send(
        T0 + 950_000,
        c,
        s,
        &ws_client(
            &sip(
                "ACK sip:2002@10.2.0.1 SIP/2.0",
                "ws1",
                "1 ACK",
                "a1",
                Some("b1"),
                "z9hG4bK2",
                "",
            ),
            [9, 8, 7, 6],
        ),
        &[],
    );
    b.tcp_send(
        T0 + 5_000_000,
        c,
        s,
        &ws_client(
            &sip(
                "BYE sip:2002@10.2.0.1 SIP/2.0",
                "ws1",
                "2 BYE",
                "a1",
                Some("b1"),
                "z9hG4bK3",
                "",
            ),
            [5, 5, 5, 5],
        ),
        &[],
    );
    let (ev, counters) = run(&b, TrackerConfig::default());
    assert_eq!(
        kinds(&ev, "ws1"),
        vec![K::Invite, K::Ringing, K::Answered, K::Ended]
    );
    assert_eq!(counters.sip.over_websocket, 5);
}
