//! TCP stream reassembly with the tracker's own SIP/WebSocket framer, in a 2-stream table
//! with 512-byte buffers and a 5 s idle timeout. Record head: bit 0 SYN, bit 1 FIN, bit 2
//! RST, bits 3-4 pick one of three flows, bits 5-7 a time step (none, 1 ms,
//! 16 ms, 0.5 s, 4 s, 9 min, a day, or back a second);
//! body: the sequence number (u32 LE) and the segment's payload.
#![no_main]

use embassy_time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use std::net::SocketAddr;
use voipsensor::track::sip_tcp;
use voipsensor::wire::{FlowKey, TcpFlags, TcpStreams};
use voipsensor_fuzz::{Records, step};

const BUF: usize = 512;

fuzz_target!(|data: &[u8]| {
    let flows: [FlowKey; 3] = [
        flow("10.0.0.1:5060", "10.0.0.2:5060"),
        flow("10.0.0.2:5060", "10.0.0.1:5060"),
        flow("[2001:db8::1]:443", "[2001:db8::2]:5061"),
    ];
    let mut tcp = TcpStreams::new(2, BUF, Duration::from_secs(5));
    let mut scratch = [0u8; BUF];
    let mut now = 0;
    let oversize = core::cell::Cell::new(0);
    for (head, body) in Records(data) {
        now = step(now, [0, 1, 5, 10, 13, 20, 25, 29][usize::from(head >> 5)]);
        let t = Instant::from_micros(now);
        let (seq, payload) = match body {
            [a, b, c, d, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]), rest),
            _ => (0, &[][..]),
        };
        let flags = TcpFlags {
            syn: head & 1 != 0,
            fin: head & 2 != 0,
            rst: head & 4 != 0,
        };
        let key = flows[usize::from((head >> 3) & 3) % flows.len()];
        // The tracker's resuming framer (the stream slot keeps its hint between segments).
        let framer = sip_tcp::framer(&oversize);
        tcp.segment(t, key, seq, flags, payload, framer, |msg| {
            // Delivered messages are whole, non-empty and fit the stream's buffer.
            assert!(!msg.is_empty() && msg.len() <= BUF);
            black_box(sip_tcp::open(msg, &mut scratch));
        });
        tcp.expire(t);
    }
    black_box((tcp.counters(), tcp.stats()));
});

fn flow(src: &str, dst: &str) -> FlowKey {
    let src: SocketAddr = src.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let dst: SocketAddr = dst.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    FlowKey { src, dst }
}
