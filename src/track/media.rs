//! Media: the endpoints SDP announced, the RTP streams seen on them (or found by the
//! heuristic), their per-second interval reports and their summaries.
//!
//! Two fixed tables:
//! * **endpoints**, keyed by the `(ip, port)` a party asked to receive media on (from SDP
//!   offer/answer, updated by re-INVITE/UPDATE), plus its RTCP port (`a=rtcp`, port+1, or
//!   the RTP port itself with `a=rtcp-mux`). A UDP packet finds its call with one lookup of
//!   its destination (then its source, for symmetric RTP). Full: the endpoint used least
//!   recently is evicted (counted).
//! * **streams**, keyed by `(src, dst, SSRC)`: a new SSRC on the same addresses is a new
//!   stream. Full: the stream idle longest is evicted (its `stream_end` says `evicted`).
//!
//! Intervals are whole seconds of packet time; a stream reports a second in which it
//! carried packets. Signalled silence (hold, sendonly, inactive, comfort noise) produces
//! no packets and so no loss.
//!
//! Unsignalled RTP (`rtp::heuristic`): a plausible datagram opens a candidate stream whose
//! statistics count from that first packet; it is reported only once a run of in-sequence
//! packets confirms it, so noise never produces events and confirmed streams lose nothing.
//! A stream outlives its call's end until idle (`closed_call_idle`) so packets in flight
//! after the BYE stay in one stream. Nothing here allocates per packet.

use crate::rtp::codec;
use crate::rtp::emodel;
use crate::rtp::heuristic::{self, Candidate, Verdict};
use crate::rtp::packet::{RtpPacket, TelephoneEvent, is_rtcp_pt};
use crate::rtp::rtcp;
use crate::rtp::stats::{DtmfTracker, PacketKind, StreamStats};
use crate::sip::sdp::{self, MediaKind};
use crate::table::{Inserted, Table, TableStats};
use crate::track::counters::Counters;
use crate::track::event::{
    CallId, Codec, DirectionQuality, DtmfEvent, Event, EventSink, MediaHealth, MediaProblem, Party,
    RtpInterval, StreamEnd, Text, Ts, fill,
};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};

pub const MEDIA_ENDPOINTS_DEFAULT: usize = 16384;
pub const STREAMS_DEFAULT: usize = 8192;
/// Payload types remembered per endpoint (from `m=` and `a=rtpmap`).
const PT_MAX: usize = 12;
/// A heuristic stream is reported once this many packets in sequence were seen
/// (`rtp::heuristic::Candidate`); its statistics count from its first packet regardless.
const HEURISTIC_CONFIRM: u8 = 3;

/// Handle of a call in the call table (slot + serial, so a reused slot is not mistaken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRef {
    pub slot: u32,
    pub serial: u64,
}

#[derive(Debug, Clone)]
struct PtInfo {
    pt: u8,
    codec: Codec,
    clock: u32,
    /// RFC 4733 telephone-event.
    event: bool,
}

#[derive(Debug, Clone)]
struct Endpoint {
    call: CallRef,
    call_id: CallId,
    /// The party that receives media here.
    owner: Party,
    rtcp: bool,
    kind: MediaKind,
    pts: heapless::Vec<PtInfo, PT_MAX>,
    last_used: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
}

