//! RTCP: what the far end says about a stream (SR/RR report blocks, XR VoIP metrics) and
//! the round trip timed from an SR and the RR that answers it, as seen from the mirror.

use super::stream::{Stream, StreamKey};
use crate::rtp::rtcp;
use crate::table::Table;
use crate::track::counters::Counters;
use core::net::SocketAddr;
use embassy_time::Instant;

/// The RTP stream `from` → `to` with `ssrc`, given RTCP addresses: RTP port = RTCP
/// port − 1, or the same port when RTCP is muxed (RFC 5761).
fn rtp_stream_of_rtcp(
    streams: &mut Table<StreamKey, Stream>,
    from: SocketAddr,
    to: SocketAddr,
    ssrc: u32,
) -> Option<&mut Stream> {
    let mut key = StreamKey {
        src: SocketAddr::new(from.ip(), from.port().wrapping_sub(1)),
        dst: SocketAddr::new(to.ip(), to.port().wrapping_sub(1)),
        ssrc,
    };
    if !streams.contains(&key) {
        key.src = from;
        key.dst = to;
    }
    streams.get_mut(&key)
}

/// Round trip as seen from the mirror: the SR passed at `sr_seen` (with NTP middle bits
/// `mid`), the peer held it `dlsr` (1/65536 s), its RR (quoting `lsr`) passes `now`. The
/// endpoints' NTP clocks are not ours, so LSR is only used to match the SR. With the
/// sensor next to one end this is that end's round-trip time.
pub(super) fn round_trip_ms(
    sr_seen: Option<(u32, Instant)>,
    lsr: u32,
    dlsr: u32,
    now: Instant,
) -> Option<f64> {
    let (mid, seen) = sr_seen?;
    if lsr == 0 || lsr != mid {
        return None;
    }
    let held_us = u64::from(dlsr) * 1_000_000 / 65_536;
    let elapsed = now.saturating_duration_since(seen).as_micros();
    (elapsed >= held_us).then(|| (elapsed - held_us) as f64 / 1000.0)
}

