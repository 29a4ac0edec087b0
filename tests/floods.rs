//! Floods against full tables, in memory and with small capacities (64 calls, 128 streams)
//! so they run quickly in debug builds: INVITEs with and without SDP, INVITE + 200 OK pairs,
//! many SSRCs on one port pair and on distinct ports, IP fragments that never complete.
//! Each is mixed with a few real answered calls with media, which must come out exactly as
//! they do without the flood (same call events, same stream figures), with the evictions
//! counted by class and nothing dropped silently.

mod common;

use std::net::SocketAddr;
use voipsensor::fixture::{Builder, CallSpec, add_call, rtp_packet};
use voipsensor::track::call::{ANSWERED_ACTIVE, ANSWERED_IDLE, CLOSED, UNANSWERED_BARE};
use voipsensor::track::counters::Counters;
use voipsensor::track::event::Event;
use voipsensor::track::media::MediaConfig;
use voipsensor::track::tracker::TrackerConfig;

const CALLS: usize = 64;
const STREAMS: usize = 128;
const FRAGMENTS: usize = 16;

fn cfg() -> TrackerConfig {
    TrackerConfig {
        calls: CALLS,
        fragments: FRAGMENTS,
        media: MediaConfig {
            endpoints: 4 * CALLS,
            streams: STREAMS,
            ..MediaConfig::default()
        },
        ..TrackerConfig::default()
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// `n` real answered calls with 5 s of PCMU both ways, starting `first_us` apart by 1.5 s.
fn real_calls(b: &mut Builder, n: usize, first_us: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("real-{i}@pbx.example");
            let mut spec = CallSpec::new(
                &id,
                addr(&format!("10.1.0.{}:5060", 10 + i)),
                addr(&format!("10.2.0.{}:5060", 10 + i)),
                first_us + i as u64 * 1_500_000,
            );
            spec.ring_ms = 1500;
            add_call(b, &spec);
            id
        })
        .collect()
}

/// What the real calls produced: their call events, interval reports and stream ends,
/// per call and stream in the order they came (how reports of different streams in one
/// second interleave depends on table slots, which a flood changes). A stream's end is stamped with the time of the once-a-second pass that saw it idle,
/// which is the first packet after a second boundary: a flood adds packets, so that time
/// is left out (its figures are what must not change).
fn of_real(events: &[Event], ids: &[String]) -> Vec<Event> {
    let real = |id: Option<&str>| id.is_some_and(|id| ids.iter().any(|r| r == id));
    let mut v = events
        .iter()
        .filter(|e| match e {
            Event::Call(c) => real(Some(c.call_id.as_str())),
            Event::StreamEnd(s) => real(s.call_id.as_deref()),
            Event::RtpInterval(r) => real(r.call_id.as_deref()),
            _ => false,
        })
        .cloned()
        .map(|mut e| {
            if let Event::StreamEnd(s) = &mut e {
                s.ts = Default::default();
            }
            e
        })
        .collect::<Vec<_>>();
    // Stable: each call's and each stream's own events stay in order.
    v.sort_by_key(|e| match e {
        Event::Call(c) => (0, c.call_id.to_string(), 0),
        Event::RtpInterval(r) => (1, format!("{:?}", r.call_id), r.ssrc),
        Event::StreamEnd(s) => (2, format!("{:?}", s.call_id), s.ssrc),
        _ => (3, String::new(), 0),
    });
    v
}

fn invite(call_id: &str, from: SocketAddr, to: SocketAddr, sdp_port: Option<u16>) -> String {
    let body = match sdp_port {
        Some(p) => format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {p} RTP/AVP 0\r\n",
            ip = from.ip()
        ),
        None => String::new(),
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "INVITE sip:bob@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{call_id}\r\n\
         From: <sip:spam@{from}>;tag=f{call_id}\r\nTo: <sip:bob@{to}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn ok(call_id: &str, from: SocketAddr, to: SocketAddr) -> String {
    format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{call_id}\r\n\
         From: <sip:spam@{from}>;tag=f{call_id}\r\nTo: <sip:bob@{to}>;tag=t{call_id}\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A flooder's address for packet `i` (spread over many hosts and ports).
fn spoofed(i: u64, port: u16) -> SocketAddr {
    addr(&format!(
        "172.16.{}.{}:{port}",
        (i / 250) % 250,
        1 + i % 250
    ))
}

/// Runs the real calls alone and with `flood` added, checks the real calls are unchanged
/// and nothing panicked; returns the flooded run's counters.
fn with_and_without(flood: impl Fn(&mut Builder)) -> Counters {
    let mut quiet = Builder::new();
    let ids = real_calls(&mut quiet, 4, 12_000_000);
    let (alone, c_alone) = common::run_frames(&quiet, cfg());
    let expected = of_real(&alone, &ids);
    assert_eq!(
        c_alone.calls.answered, 4,
        "the real calls alone are answered"
    );
    assert!(
        expected
            .iter()
            .filter(|e| matches!(e, Event::StreamEnd(_)))
            .count()
            >= 8,
        "two streams per real call"
    );

    let mut loud = Builder::new();
    real_calls(&mut loud, 4, 12_000_000);
    flood(&mut loud);
    let (flooded, c) = common::run_frames(&loud, cfg());
    let got = of_real(&flooded, &ids);
    assert_eq!(got.len(), expected.len(), "same number of real-call events");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "a real call's event changed under the flood");
    }
    c
}