struct Stream {
    call: Option<CallRef>,
    call_id: Option<CallId>,
    /// Party that receives this stream (signalled streams only).
    toward: Option<Party>,
    heuristic: bool,
    pt: u8,
    codec: Codec,
    clock: u32,
    /// Telephone-event payload type of this stream's endpoint, if announced.
    event_pt: Option<u8>,
    stats: StreamStats,
    dtmf: DtmfTracker,
    /// Heuristic stream not yet confirmed: nothing is reported (its figures still count
    /// from the first packet, as Wireshark's do).
    candidate: Option<Candidate>,
    /// Its call ended (with this reason): the stream lives on until idle, so packets still
    /// in flight after the BYE stay in the same figures (one stream, as Wireshark shows it).
    closed: Option<&'static str>,
    last_seen: Instant,
    /// Second (Unix) of the interval being accumulated.
    second: u64,
    packets_in_second: u32,
    mos_min: Option<f64>,
    mos_sum: f64,
    mos_n: u32,
    rtcp: RemoteView,
    /// The last RTCP SR this stream's sender sent: (NTP middle 32 bits, when it passed the
    /// mirror), to time the peer's RR that answers it.
    sr_seen: Option<(u32, Instant)>,
    capture_loss: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct RemoteView {
    fraction_lost: Option<f64>,
    cumulative_lost: Option<i32>,
    jitter_ms: Option<f64>,
    rtt_ms: Option<f64>,
    /// Last RTCP XR VoIP Metrics block about this stream.
    xr: Option<rtcp::VoipMetrics>,
}

/// Tuning of the media layer.
#[derive(Debug, Clone, Copy)]
pub struct MediaConfig {
    pub endpoints: usize,
    pub streams: usize,
    /// Find RTP without SDP (sensor started mid-call, RTP-only mirrors).
    pub heuristic: bool,
    /// A stream with no packets for this long ends (`timeout`).
    pub stream_timeout: Duration,
    /// One-way delay assumed by the E-model (ms), see `rtp::emodel`.
    pub assumed_delay_ms: f64,
    /// A stream whose call has ended ends after this long without packets.
    pub closed_call_idle: Duration,
    /// Media-health events: a direction silent this long (packet time) is reported.
    pub health_silence: Duration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            endpoints: MEDIA_ENDPOINTS_DEFAULT,
            streams: STREAMS_DEFAULT,
            heuristic: true,
            stream_timeout: Duration::from_secs(30),
            assumed_delay_ms: emodel::DEFAULT_DELAY_MS,
            closed_call_idle: Duration::from_secs(2),
            health_silence: Duration::from_secs(5),
        }
    }
}

pub struct Media {
    cfg: MediaConfig,
    endpoints: Table<SocketAddr, Endpoint>,
    streams: Table<StreamKey, Stream>,
    capture_loss: bool,
}

/// What a UDP packet turned out to be, for the caller's activity bookkeeping.
pub enum Seen {
    /// Media of a call (slot/serial) — refreshes the call's media clock.
    CallMedia(CallRef),
    Media,
    NotMedia,
}

impl Media {
    pub fn new(cfg: MediaConfig) -> Media {
        Media {
            cfg,
            endpoints: Table::new("media_endpoints", cfg.endpoints),
            streams: Table::new("streams", cfg.streams),
            capture_loss: false,
        }
    }

    /// Heap bytes `new(cfg)` allocates (endpoint and stream tables).
    pub fn memory_bytes(cfg: &MediaConfig) -> usize {
        Table::<SocketAddr, Endpoint>::memory_bytes(cfg.endpoints)
            + Table::<StreamKey, Stream>::memory_bytes(cfg.streams)
    }

    pub fn endpoint_stats(&self) -> TableStats {
        self.endpoints.stats()
    }
    pub fn stream_stats(&self) -> TableStats {
        self.streams.stats()
    }

    /// The capture edge says the kernel is (or is no longer) dropping packets: intervals
    /// carry `capture_loss` so that loss is not blamed on the network.
    pub fn set_capture_loss(&mut self, dropping: bool) {
        self.capture_loss = dropping;
    }

    /// Registers the endpoints of an SDP body sent by `sender` (who receives there).
    pub fn register(
        &mut self,
        call: CallRef,
        call_id: &CallId,
        sender: Party,
        s: &sdp::Sdp,
        now: Instant,
    ) {
        for m in s.media.iter() {
            let Some(addr) = m.addr else { continue };
            if m.port == 0 || addr.is_unspecified() {
                continue; // rejected stream, or RFC 2543 hold
            }
            let mut pts = heapless::Vec::new();
            for &pt in m.payload_types.iter() {
                let stat = codec::static_pt(pt);
                let (codec, clock) = match m.rtpmap_for(pt) {
                    // A static type keeps its RFC 3551 spelling ("pcma" → "PCMA").
                    Some(map) => match stat {
                        Some((n, _)) if n.eq_ignore_ascii_case(map.encoding.as_str()) => {
                            (n, map.clock_rate)
                        }
                        _ => (map.encoding.as_str(), map.clock_rate),
                    },
                    None => stat.unwrap_or(("unknown", 0)),
                };
                let mut c = Codec::new();
                fill(&mut c, codec);
                if pts
                    .push(PtInfo {
                        pt,
                        event: codec::is_telephone_event(&c),
                        codec: c,
                        clock,
                    })
                    .is_err()
                {
                    break;
                }
            }
            let ep = Endpoint {
                call,
                call_id: call_id.clone(),
                owner: sender,
                rtcp: false,
                kind: m.kind,
                pts,
                last_used: now,
            };
            let rtp_at = SocketAddr::new(addr, m.port);
            if !m.rtcp_mux {
                let rtcp_addr = m.rtcp_addr.unwrap_or(addr);
                let rtcp_port = m.rtcp_port.unwrap_or(m.port.wrapping_add(1));
                let mut r = ep.clone();
                r.rtcp = true;
                r.pts.clear();
                self.insert_endpoint(SocketAddr::new(rtcp_addr, rtcp_port), r);
            }
            self.insert_endpoint(rtp_at, ep);
        }
    }

