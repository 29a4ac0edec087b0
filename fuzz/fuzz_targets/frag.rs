//! Fragment reassembly, fed a sequence of fragments into a 2-slot table with a 1 s timeout.
//! Record head: bits 0-1 pick one of four datagram ids, bit 2 is "more fragments", bits 3-7
//! a time step; body: the offset in 8-byte units (u16 LE, 13 bits as on the wire) and the
//! fragment's payload.
#![no_main]

use embassy_time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use voipsensor::wire::frag::{FRAG_BUF, FragKey, FragOutcome, Reassembler};
use voipsensor::wire::ip::FragInfo;
use voipsensor_fuzz::{Records, step};

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new(2, Duration::from_secs(1));
    let mut now = 0;
    for (head, body) in Records(data) {
        now = step(now, head >> 3);
        let t = Instant::from_micros(now);
        let (offset, payload) = match body {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b]) & 0x1fff) * 8, rest),
            _ => (0, &[][..]),
        };
        let key = FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id: u32::from(head & 3),
            proto: 17,
        };
        let info = FragInfo {
            id: key.id,
            offset,
            more: head & 4 != 0,
        };
        if let FragOutcome::Complete(d) = r.insert(t, key, info, payload) {
            // Completed by its final fragment, a datagram ends where that fragment ends (a
            // middle fragment arriving last may complete it too); it never exceeds the buffer.
            if !info.more {
                assert_eq!(d.len(), offset + payload.len());
            }
            assert!(d.len() <= FRAG_BUF);
            black_box(d);
        }
        r.expire(t);
    }
    black_box((r.counters(), r.stats()));
});