/// A flood spread evenly over `secs` seconds from `start_us`, `per_sec` items a second.
fn spread(start_us: u64, secs: u64, per_sec: u64) -> impl Iterator<Item = (u64, u64)> {
    let step = 1_000_000 / per_sec;
    (0..secs * per_sec).map(move |i| (i, start_us + i * step))
}

#[test]
fn an_invite_flood_without_sdp_evicts_only_its_own_calls() {
    let c = with_and_without(|b| {
        for (i, t) in spread(10_000_000, 16, 500) {
            let (from, to) = (spoofed(i, 5060), addr("10.9.0.1:5060"));
            b.udp(
                t,
                from,
                to,
                invite(&format!("fl{i}"), from, to, None).as_bytes(),
            );
        }
    });
    let t = c.tables.calls;
    assert_eq!(c.sip.requests.invite, 8000 + 4);
    assert!(t.evicted > 7000, "{t:?}");
    let bare = t.evicted_by_class[usize::from(UNANSWERED_BARE)];
    let closed = t.evicted_by_class[usize::from(CLOSED)];
    assert_eq!(
        t.evicted,
        bare + closed,
        "only calls nobody answered, and ended calls lingering, went: {t:?}"
    );
    assert!(closed <= 4, "the real calls once ended: {t:?}");
    assert_eq!(c.calls.rejected, 0);
    assert_eq!(
        c.calls.evicted, bare,
        "every evicted open call was reported"
    );
}

#[test]
fn an_invite_flood_with_sdp_leaves_the_real_media_alone() {
    let c = with_and_without(|b| {
        for (i, t) in spread(10_000_000, 16, 500) {
            let (from, to) = (spoofed(i, 5060), addr("10.9.0.1:5060"));
            let port = 20_000 + (i % 10_000) as u16 * 2;
            b.udp(
                t,
                from,
                to,
                invite(&format!("fs{i}"), from, to, Some(port)).as_bytes(),
            );
        }
    });
    let t = c.tables.calls;
    assert!(t.evicted > 7000, "{t:?}");
    assert_eq!(
        t.evicted,
        t.evicted_by_class[usize::from(UNANSWERED_BARE)] + t.evicted_by_class[usize::from(CLOSED)]
    );
    // The evicted calls' endpoints left with them: the table never filled with them.
    let e = c.tables.media_endpoints;
    assert_eq!(e.evicted, 0, "{e:?}");
    assert!(e.high_water as usize <= 2 * CALLS + 8, "{e:?}");
}

#[test]
fn invite_and_200_pairs_lock_the_call_table_only_until_they_prove_idle() {
    // 2,000 spoofed answered calls in the first second, none with media: the table is
    // full of answered calls. The real calls start 12 s later, once those are idle for
    // longer than ANSWERED_IDLE_EVICTABLE, and evict them.
    let c = with_and_without(|b| {
        for (i, t) in spread(0, 1, 2000) {
            let (from, to) = (spoofed(i, 5060), addr("10.9.0.1:5060"));
            let id = format!("pair{i}");
            b.udp(t, from, to, invite(&id, from, to, None).as_bytes());
            b.udp(t + 200, to, from, ok(&id, from, to).as_bytes());
        }
    });
    let t = c.tables.calls;
    // The first 64 pairs fill the table with answered calls; the rest are refused (the
    // table is full of calls answered less than 10 s ago). The real calls, later, are not
    // (the comparison above): they evict the idle answered ones.
    assert_eq!(c.calls.answered, CALLS as u64 + 4, "{t:?}");
    // Each refused pair counts twice: its INVITE, then its 200 (which would join late).
    assert_eq!(c.calls.rejected, 2 * (2000 - CALLS as u64), "{t:?}");
    assert!(t.evicted_by_class[usize::from(ANSWERED_IDLE)] >= 4, "{t:?}");
    assert_eq!(t.evicted_by_class[usize::from(ANSWERED_ACTIVE)], 0, "{t:?}");
}

