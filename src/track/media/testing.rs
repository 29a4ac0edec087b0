//! Test helpers shared by the media files' unit tests: real SDP and RTP bytes.

use super::stream::StreamKey;
use super::{CallRef, Media, MediaConfig, Seen};
use crate::sip::sdp;
use crate::track::counters::Counters;
use crate::track::event::Event;
use crate::track::event::{CallId, Party, fill};
use core::net::SocketAddr;
use embassy_time::Instant;

pub const CALLER: &str = "10.0.0.1:4000";
pub const CALLEE: &str = "10.0.0.2:5000";

pub fn at(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn call_id(s: &str) -> CallId {
    let mut c = CallId::new();
    fill(&mut c, s);
    c
}

/// An SDP body announcing `addr` with PCMU and telephone-event 101.
pub fn offer(addr: &str) -> sdp::Sdp {
    let a = at(addr);
    let body = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        ip = a.ip(),
        port = a.port()
    );
    sdp::parse(body.as_bytes()).unwrap()
}

/// Call `serial` as the media side knows it (in call slot `serial`).
pub fn call(serial: u64) -> CallRef {
    CallRef {
        serial,
        slot: serial as u32,
    }
}

/// Media with call 1 ("c1") set up: the caller receives at CALLER, the callee at CALLEE.
pub fn media_with_call() -> Media {
    let mut m = Media::new(
        MediaConfig {
            endpoints: 16,
            streams: 16,
            ..MediaConfig::default()
        },
        4,
    );
    let id = call_id("c1");
    m.open_call(call(1));
    m.register(
        call(1),
        &id,
        Party::Caller,
        &offer(CALLER),
        Instant::from_secs(0),
    );
    m.register(
        call(1),
        &id,
        Party::Callee,
        &offer(CALLEE),
        Instant::from_secs(0),
    );
    m
}

/// An RTP packet: version 2, `pt`, `seq`, `ts`, `ssrc`, then `payload`.
pub fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Microseconds → an instant.
pub fn us(t: u64) -> Instant {
    Instant::from_micros(t)
}

/// Sends `n` packets of 20 ms from `src` to `dst` (SSRC `ssrc`), the first at `t0` µs.
pub fn send(m: &mut Media, src: &str, dst: &str, ssrc: u32, n: u16, t0: u64) {
    let mut c = Counters::default();
    let mut out: Vec<Event> = Vec::new();
    for i in 0..n {
        let pkt = rtp(0, 1 + i, 160 * u32::from(i), ssrc, &[0xff; 160]);
        m.on_udp(
            us(t0 + 20_000 * u64::from(i)),
            at(src),
            at(dst),
            &pkt,
            &mut c,
            &mut out,
        );
    }
}

/// The caller's first packet (PCMU, SSRC 0xabc) to the callee, at 1 s.
pub fn caller_first_packet(m: &mut Media, c: &mut Counters, out: &mut Vec<Event>) -> Seen {
    caller_sends(m, c, out, 0, &rtp(0, 1, 160, 0xabc, &[0xff; 160]))
}

/// The caller's `i`-th packet to the callee, 20 ms after the one before, the first at 1 s.
pub fn caller_sends(
    m: &mut Media,
    c: &mut Counters,
    out: &mut Vec<Event>,
    i: usize,
    pkt: &[u8],
) -> Seen {
    let t = 1_000_000 + 20_000 * i as u64;
    m.on_udp(us(t), at(CALLER), at(CALLEE), pkt, c, out)
}

/// The stream [`caller_first_packet`] opens.
pub fn caller_stream() -> StreamKey {
    StreamKey {
        src: at(CALLER),
        dst: at(CALLEE),
        ssrc: 0xabc,
    }
}
