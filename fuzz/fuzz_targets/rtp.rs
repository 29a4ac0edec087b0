//! RTP and RTCP datagrams of one stream, in order: each record's body is parsed as RTP
//! (header, CSRCs, extension, padding, RFC 4733 events) feeding one RFC 3550 statistics and
//! DTMF state, and as a compound RTCP datagram (SR/RR blocks, SDES items, BYE, APP, XR
//! VoIP Metrics). Record head: the arrival time step in ms (0..=255).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use voipsensor::rtp::packet::{EventPacket, Packet};
use voipsensor::rtp::rtcp::{Compound, RtcpRepr, rtt_ms};
use voipsensor::rtp::{DtmfTracker, PacketKind, RtpRepr, StreamStats, is_rtcp_pt, static_pt};
use voipsensor_fuzz::Records;

fuzz_target!(|data: &[u8]| {
    let mut stats = StreamStats::with_probation(2);
    let mut dtmf = DtmfTracker::new();
    let mut arrival_us: u64 = 1_700_000_000_000_000;
    for (i, (head, body)) in Records(data).enumerate() {
        arrival_us += u64::from(head) * 1000;
        rtp(&mut stats, &mut dtmf, arrival_us, body);
        rtcp(body);
        if i % 50 == 49 {
            black_box(stats.take_interval());
        }
    }
    black_box((stats.take_interval(), stats.totals(), dtmf.flush(8000)));
    stats.finish();
    black_box(stats.totals());
});

fn rtp(stats: &mut StreamStats, dtmf: &mut DtmfTracker, arrival_us: u64, b: &[u8]) {
    if b.len() > 1 && is_rtcp_pt(b[1]) {
        return;
    }
    let Ok(p) = Packet::new_checked(b) else {
        return;
    };
    let r = RtpRepr::parse(&p);
    black_box((p.csrcs().count(), p.extension_data(), p.padding_len()));
    let payload = p.payload();
    // PT 101 stands for a negotiated telephone-event; 13 is comfort noise.
    let kind = match r.payload_type {
        101 => PacketKind::Event,
        13 => PacketKind::ComfortNoise,
        _ => PacketKind::Audio,
    };
    let clock = static_pt(r.payload_type).map_or(0, |(_, c)| c);
    if stats.on_packet(
        arrival_us,
        r.sequence_number,
        r.timestamp,
        r.payload_type,
        r.marker,
        clock,
        kind,
    ) {
        stats.add_bytes(payload.len());
    }
    if kind == PacketKind::Event
        && let Ok(ev) = EventPacket::new_checked(payload)
    {
        black_box((ev.digit(), ev.end(), ev.volume(), ev.duration()));
        black_box(dtmf.on_event(r.timestamp, &ev, 8000));
    }
    black_box((stats.packets(), stats.jitter_ms(), stats.highest_ext_seq()));
}

fn rtcp(b: &[u8]) {
    for p in Compound::new(b) {
        let Ok(p) = p else { break };
        black_box((p.version(), p.count(), p.packet_type(), p.ssrc()));
        let Ok(repr) = p.repr() else { continue };
        match repr {
            RtcpRepr::SenderReport { blocks, .. } | RtcpRepr::ReceiverReport { blocks, .. } => {
                for rb in blocks {
                    black_box((
                        rb.fraction_lost_ratio(),
                        rb.jitter_ms(8000),
                        rb.jitter_ms(0),
                    ));
                    black_box(rtt_ms(rb.lsr, rb.dlsr, 0x1234_5678));
                }
            }
            RtcpRepr::SourceDescription(s) => {
                black_box((s.items().count(), s.cname()));
            }
            RtcpRepr::ExtendedReport { blocks, .. } => {
                if let Some(m) = blocks.voip_metrics() {
                    black_box((
                        m.loss_ratio(),
                        m.discard_ratio(),
                        m.r(),
                        m.mos_lq(),
                        m.mos_cq(),
                    ));
                    black_box((m.round_trip_ms(), m.signal_dbm0(), m.noise_dbm0()));
                }
            }
            other => {
                black_box(other);
            }
        }
    }
}
