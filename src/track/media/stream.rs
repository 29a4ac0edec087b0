//! Streams: one record per `(src, dst, SSRC)` with its statistics, how it starts, and
//! how each of its packets is classified.

use super::endpoint::Endpoint;
use super::links::{CallRef, Chain, Member};
use crate::rtp::codec;
use crate::rtp::heuristic::Candidate;
use crate::rtp::packet::RtpPacket;
use crate::rtp::rtcp;
use crate::rtp::stats::{DtmfTracker, PacketKind, StreamStats};
use crate::sip::sdp::MediaKind;
use crate::table::NIL;
use crate::track::event::{CallId, Codec, Party, fill};
use core::net::SocketAddr;
use embassy_time::Instant;

/// A heuristic stream is reported once this many packets in sequence were seen
/// (`rtp::heuristic::Candidate`); its statistics count from its first packet regardless.
const HEURISTIC_CONFIRM: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
}

/// By whole words: every RTP packet hashes its key, and the derived hash feeds
/// `SocketAddr` to the hasher field by field (about 5 % of replay's CPU). An IPv4 key is
/// one 128-bit write (two 64-bit ones cost 27 more instructions a packet). Equal keys hash
/// equal: only fields `Eq` compares are used (not all of a V6 address's, which is allowed).
impl core::hash::Hash for StreamKey {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        let port_ssrc = u64::from(self.src.port()) << 48
            | u64::from(self.dst.port()) << 32
            | u64::from(self.ssrc);
        match (self.src, self.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                let ips = u64::from(s.ip().to_bits()) << 32 | u64::from(d.ip().to_bits());
                h.write_u128(u128::from(ips) << 64 | u128::from(port_ssrc));
            }
            (s, d) => crate::wire::hash_v6_pair(h, s, d, port_ssrc),
        }
    }
}

/// The far end's view of one stream, from RTCP.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RemoteView {
    pub fraction_lost: Option<f64>,
    pub cumulative_lost: Option<i32>,
    pub jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// Last RTCP XR VoIP Metrics block about this stream.
    pub xr: Option<rtcp::VoipMetrics>,
}

/// `repr(C)`, the fields every packet reads first: they share the slot's second cache line
/// with the end of the key, instead of two lines at the far end of the ~950-byte slot
/// where the compiler's own order put them.
#[repr(C)]
pub(super) struct Stream {
    /// Second (Unix) of the interval being accumulated.
    pub second: u64,
    pub last_seen: Instant,
    /// Serial of the call whose endpoint it flows on (signalled streams only).
    pub call: Option<u64>,
    pub packets_in_second: u32,
    /// That call's slot in the call table (`NIL` once detached from its call's list).
    pub call_slot: u32,
    pub clock: u32,
    pub pt: u8,
    /// Telephone-event payload type of this stream's endpoint, if announced.
    pub event_pt: Option<u8>,
    pub heuristic: bool,
    pub capture_loss: bool,
    /// In the table's `ESTABLISHED` class (it never leaves it): read here, not from the
    /// table's links, a cache line less per packet.
    pub established: bool,
    pub codec: Codec,
    /// Heuristic stream not yet confirmed: nothing is reported (its figures still count
    /// from the first packet, as Wireshark's do).
    pub candidate: Option<Candidate>,
    pub stats: StreamStats,
    /// Its place on the call's list of streams.
    pub in_call: Chain,
    pub call_id: Option<CallId>,
    /// Party that receives this stream (signalled streams only).
    pub toward: Option<Party>,
    pub dtmf: DtmfTracker,
    /// Its call ended (with this reason): the stream lives on until idle, so packets still
    /// in flight after the BYE stay in the same figures (one stream, as Wireshark shows it).
    pub closed: Option<&'static str>,
    pub mos_min: Option<f64>,
    pub mos_sum: f64,
    pub mos_n: u32,
    pub rtcp: RemoteView,
    /// The last RTCP SR this stream's sender sent: (NTP middle 32 bits, when it passed the
    /// mirror), to time the peer's RR that answers it.
    pub sr_seen: Option<(u32, Instant)>,
}