/// Handles one RTCP datagram `src` → `dst`: each report lands on the stream it is about.
pub(super) fn on_rtcp(
    streams: &mut Table<StreamKey, Stream>,
    now: Instant,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    counters: &mut Counters,
) {
    counters.rtp.rtcp_packets += 1;
    let mut any = false;
    for item in rtcp::Compound::new(payload) {
        let Ok(pkt) = item else {
            counters.rtp.rtcp_malformed += 1;
            return;
        };
        any = true;
        let blocks = match pkt.repr() {
            Ok(rtcp::RtcpRepr::SenderReport {
                ssrc, ntp, blocks, ..
            }) => {
                // Remember when the SR passed, under its sender's own stream.
                if let Some(st) = rtp_stream_of_rtcp(streams, src, dst, ssrc) {
                    st.sr_seen = Some(((ntp >> 16) as u32, now));
                }
                blocks
            }
            Ok(rtcp::RtcpRepr::ReceiverReport { blocks, .. }) => blocks,
            Ok(rtcp::RtcpRepr::ExtendedReport { blocks, .. }) => {
                // The XR sender receives the stream it reports on.
                if let Some(vm) = blocks.voip_metrics()
                    && let Some(st) = rtp_stream_of_rtcp(streams, dst, src, vm.ssrc)
                {
                    st.rtcp.xr = Some(vm);
                }
                continue;
            }
            Ok(_) => continue,
            Err(_) => {
                counters.rtp.rtcp_malformed += 1;
                continue;
            }
        };
        for block in blocks {
            // The reported stream flows towards the RTCP sender.
            if let Some(st) = rtp_stream_of_rtcp(streams, dst, src, block.ssrc) {
                let clock = if st.clock == 0 { 8000 } else { st.clock };
                st.rtcp.fraction_lost = Some(block.fraction_lost as f64 / 256.0);
                st.rtcp.cumulative_lost = Some(block.cumulative_lost);
                st.rtcp.jitter_ms = Some(block.jitter as f64 * 1000.0 / clock as f64);
                if let Some(rtt) = round_trip_ms(st.sr_seen, block.lsr, block.dlsr, now) {
                    st.rtcp.rtt_ms = Some(rtt);
                }
            }
        }
    }
    if !any {
        counters.rtp.rtcp_malformed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::track::event::Event;

    /// RTCP header: version 2, `count`, `pt`, length in words − 1.
    fn header(count: u8, pt: u8, len: usize) -> Vec<u8> {
        let words = (len / 4 - 1) as u16;
        let mut p = vec![0x80 | count, pt];
        p.extend_from_slice(&words.to_be_bytes());
        p
    }

    fn sr(ssrc: u32, ntp: u64) -> Vec<u8> {
        let mut p = header(0, 200, 28);
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&ntp.to_be_bytes());
        p.extend_from_slice(&[0; 12]); // RTP timestamp, packet and octet counts
        p
    }

    /// An RR from `ssrc` about `about`: fraction lost 64/256, 5 lost, jitter 80.
    fn rr(ssrc: u32, about: u32, lsr: u32, dlsr: u32) -> Vec<u8> {
        let mut p = header(1, 201, 32);
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&about.to_be_bytes());
        p.extend_from_slice(&[64, 0, 0, 5]);
        p.extend_from_slice(&100u32.to_be_bytes()); // highest sequence
        p.extend_from_slice(&80u32.to_be_bytes()); // jitter
        p.extend_from_slice(&lsr.to_be_bytes());
        p.extend_from_slice(&dlsr.to_be_bytes());
        p
    }

    fn rtcp_of(a: &str) -> SocketAddr {
        let a = at(a);
        SocketAddr::new(a.ip(), a.port() + 1)
    }

    /// `pkt` from `from`'s RTCP port (its RTP port + 1) to `to`'s, at `t` µs.
    fn send_rtcp(
        m: &mut super::super::Media,
        c: &mut Counters,
        out: &mut Vec<Event>,
        t: u64,
        from: &str,
        to: &str,
        pkt: &[u8],
    ) {
        m.on_udp(us(t), rtcp_of(from), rtcp_of(to), pkt, c, out);
    }

    #[test]
    fn a_receiver_report_lands_on_the_stream_it_is_about() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        caller_first_packet(&mut m, &mut c, &mut out);
        // The callee reports on the caller's stream, RTCP port to RTCP port.
        let report = rr(0xdef, 0xabc, 0, 0);
        send_rtcp(&mut m, &mut c, &mut out, 1_500_000, CALLEE, CALLER, &report);
        let key = caller_stream();
        let v = m.streams.get(&key).unwrap().rtcp;
        assert_eq!(v.fraction_lost, Some(0.25));
        assert_eq!(v.cumulative_lost, Some(5));
        assert_eq!(v.jitter_ms, Some(10.0), "80 units at 8 kHz");
        assert_eq!(v.rtt_ms, None, "no SR to time it against");
        assert_eq!((c.rtp.rtcp_packets, c.rtp.rtcp_malformed), (1, 0));
    }

    #[test]
    fn the_round_trip_is_the_time_between_sr_and_rr_less_the_peers_hold() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        caller_first_packet(&mut m, &mut c, &mut out);
        // SR from the caller (NTP middle bits 0x0002_8000); the callee's RR quoting it,
        // held 0.5 s there, passes 620 ms after it: 120 ms round trip.
        let ntp: u64 = 0x0000_0002_8000_0000;
        let report = sr(0xabc, ntp);
        send_rtcp(&mut m, &mut c, &mut out, 2_000_000, CALLER, CALLEE, &report);
        let report = rr(0xdef, 0xabc, 0x0002_8000, 32_768);
        send_rtcp(&mut m, &mut c, &mut out, 2_620_000, CALLEE, CALLER, &report);
        let key = caller_stream();
        assert_eq!(m.streams.get(&key).unwrap().rtcp.rtt_ms, Some(120.0));
    }

    #[test]
    fn a_round_trip_needs_the_quoted_sr_and_a_hold_shorter_than_the_wait() {
        let seen = Some((0x1234, us(1_000_000)));
        assert_eq!(
            round_trip_ms(seen, 0x1234, 65_536, us(2_250_000)),
            Some(250.0)
        );
        assert_eq!(
            round_trip_ms(seen, 0x9999, 0, us(2_000_000)),
            None,
            "another SR"
        );
        assert_eq!(
            round_trip_ms(seen, 0, 0, us(2_000_000)),
            None,
            "no SR quoted"
        );
        assert_eq!(round_trip_ms(seen, 0x1234, 3 * 65_536, us(2_000_000)), None);
        assert_eq!(round_trip_ms(None, 0x1234, 0, us(2_000_000)), None);
    }

    #[test]
    fn a_truncated_report_is_counted_malformed() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        let mut report = rr(1, 2, 0, 0);
        report.truncate(20);
        send_rtcp(&mut m, &mut c, &mut out, 1_000_000, CALLEE, CALLER, &report);
        assert_eq!((c.rtp.rtcp_packets, c.rtp.rtcp_malformed), (1, 1));
    }
}