    fn insert_endpoint(&mut self, at: SocketAddr, ep: Endpoint) {
        // Least recently used goes first when full.
        let _ = self
            .endpoints
            .insert_or_evict(at, ep, |_, e| Some(e.last_used));
    }

    /// Handles a UDP payload that is not SIP. Returns what it was.
    #[allow(clippy::too_many_arguments)]
    pub fn on_udp(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Seen {
        let ep_dst = self.endpoints.slot_of(&dst);
        let ep_src = if ep_dst.is_none() {
            self.endpoints.slot_of(&src)
        } else {
            None
        };
        let (ep_slot, toward_owner) = match (ep_dst, ep_src) {
            (Some(s), _) => (Some(s), true),
            (None, Some(s)) => (Some(s), false),
            _ => (None, false),
        };
        // RTCP: on an RTCP endpoint, or muxed (PT 200–207 in the second byte).
        let b1 = payload.get(1).copied().unwrap_or(0);
        let ep_is_rtcp = ep_slot
            .and_then(|s| self.endpoints.by_slot(s))
            .map(|(_, e)| e.rtcp)
            .unwrap_or(false);
        if ep_is_rtcp || (payload.len() >= 8 && payload[0] >> 6 == 2 && is_rtcp_pt(b1)) {
            if ep_slot.is_none() && !self.cfg.heuristic {
                counters.rtp.other_udp += 1;
                return Seen::NotMedia;
            }
            self.on_rtcp(now, src, dst, payload, counters);
            return match ep_slot.and_then(|s| self.endpoints.by_slot(s)) {
                Some((_, e)) => Seen::CallMedia(e.call),
                None => Seen::Media,
            };
        }
        let Ok(pkt) = RtpPacket::new_checked(payload) else {
            if ep_slot.is_some() {
                counters.rtp.malformed += 1;
            } else {
                counters.rtp.other_udp += 1;
            }
            return Seen::NotMedia;
        };
        let key = StreamKey {
            src,
            dst,
            ssrc: pkt.ssrc(),
        };
        let slot = match self.streams.slot_of(&key) {
            Some(s) => s,
            None => {
                if ep_slot.is_none()
                    && !(self.cfg.heuristic
                        && heuristic::looks_like_rtp(payload, src.port(), dst.port()))
                {
                    counters.rtp.other_udp += 1;
                    return Seen::NotMedia;
                }
                let Some(s) = self.new_stream(now, key, ep_slot, toward_owner, &pkt, counters, out)
                else {
                    return Seen::NotMedia;
                };
                s
            }
        };
        let capture_loss = self.capture_loss;
        let delay_ms = self.cfg.assumed_delay_ms;
        let ep = ep_slot
            .and_then(|s| self.endpoints.by_slot(s))
            .map(|(_, e)| e);
        let Some((_, st)) = self.streams.by_slot_mut(slot) else {
            return Seen::NotMedia;
        };
        // A new second: report the one that ended before counting into this one. An
        // unconfirmed heuristic stream keeps accumulating (its first report covers it all).
        let sec = now.as_secs();
        if sec > st.second {
            if st.packets_in_second > 0 {
                report_interval(key, st, out, delay_ms);
            }
            if st.packets_in_second == 0 {
                st.second = sec;
            }
        }
        st.capture_loss |= capture_loss;
        st.last_seen = now;
        let pt = pkt.payload_type();
        let (clock, kind) = classify(st, ep, pt, pkt.payload().len());
        let counted = st.stats.on_packet(
            now.as_micros(),
            pkt.sequence_number(),
            pkt.timestamp(),
            pt,
            pkt.marker(),
            clock,
            kind,
        );
        if counted {
            st.packets_in_second += 1;
            st.stats.add_bytes(pkt.payload().len());
        }
        // Packets of a heuristic stream are accounted once it is confirmed.
        let newly_counted = match st.candidate.as_mut() {
            None => 1,
            Some(c) => match c.observe(&pkt) {
                Verdict::Pending => 0,
                Verdict::Confirmed => {
                    st.candidate = None;
                    st.stats.packets()
                }
            },
        };
        // RFC 4733 clock is 8 kHz in practice (and in Wireshark); digits of a stream not
        // yet confirmed are not reported.
        if kind == PacketKind::Event
            && let Ok(ev) = TelephoneEvent::new_checked(pkt.payload())
            && let Some(d) = st.dtmf.on_event(pkt.timestamp(), &ev, 8000)
            && st.candidate.is_none()
        {
            counters.rtp.dtmf_events += 1;
            out.emit(&Event::Dtmf(dtmf_event(now, key, st, &d)));
        }
        counters.rtp.packets += newly_counted;
        if st.heuristic {
            counters.rtp.heuristic += newly_counted;
        } else {
            counters.rtp.signalled += newly_counted;
        }
        match st.call {
            Some(c) => Seen::CallMedia(c),
            None => Seen::Media,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_stream(
        &mut self,
        now: Instant,
        key: StreamKey,
        ep_slot: Option<u32>,
        toward_owner: bool,
        pkt: &RtpPacket,
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Option<u32> {
        let pt = pkt.payload_type();
        let mut stream = Stream {
            call: None,
            call_id: None,
            toward: None,
            heuristic: ep_slot.is_none(),
            pt,
            codec: Codec::new(),
            clock: 0,
            event_pt: None,
            stats: StreamStats::new(),
            dtmf: DtmfTracker::new(),
            candidate: ep_slot
                .is_none()
                .then(|| Candidate::new(pkt, HEURISTIC_CONFIRM)),
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
        if let Some((_, ep)) = ep_slot.and_then(|s| self.endpoints.by_slot_mut(s)) {
            ep.last_used = now;
            stream.call = Some(ep.call);
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
        counters.rtp.streams_started += 1;
        let cfg = self.cfg;
        match self
            .streams
            .insert_or_evict(key, stream, |_, s| Some(s.last_seen))
        {
            Inserted::Stored => {}
            Inserted::Evicted(k, mut s) => {
                end_stream(
                    k,
                    &mut s,
                    now,
                    "evicted",
                    out,
                    cfg.assumed_delay_ms,
                    counters,
                );
                counters.rtp.streams_ended += 1;
            }
            Inserted::Rejected(..) => return None,
        }
        self.streams.slot_of(&key)
    }

    /// The RTP stream `from` → `to` with `ssrc`, given RTCP addresses: RTP port = RTCP
    /// port − 1, or the same port when RTCP is muxed (RFC 5761).
    fn rtp_stream_of_rtcp(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        ssrc: u32,
    ) -> Option<&mut Stream> {
        let mut key = StreamKey {
            src: SocketAddr::new(from.ip(), from.port().wrapping_sub(1)),
            dst: SocketAddr::new(to.ip(), to.port().wrapping_sub(1)),
            ssrc,
        };
        if !self.streams.contains(&key) {
            key.src = from;
            key.dst = to;
        }
        self.streams.get_mut(&key)
    }

    fn on_rtcp(
        &mut self,
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
                    if let Some(st) = self.rtp_stream_of_rtcp(src, dst, ssrc) {
                        st.sr_seen = Some(((ntp >> 16) as u32, now));
                    }
                    blocks
                }
                Ok(rtcp::RtcpRepr::ReceiverReport { blocks, .. }) => blocks,
                Ok(rtcp::RtcpRepr::ExtendedReport { blocks, .. }) => {
                    // The XR sender receives the stream it reports on.
                    if let Some(vm) = blocks.voip_metrics()
                        && let Some(st) = self.rtp_stream_of_rtcp(dst, src, vm.ssrc)
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
                if let Some(st) = self.rtp_stream_of_rtcp(dst, src, block.ssrc) {
                    let clock = if st.clock == 0 { 8000 } else { st.clock };
                    st.rtcp.fraction_lost = Some(block.fraction_lost as f64 / 256.0);
                    st.rtcp.cumulative_lost = Some(block.cumulative_lost);
                    st.rtcp.jitter_ms = Some(block.jitter as f64 * 1000.0 / clock as f64);
                    // Round trip as seen from the mirror: the SR passed at `seen`, the
                    // peer held it DLSR, its RR passes now. The endpoints' NTP clocks
                    // are not ours, so LSR is only used to match the SR. With the
                    // sensor next to one end this is that end's round-trip time.
                    if let Some((mid, seen)) = st.sr_seen
                        && block.lsr != 0
                        && block.lsr == mid
                    {
                        let held_us = u64::from(block.dlsr) * 1_000_000 / 65_536;
                        let elapsed = now.saturating_duration_since(seen).as_micros();
                        if elapsed >= held_us {
                            st.rtcp.rtt_ms = Some((elapsed - held_us) as f64 / 1000.0);
                        }
                    }
                }
            }
        }
        if !any {
            counters.rtp.rtcp_malformed += 1;
        }
    }

    /// Once per second of packet time: reports finished seconds, ends idle streams.
    pub fn tick(&mut self, now: Instant, counters: &mut Counters, out: &mut impl EventSink) {
        let sec = now.as_secs();
        let delay = self.cfg.assumed_delay_ms;
        let timeout = self.cfg.stream_timeout;
        let closed_idle = self.cfg.closed_call_idle;
        let mut slot = 0;
        while let Some(s) = self.streams.next_slot(slot) {
            slot = s + 1;
            let Some((k, st)) = self.streams.by_slot_mut(s) else {
                continue;
            };
            let key = *k;
            if sec > st.second && st.packets_in_second > 0 {
                report_interval(key, st, out, delay);
                if st.packets_in_second == 0 {
                    st.second = sec;
                }
            }
            let idle = now.saturating_duration_since(st.last_seen);
            let reason = match st.closed {
                Some(r) if idle > closed_idle => r,
                _ if idle > timeout => "timeout",
                _ => continue,
            };
            if let Some((k, mut st)) = self.streams.remove_slot(s) {
                end_stream(k, &mut st, now, reason, out, delay, counters);
                counters.rtp.streams_ended += 1;
            }
        }
    }

    /// The call's final event is being built: returns its per-direction quality
    /// (caller → callee, callee → caller) as of now. Its streams are marked ended with
    /// `reason` and end (with `stream_end`) once idle for `closed_call_idle`, so packets
    /// still in flight after the BYE are not split into a second stream.
    pub fn remove_call(
        &mut self,
        serial: u64,
        _now: Instant,
        reason: &str,
        _out: &mut impl EventSink,
        _counters: &mut Counters,
    ) -> (Option<DirectionQuality>, Option<DirectionQuality>) {
        let reason = static_reason(reason);
        let delay = self.cfg.assumed_delay_ms;
        let mut to_callee: Option<DirectionQuality> = None;
        let mut to_caller: Option<DirectionQuality> = None;
        let mut slot = 0;
        while let Some(s) = self.streams.next_slot(slot) {
            slot = s + 1;
            let Some((k, st)) = self.streams.by_slot_mut(s) else {
                continue;
            };
            if st.call.is_none_or(|c| c.serial != serial) {
                continue;
            }
            st.closed = Some(reason);
            if st.candidate.is_some() {
                continue;
            }
            let t = st.stats.totals();
            let (mos_min, mos_mean) = mos_summary(st, delay);
            let q = DirectionQuality {
                src: Some(k.src),
                dst: Some(k.dst),
                codec: st.codec.clone(),
                packets: t.packets,
                lost: t.lost,
                jitter_max_ms: round3(t.jitter_max_ms),
                mos_min,
                mos_mean,
            };
            let slot_for = match st.toward {
                Some(Party::Callee) => &mut to_callee,
                Some(Party::Caller) => &mut to_caller,
                None => continue,
            };
            // Several streams one way (SSRC change): keep the one that carried most.
            if slot_for.as_ref().is_none_or(|old| old.packets < q.packets) {
                *slot_for = Some(q);
            }
        }
        (to_callee, to_caller)
    }

    /// Drops a closed call's endpoints (after its linger time).
    pub fn forget_call(&mut self, serial: u64) {
        let mut slot = 0;
        while let Some(s) = self.endpoints.next_slot(slot) {
            slot = s + 1;
            if self
                .endpoints
                .by_slot(s)
                .is_some_and(|(_, e)| e.call.serial == serial)
            {
                self.endpoints.remove_slot(s);
            }
        }
    }

    /// Ends every stream (end of capture / sensor stop). A stream whose call already
    /// ended keeps that call's reason.
    pub fn stop_all(
        &mut self,
        now: Instant,
        reason: &str,
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) {
        let delay = self.cfg.assumed_delay_ms;
        let mut slot = 0;
        while let Some(s) = self.streams.next_slot(slot) {
            slot = s + 1;
            if let Some((k, mut st)) = self.streams.remove_slot(s) {
                let r = st.closed.unwrap_or(reason);
                end_stream(k, &mut st, now, r, out, delay, counters);
                counters.rtp.streams_ended += 1;
            }
        }
    }

    /// Feeds `f` the last packet time of every stream linked to a call, with the party it
    /// flows toward and its addresses: the calls' media-health watch is updated from this
    /// once a second (one pass over the stream table, not one per call).
    pub fn each_call_stream(&self, mut f: impl FnMut(CallRef, Party, Instant, &StreamKey)) {
        let mut slot = 0;
        while let Some(s) = self.streams.next_slot(slot) {
            slot = s + 1;
            if let Some((k, st)) = self.streams.by_slot(s)
                && let (Some(c), Some(p), None, None) =
                    (st.call, st.toward, st.closed, st.candidate)
            {
                f(c, p, st.last_seen, k);
            }
        }
    }

    /// Checks an answered, open call's media (see [`MediaWatch`]); emits each problem at
    /// most once per call.
    pub fn check_health(
        &self,
        now: Instant,
        call_id: &CallId,
        w: &mut MediaWatch,
        since: Instant,
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) {
        if let Some(h) = w.check(now, since, self.cfg.health_silence, call_id) {
            counters.rtp.health_events += 1;
            out.emit(&Event::MediaHealth(h));
        }
    }
}

/// Per-call media-health state, kept in the call record and fed once a second from the
/// stream table ([`Media::each_call_stream`]). All decisions use packet time:
/// - `no_media_after_answer`: answered, not on hold, and no packet in either direction for
///   `health_silence` since the answer;
/// - `one_way_media`: one direction flows (a packet within half of `health_silence`)
///   while the other has been silent longer than `health_silence`;
/// - `media_stopped`: media flowed after the answer, and now both directions have been
///   silent longer than `health_silence`.
///
/// Silence is counted from `since` at the earliest (the answer or the call's latest
/// signalling, e.g. a resume re-INVITE), so a hold/resume or a re-negotiation restarts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaWatch {
    /// Last packet toward the caller (index 0) and toward the callee (1), with its stream.
    last: [Option<(Instant, StreamKey)>; 2],
    /// Problems already reported (bit per `MediaProblem`).
    reported: u8,
}

impl MediaWatch {
    pub fn saw(&mut self, toward: Party, at: Instant, key: &StreamKey) {
        let i = match toward {
            Party::Caller => 0,
            Party::Callee => 1,
        };
        if self.last[i].is_none_or(|(t, _)| at >= t) {
            self.last[i] = Some((at, *key));
        }
    }

    fn check(
        &mut self,
        now: Instant,
        since: Instant,
        silence: Duration,
        call_id: &CallId,
    ) -> Option<MediaHealth> {
        let after = |i: usize| self.last[i].filter(|(t, _)| *t >= since);
        let quiet = |i: usize| {
            let from = after(i).map_or(since, |(t, _)| t);
            now.saturating_duration_since(from)
        };
        // "Flowing" means a packet within half the silence threshold, so two directions
        // that stop together are one `media_stopped`, never a passing `one_way_media`.
        let flowing = |i: usize| after(i).is_some() && quiet(i) <= silence / 2;
        let (problem, dir) = if after(0).is_none() && after(1).is_none() {
            (MediaProblem::NoMediaAfterAnswer, None)
        } else if flowing(0) && flowing(1) {
            return None;
        } else if flowing(0) || flowing(1) {
            (
                MediaProblem::OneWayMedia,
                Some(if flowing(0) { 1 } else { 0 }),
            )
        } else {
            (MediaProblem::MediaStopped, None)
        };
        let silent = match dir {
            Some(i) => quiet(i),
            None => quiet(0).min(quiet(1)),
        };
        let bit = 1u8 << (problem as u8);
        if silent <= silence || self.reported & bit != 0 {
            return None;
        }
        self.reported |= bit;
        // The silent direction's addresses: its own stream if it ever had one, else the
        // reverse of the flowing one (symmetric RTP, the common case).
        let (src, dst) = match dir {
            Some(i) => match (self.last[i], self.last[1 - i]) {
                (Some((_, k)), _) => (Some(k.src), Some(k.dst)),
                (None, Some((_, k))) => (Some(k.dst), Some(k.src)),
                (None, None) => (None, None),
            },
            None => (None, None),
        };
        Some(MediaHealth {
            ts: Ts::from_instant(now),
            problem,
            call_id: Some(call_id.clone()),
            src,
            dst,
            silent_ms: silent.as_millis(),
        })
    }
}

fn other(p: Party) -> Party {
    match p {
        Party::Caller => Party::Callee,
        Party::Callee => Party::Caller,
    }
}

/// The fixed set of stream end reasons (kept as `&'static str` in the stream record).
fn static_reason(r: &str) -> &'static str {
    match r {
        "timeout" => "timeout",
        "end_of_capture" => "end_of_capture",
        "sensor_stopped" => "sensor_stopped",
        "evicted" => "evicted",
        _ => "call_ended",
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

fn confirmed(st: &Stream) -> bool {
    st.candidate.is_none()
}

/// MOS-LQE of one interval. Codecs without G.113 Appendix I values (wideband G.722, Opus,
/// AMR-WB, video, events...) get no R/MOS (`null` in JSON) rather than a guess; the codec
/// is named in the same record so the gap is visible.
fn mos_for(st: &Stream, expected: u64, lost: i64, delay_ms: f64) -> (Option<f64>, Option<f64>) {
    let Some((ie, bpl)) = codec::impairment(&st.codec) else {
        return (None, None);
    };
    let loss_pct = if expected > 0 && lost > 0 {
        (lost as f64 * 100.0 / expected as f64).min(100.0)
    } else {
        0.0
    };
    let r = emodel::r_factor(&emodel::EModelInput {
        ie,
        bpl,
        ppl: loss_pct,
        burst_r: 1.0,
        delay_ms,
    });
    (Some(round3(r)), Some(round3(emodel::mos_from_r(r))))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// MOS summary so far, including the second still being accumulated (a call that ends
/// mid-second still gets its last second's score).
fn mos_summary(st: &Stream, delay_ms: f64) -> (Option<f64>, Option<f64>) {
    let (mut min, mut sum, mut n) = (st.mos_min, st.mos_sum, st.mos_n);
    if st.packets_in_second > 0 && st.event_pt != Some(st.pt) {
        let mut stats = st.stats;
        let f = stats.take_interval();
        if let (_, Some(m)) = mos_for(st, f.expected, f.lost, delay_ms) {
            min = Some(min.map_or(m, |x: f64| x.min(m)));
            sum += m;
            n += 1;
        }
    }
    (min, (n > 0).then(|| round3(sum / n as f64)))
}

/// Reports the interval being accumulated. Returns `false` (and keeps accumulating) while
/// a heuristic stream is unconfirmed.
fn report_interval(
    key: StreamKey,
    st: &mut Stream,
    out: &mut impl EventSink,
    delay_ms: f64,
) -> bool {
    if !confirmed(st) {
        return false;
    }
    let f = st.stats.take_interval();
    st.packets_in_second = 0;
    let capture_loss = core::mem::take(&mut st.capture_loss);
    let (r, mos) = if st.event_pt == Some(st.pt) {
        (None, None)
    } else {
        mos_for(st, f.expected, f.lost, delay_ms)
    };
    if let Some(m) = mos {
        st.mos_min = Some(st.mos_min.map_or(m, |x: f64| x.min(m)));
        st.mos_sum += m;
        st.mos_n += 1;
    }
    out.emit(&Event::RtpInterval(RtpInterval {
        ts: Ts(st.second * 1_000_000),
        call_id: st.call_id.clone(),
        ssrc: key.ssrc,
        src: Some(key.src),
        dst: Some(key.dst),
        pt: st.pt,
        codec: st.codec.clone(),
        packets: f.packets as u32,
        expected: f.expected as u32,
        lost: f.lost as i32,
        duplicates: f.duplicates as u32,
        out_of_order: f.out_of_order as u32,
        jitter_ms: round3(f.jitter_ms),
        jitter_max_ms: round3(f.jitter_max_ms),
        delta_max_ms: round3(f.delta_max_ms),
        r_factor: r,
        mos,
        capture_loss,
    }));
    true
}

fn dtmf_event(now: Instant, key: StreamKey, st: &Stream, d: &crate::rtp::stats::Dtmf) -> DtmfEvent {
    DtmfEvent {
        ts: Ts::from_instant(now),
        call_id: st.call_id.clone(),
        ssrc: key.ssrc,
        src: Some(key.src),
        dst: Some(key.dst),
        digit: d.digit,
        event_code: d.event,
        duration_ms: d.duration_ms,
        volume: d.volume,
    }
}

fn end_stream(
    key: StreamKey,
    st: &mut Stream,
    now: Instant,
    reason: &str,
    out: &mut impl EventSink,
    delay_ms: f64,
    counters: &mut Counters,
) -> StreamEnd {
    if st.packets_in_second > 0 {
        report_interval(key, st, out, delay_ms);
    }
    // An event whose end packets never came is still a digit the caller pressed.
    if let Some(d) = st.dtmf.flush(8000)
        && confirmed(st)
    {
        counters.rtp.dtmf_events += 1;
        out.emit(&Event::Dtmf(dtmf_event(st.last_seen, key, st, &d)));
    }
    let t = st.stats.totals();
    let mut r = Text::new();
    fill(&mut r, reason);
    let end = StreamEnd {
        ts: Ts::from_instant(now.max(st.last_seen)),
        call_id: st.call_id.clone(),
        ssrc: key.ssrc,
        src: Some(key.src),
        dst: Some(key.dst),
        pt: st.pt,
        codec: st.codec.clone(),
        packets: t.packets,
        expected: t.expected,
        lost: t.lost,
        duplicates: t.duplicates,
        out_of_order: t.out_of_order,
        jitter_max_ms: round3(t.jitter_max_ms),
        jitter_mean_ms: round3(t.jitter_mean_ms),
        delta_max_ms: round3(t.delta_max_ms),
        mos_min: st.mos_min,
        mos_mean: (st.mos_n > 0).then(|| round3(st.mos_sum / st.mos_n as f64)),
        rtcp_fraction_lost: st.rtcp.fraction_lost,
        rtcp_cumulative_lost: st.rtcp.cumulative_lost,
        rtcp_jitter_ms: st.rtcp.jitter_ms.map(round3),
        rtcp_rtt_ms: st.rtcp.rtt_ms.map(round3),
        rtcp_xr_loss_pct: st.rtcp.xr.map(|x| round3(x.loss_ratio() * 100.0)),
        rtcp_xr_discard_pct: st.rtcp.xr.map(|x| round3(x.discard_ratio() * 100.0)),
        rtcp_xr_r_factor: st.rtcp.xr.and_then(|x| x.r()),
        rtcp_xr_mos_lq: st.rtcp.xr.and_then(|x| x.mos_lq()),
        rtcp_xr_mos_cq: st.rtcp.xr.and_then(|x| x.mos_cq()),
        rtcp_xr_rtt_ms: st.rtcp.xr.and_then(|x| x.round_trip_ms()).map(f64::from),
        reason: r,
    };
    if confirmed(st) {
        out.emit(&Event::StreamEnd(end.clone()));
    }
    end
}