impl Member for Stream {
    fn owner(&self) -> Option<CallRef> {
        let serial = self.call?;
        (self.call_slot != NIL).then_some(CallRef {
            serial,
            slot: self.call_slot,
        })
    }
    fn chain(&mut self) -> &mut Chain {
        &mut self.in_call
    }
}

impl Stream {
    /// The stream `pkt` opens, on endpoint `ep` if SDP announced one (`toward_owner`: the
    /// packet flows toward the endpoint's owner), else found by the heuristic. `None`: not
    /// RTP (T.38 over UDPTL on an image endpoint).
    pub fn new(
        now: Instant,
        pkt: &RtpPacket,
        ep: Option<&mut Endpoint>,
        toward_owner: bool,
    ) -> Option<Stream> {
        let pt = pkt.payload_type();
        let mut stream = Stream {
            call: None,
            call_slot: NIL,
            in_call: Chain::NONE,
            call_id: None,
            toward: None,
            heuristic: ep.is_none(),
            pt,
            codec: Codec::new(),
            clock: 0,
            event_pt: None,
            stats: StreamStats::new(),
            dtmf: DtmfTracker::new(),
            candidate: ep.is_none().then(|| Candidate::new(pkt, HEURISTIC_CONFIRM)),
            closed: None,
            last_seen: now,
            second: now.as_secs(),
            packets_in_second: 0,
            mos_min: None,
            mos_sum: 0.0,
            mos_n: 0,
            rtcp: RemoteView::default(),
            sr_seen: None,
            capture_loss: false,
            established: false,
        };
        if let Some(ep) = ep {
            ep.last_used = now;
            stream.call = Some(ep.serial);
            stream.call_slot = ep.call_slot;
            stream.call_id = Some(ep.call_id.clone());
            stream.toward = Some(if toward_owner {
                ep.owner
            } else {
                other(ep.owner)
            });
            if let Some(p) = ep.pts.iter().find(|p| p.pt == pt) {
                stream.codec = p.codec.clone();
                stream.clock = p.clock;
            }
            stream.event_pt = ep.pts.iter().find(|p| p.event).map(|p| p.pt);
            if ep.kind == MediaKind::Image {
                return None; // T.38 over UDPTL is not RTP
            }
        }
        if stream.clock == 0
            && let Some((name, clock)) = codec::static_pt(pt)
        {
            fill(&mut stream.codec, name);
            stream.clock = clock;
        }
        if stream.codec.is_empty() {
            fill(&mut stream.codec, "unknown");
        }
        if stream.heuristic
            && stream.event_pt.is_none()
            && (96..=127).contains(&pt)
            && pkt.payload().len() == 4
        {
            // Unsignalled RFC 4733 events look like this: 4-byte payloads, dynamic PT.
            stream.event_pt = Some(pt);
            fill(&mut stream.codec, "telephone-event");
            stream.clock = 8000;
        }
        Some(stream)
    }

    /// Heuristic stream confirmed (or signalled): its figures are reported.
    pub fn confirmed(&self) -> bool {
        self.candidate.is_none()
    }
}

fn other(p: Party) -> Party {
    match p {
        Party::Caller => Party::Callee,
        Party::Callee => Party::Caller,
    }
}

/// Clock rate and kind of one packet, by its own payload type (a stream may mix audio,
/// comfort noise and events): the stream's type, then the endpoint's SDP, then the static
/// table. An unknown type has clock 0 (no jitter), as in Wireshark; an unknown dynamic
/// type with a 4-byte payload is taken for an RFC 4733 event (or Cisco NSE, same format).
pub(super) fn classify(
    st: &Stream,
    ep: Option<&Endpoint>,
    pt: u8,
    payload_len: usize,
) -> (u32, PacketKind) {
    if Some(pt) == st.event_pt {
        return (0, PacketKind::Event);
    }
    if codec::is_comfort_noise_pt(pt) {
        return (8000, PacketKind::ComfortNoise);
    }
    if pt == st.pt {
        return (st.clock, PacketKind::Audio);
    }
    if let Some(p) = ep.and_then(|e| e.pts.iter().find(|p| p.pt == pt)) {
        return if p.event {
            (0, PacketKind::Event)
        } else {
            (p.clock, PacketKind::Audio)
        };
    }
    if let Some((_, clock)) = codec::static_pt(pt) {
        return (clock, PacketKind::Audio);
    }
    if (96..=127).contains(&pt) && payload_len == 4 {
        return (0, PacketKind::Event);
    }
    (0, PacketKind::Audio)
}