#[test]
fn answered_calls_with_media_are_never_evicted_by_a_flood() {
    // The flood begins once the real calls talk: their media keeps them protected, the
    // flood only evicts (or, once its answered calls fill the table, is refused) itself.
    let c = with_and_without(|b| {
        for (i, t) in spread(18_500_000, 4, 1000) {
            let (from, to) = (spoofed(i, 5060), addr("10.9.0.1:5060"));
            let id = format!("late{i}");
            b.udp(t, from, to, invite(&id, from, to, None).as_bytes());
            if i % 2 == 0 {
                b.udp(t + 100, to, from, ok(&id, from, to).as_bytes());
            }
        }
    });
    let t = c.tables.calls;
    assert!(t.evicted > 0 || c.calls.rejected > 0, "{t:?}");
    assert_eq!(t.evicted_by_class[usize::from(ANSWERED_ACTIVE)], 0, "{t:?}");
}

#[test]
fn many_ssrcs_on_one_port_pair_evict_only_tentative_streams() {
    let c = with_and_without(|b| {
        let (src, dst) = (addr("10.7.0.1:30000"), addr("10.7.0.2:30002"));
        for (i, t) in spread(10_000_000, 16, 1000) {
            let pkt = rtp_packet(
                0,
                false,
                i as u16,
                (i * 160) as u32,
                0x5000_0000 + i as u32,
                160,
            );
            b.udp(t, src, dst, &pkt);
        }
    });
    let s = c.tables.streams;
    assert!(s.evicted > 10_000, "{s:?}");
    assert_eq!(
        s.evicted, s.evicted_by_class[0],
        "only tentative streams went: {s:?}"
    );
}

#[test]
fn rtp_like_packets_on_distinct_ports_evict_only_tentative_streams() {
    let c = with_and_without(|b| {
        for (i, t) in spread(10_000_000, 16, 1000) {
            let src = spoofed(i, 10_000 + (i % 20_000) as u16 * 2);
            let dst = addr(&format!("10.8.0.1:{}", 40_000 + (i % 10_000) as u16 * 2));
            let pkt = rtp_packet(8, false, 1, 160, i as u32, 160);
            b.udp(t, src, dst, &pkt);
        }
    });
    let s = c.tables.streams;
    assert!(s.evicted > 10_000, "{s:?}");
    assert_eq!(s.evicted, s.evicted_by_class[0], "{s:?}");
}

#[test]
fn fragments_that_never_complete_do_not_stop_real_fragmented_signalling() {
    let mut quiet = Builder::new();
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let id = format!("frag-real-{i}");
            let mut spec = CallSpec::new(
                &id,
                addr(&format!("10.1.1.{}:5060", 10 + i)),
                addr(&format!("10.2.1.{}:5060", 10 + i)),
                12_000_000 + i as u64 * 1_500_000,
            );
            spec.mtu = Some(400);
            add_call(&mut quiet, &spec);
            id
        })
        .collect();
    let (alone, c_alone) = common::run_frames(&quiet, cfg());
    let expected = of_real(&alone, &ids);
    assert!(!expected.is_empty());

    let mut loud = quiet;
    for (i, t) in spread(10_000_000, 16, 1000) {
        // A first fragment (MF set) of a datagram whose rest never comes.
        let (src, dst) = (spoofed(i, 5060), addr("10.9.0.1:5060"));
        let payload = vec![b'x'; 600];
        let mut one = Builder::new();
        one.udp_fragmented(t, src, dst, &payload, 300);
        if let Some((_, first)) = one.frames().first() {
            loud.raw_frame(t, first.to_vec());
        }
    }
    let (flooded, c) = common::run_frames(&loud, cfg());
    assert_eq!(of_real(&flooded, &ids), expected);
    let f = c.tables.fragments;
    assert!(f.evicted > 10_000, "{f:?}");
    assert_eq!(
        c.wire.fragments_reassembled,
        c_alone.wire.fragments_reassembled
    );
    assert!(c_alone.wire.fragments_reassembled >= 4);
}
