//! One frame through the whole decoder: the first byte picks the link type (every one the
//! sensor reads), the rest is the frame — link headers, VLANs, IPv4/IPv6 with extension
//! headers, fragments, and every tunnel (GRE, ERSPAN I/II/III, VXLAN, IP-in-IP, TZSP).
#![no_main]

use embassy_time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use voipsensor::wire::{Decoder, Transport};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let mut d = Decoder::new(2, Duration::from_secs(1));
    if let Ok(Some(p)) = d.decode(Instant::from_micros(0), voipsensor_fuzz::link(sel), frame) {
        black_box(p.flow());
        match p.transport {
            Transport::Udp { payload, .. }
            | Transport::Tcp { payload, .. }
            | Transport::Sctp {
                chunks: payload, ..
            } => {
                assert!(payload.len() <= frame.len().max(voipsensor::wire::frag::FRAG_BUF));
                black_box(payload);
            }
        }
    }
    black_box(d.counters());
});