#[cfg(test)]
mod tests {
    use super::super::Seen;
    use super::super::testing::*;
    use super::*;
    use crate::track::counters::Counters;
    use crate::track::event::Event;

    #[test]
    fn a_packet_to_an_offered_endpoint_opens_a_signalled_stream_of_its_call() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        let seen = caller_first_packet(&mut m, &mut c, &mut out);
        assert_eq!(seen, Seen::CallMedia(call(1)));
        let key = caller_stream();
        let st = m.streams.get(&key).unwrap();
        assert_eq!(
            st.toward,
            Some(Party::Callee),
            "sent to the callee's endpoint"
        );
        assert_eq!((st.codec.as_str(), st.clock), ("PCMU", 8000));
        assert_eq!(st.event_pt, Some(101));
        assert!(st.confirmed());
        assert_eq!(
            (c.rtp.packets, c.rtp.signalled, c.rtp.streams_started),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_new_ssrc_on_the_same_addresses_is_a_new_stream() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        for ssrc in [1, 2] {
            let pkt = rtp(0, 1, 160, ssrc, &[0xff; 160]);
            m.on_udp(
                us(1_000_000),
                at(CALLER),
                at(CALLEE),
                &pkt,
                &mut c,
                &mut out,
            );
        }
        assert_eq!(m.stream_stats().len, 2);
    }

    #[test]
    fn unsignalled_rtp_counts_only_once_confirmed_by_a_run_in_sequence() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        let (src, dst) = (at("10.9.0.1:16000"), at("10.9.0.2:16002"));
        let mut counted = Vec::new();
        for i in 0..4u16 {
            let pkt = rtp(8, 100 + i, 160 * u32::from(i), 0x77, &[0xd5; 160]);
            let seen = m.on_udp(
                us(1_000_000 + 20_000 * u64::from(i)),
                src,
                dst,
                &pkt,
                &mut c,
                &mut out,
            );
            assert_eq!(seen, Seen::Media);
            counted.push(c.rtp.heuristic);
        }
        assert_eq!(
            counted,
            [0, 0, 3, 4],
            "nothing until confirmed, then all of it"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn packets_are_classified_by_their_own_payload_type() {
        let mut eps = super::super::endpoint::Endpoints::new(4, 4);
        eps.register(call(1), &call_id("c"), Party::Caller, &offer(CALLER), us(0));
        let (slot, _) = eps.find(at(CALLEE), at(CALLER)).unwrap();
        let pkt = rtp(0, 1, 0, 1, &[0; 160]);
        let buf = pkt.clone();
        let p = RtpPacket::new_checked(&buf[..]).unwrap();
        let st = Stream::new(us(0), &p, eps.get_mut(slot), true).unwrap();
        let ep = eps.get(slot);
        assert_eq!(classify(&st, ep, 0, 160), (8000, PacketKind::Audio));
        assert_eq!(classify(&st, ep, 101, 4), (0, PacketKind::Event));
        assert_eq!(classify(&st, ep, 13, 1), (8000, PacketKind::ComfortNoise));
        assert_eq!(
            classify(&st, ep, 8, 160),
            (8000, PacketKind::Audio),
            "static table"
        );
        assert_eq!(
            classify(&st, None, 99, 4),
            (0, PacketKind::Event),
            "4-byte dynamic"
        );
        assert_eq!(
            classify(&st, None, 99, 20),
            (0, PacketKind::Audio),
            "unknown: no clock"
        );
    }
}
