//! Streams: one record per `(src, dst, SSRC)`, its statistics and what each packet does
//! to them.

use super::endpoint::Endpoint;
use super::rtcp::RemoteView;
use super::{dtmf, interval};
use crate::rtp::codec;
use crate::rtp::heuristic::{Candidate, Verdict};
use crate::rtp::packet::RtpPacket;
use crate::rtp::stats::{DtmfTracker, PacketKind, StreamStats};
use crate::sip::sdp::MediaKind;
use crate::track::counters::Counters;
use crate::track::event::{CallId, Codec, EventSink, Party, fill};
use core::net::SocketAddr;
use embassy_time::Instant;

/// A heuristic stream is reported once this many packets in sequence were seen
/// (`rtp::heuristic::Candidate`); its statistics count from its first packet regardless.
const HEURISTIC_CONFIRM: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
}

pub(super) struct Stream {
    /// Serial of the call whose endpoint it flows on (signalled streams only).
    pub call: Option<u64>,
    pub call_id: Option<CallId>,
    /// Party that receives this stream (signalled streams only).
    pub toward: Option<Party>,
    pub heuristic: bool,
    pub pt: u8,
    pub codec: Codec,
    pub clock: u32,
    /// Telephone-event payload type of this stream's endpoint, if announced.
    pub event_pt: Option<u8>,
    pub stats: StreamStats,
    pub dtmf: DtmfTracker,
    /// Heuristic stream not yet confirmed: nothing is reported (its figures still count
    /// from the first packet, as Wireshark's do).
    pub candidate: Option<Candidate>,
    /// Its call ended (with this reason): the stream lives on until idle, so packets still
    /// in flight after the BYE stay in the same figures (one stream, as Wireshark shows it).
    pub closed: Option<&'static str>,
    pub last_seen: Instant,
    /// Second (Unix) of the interval being accumulated.
    pub second: u64,
    pub packets_in_second: u32,
    pub mos_min: Option<f64>,
    pub mos_sum: f64,
    pub mos_n: u32,
    pub rtcp: RemoteView,
    /// The last RTCP SR this stream's sender sent: (NTP middle 32 bits, when it passed the
    /// mirror), to time the peer's RR that answers it.
    pub sr_seen: Option<(u32, Instant)>,
    pub capture_loss: bool,
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
        };
        if let Some(ep) = ep {
            ep.last_used = now;
            stream.call = Some(ep.serial);
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

    /// Counts one packet of this stream (`key`), reporting the second before it first if
    /// it starts a new one.
    #[allow(clippy::too_many_arguments)]
    pub fn on_packet(
        &mut self,
        key: StreamKey,
        now: Instant,
        pkt: &RtpPacket,
        ep: Option<&Endpoint>,
        capture_loss: bool,
        delay_ms: f64,
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) {
        // A new second: report the one that ended before counting into this one. An
        // unconfirmed heuristic stream keeps accumulating (its first report covers it all).
        let sec = now.as_secs();
        if sec > self.second {
            if self.packets_in_second > 0 {
                interval::report_interval(key, self, out, delay_ms);
            }
            if self.packets_in_second == 0 {
                self.second = sec;
            }
        }
        self.capture_loss |= capture_loss;
        self.last_seen = now;
        let pt = pkt.payload_type();
        let (clock, kind) = classify(self, ep, pt, pkt.payload().len());
        let counted = self.stats.on_packet(
            now.as_micros(),
            pkt.sequence_number(),
            pkt.timestamp(),
            pt,
            pkt.marker(),
            clock,
            kind,
        );
        if counted {
            self.packets_in_second += 1;
            self.stats.add_bytes(pkt.payload().len());
        }
        // Packets of a heuristic stream are accounted once it is confirmed.
        let newly_counted = match self.candidate.as_mut() {
            None => 1,
            Some(c) => match c.observe(pkt) {
                Verdict::Pending => 0,
                Verdict::Confirmed => {
                    self.candidate = None;
                    self.stats.packets()
                }
            },
        };
        if kind == PacketKind::Event {
            dtmf::on_event_packet(now, key, self, pkt, counters, out);
        }
        counters.rtp.packets += newly_counted;
        if self.heuristic {
            counters.rtp.heuristic += newly_counted;
        } else {
            counters.rtp.signalled += newly_counted;
        }
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
fn classify(st: &Stream, ep: Option<&Endpoint>, pt: u8, payload_len: usize) -> (u32, PacketKind) {
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

/// Test helpers shared by the media files' unit tests: real SDP and RTP/RTCP bytes.
#[cfg(test)]
pub(super) mod testing {
    use super::super::{Media, MediaConfig};
    use crate::sip::sdp;
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

    /// Media with call 1 ("c1") set up: the caller receives at CALLER, the callee at CALLEE.
    pub fn media_with_call() -> Media {
        let mut m = Media::new(MediaConfig {
            endpoints: 16,
            streams: 16,
            ..MediaConfig::default()
        });
        let id = call_id("c1");
        m.register(1, &id, Party::Caller, &offer(CALLER), Instant::from_secs(0));
        m.register(1, &id, Party::Callee, &offer(CALLEE), Instant::from_secs(0));
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
}

#[cfg(test)]
mod tests {
    use super::super::Seen;
    use super::testing::*;
    use super::*;
    use crate::track::event::Event;

    #[test]
    fn a_packet_to_an_offered_endpoint_opens_a_signalled_stream_of_its_call() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        let pkt = rtp(0, 1, 160, 0xabc, &[0xff; 160]);
        let seen = m.on_udp(
            us(1_000_000),
            at(CALLER),
            at(CALLEE),
            &pkt,
            &mut c,
            &mut out,
        );
        assert_eq!(
            seen,
            Seen::CallMedia {
                serial: 1,
                call_id: &call_id("c1")
            }
        );
        let key = StreamKey {
            src: at(CALLER),
            dst: at(CALLEE),
            ssrc: 0xabc,
        };
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
        let mut eps = super::super::endpoint::Endpoints::new(4);
        eps.register(1, &call_id("c"), Party::Caller, &offer(CALLER), us(0));
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
