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

use crate::rtp::codec;
use crate::rtp::emodel;
use crate::rtp::packet::{RtpPacket, TelephoneEvent, is_rtcp_pt};
use crate::rtp::rtcp;
use crate::rtp::stats::{DtmfTracker, PacketKind, StreamStats};
use crate::sip::sdp::{self, MediaKind};
use crate::table::{Inserted, Table, TableStats};
use crate::track::counters::Counters;
use crate::track::event::{
    CallId, Codec, DirectionQuality, DtmfEvent, Event, EventSink, Party, RtpInterval, StreamEnd,
    Text, Ts, fill,
};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};

pub const MEDIA_ENDPOINTS_DEFAULT: usize = 16384;
pub const STREAMS_DEFAULT: usize = 8192;
/// Payload types remembered per endpoint (from `m=` and `a=rtpmap`).
const PT_MAX: usize = 12;
/// A heuristic stream is reported once this many packets in sequence were seen.
const HEURISTIC_CONFIRM: u64 = 3;

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
    last_seen: Instant,
    /// Second (Unix) of the interval being accumulated.
    second: u64,
    packets_in_second: u32,
    mos_min: Option<f64>,
    mos_sum: f64,
    mos_n: u32,
    rtcp: RemoteView,
    capture_loss: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct RemoteView {
    fraction_lost: Option<f64>,
    cumulative_lost: Option<i32>,
    jitter_ms: Option<f64>,
    rtt_ms: Option<f64>,
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
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            endpoints: MEDIA_ENDPOINTS_DEFAULT,
            streams: STREAMS_DEFAULT,
            heuristic: true,
            stream_timeout: Duration::from_secs(30),
            assumed_delay_ms: emodel::DEFAULT_DELAY_MS,
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
                let (codec, clock) = match m.rtpmap_for(pt) {
                    Some(map) => (map.encoding.as_str(), map.clock_rate),
                    None => codec::static_pt(pt).unwrap_or(("unknown", 0)),
                };
                let mut c = Codec::new();
                fill(&mut c, codec);
                if pts
                    .push(PtInfo {
                        pt,
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
        if ep_slot.is_none() && !(self.cfg.heuristic && plausible_rtp(payload)) {
            counters.rtp.other_udp += 1;
            return Seen::NotMedia;
        }
        let key = StreamKey {
            src,
            dst,
            ssrc: pkt.ssrc(),
        };
        let slot = match self.streams.slot_of(&key) {
            Some(s) => s,
            None => {
                let Some(s) = self.new_stream(now, key, ep_slot, toward_owner, &pkt, counters, out)
                else {
                    return Seen::NotMedia;
                };
                s
            }
        };
        let capture_loss = self.capture_loss;
        let Some((_, st)) = self.streams.by_slot_mut(slot) else {
            return Seen::NotMedia;
        };
        // A new second: report the one that ended before counting into this one.
        let sec = now.as_secs();
        if sec > st.second {
            if st.packets_in_second > 0 {
                report_interval(key, st, out, self.cfg.assumed_delay_ms);
            }
            st.second = sec;
        }
        st.capture_loss |= capture_loss;
        st.last_seen = now;
        let pt = pkt.payload_type();
        let kind = if Some(pt) == st.event_pt {
            PacketKind::Event
        } else if codec::is_comfort_noise_pt(pt) {
            PacketKind::ComfortNoise
        } else {
            PacketKind::Audio
        };
        let counted = st.stats.on_packet(
            now.as_micros(),
            pkt.sequence_number(),
            pkt.timestamp(),
            pt,
            pkt.marker(),
            st.clock,
            kind,
        );
        if counted {
            st.packets_in_second += 1;
            st.stats.add_bytes(pkt.payload().len());
        }
        if kind == PacketKind::Event
            && let Ok(ev) = TelephoneEvent::new_checked(pkt.payload())
            && let Some(d) = st.dtmf.on_event(pkt.timestamp(), &ev, 8000.max(st.clock))
        {
            counters.rtp.dtmf_events += 1;
            out.emit(&Event::Dtmf(DtmfEvent {
                ts: Ts::from_instant(now),
                call_id: st.call_id.clone(),
                ssrc: key.ssrc,
                src: Some(src),
                dst: Some(dst),
                digit: d.digit,
                event_code: d.event,
                duration_ms: d.duration_ms,
                volume: d.volume,
            }));
        }
        counters.rtp.packets += 1;
        if st.heuristic {
            counters.rtp.heuristic += 1;
        } else {
            counters.rtp.signalled += 1;
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
            last_seen: now,
            second: now.as_secs(),
            packets_in_second: 0,
            mos_min: None,
            mos_sum: 0.0,
            mos_n: 0,
            rtcp: RemoteView::default(),
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
            stream.event_pt = ep
                .pts
                .iter()
                .find(|p| codec::is_telephone_event(&p.codec))
                .map(|p| p.pt);
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
                end_stream(k, &mut s, now, "evicted", out, cfg.assumed_delay_ms);
                counters.rtp.streams_ended += 1;
            }
            Inserted::Rejected(..) => return None,
        }
        self.streams.slot_of(&key)
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
                Ok(rtcp::RtcpRepr::SenderReport { blocks, .. })
                | Ok(rtcp::RtcpRepr::ReceiverReport { blocks, .. }) => blocks,
                Ok(_) => continue,
                Err(_) => {
                    counters.rtp.rtcp_malformed += 1;
                    continue;
                }
            };
            for block in blocks {
                // The reported stream flows towards the RTCP sender: its source is the RTCP
                // destination's host, RTP port = RTCP port - 1 (or the same port when muxed).
                for (sp, dp) in [
                    (dst.port().wrapping_sub(1), src.port().wrapping_sub(1)),
                    (dst.port(), src.port()),
                ] {
                    let key = StreamKey {
                        src: SocketAddr::new(dst.ip(), sp),
                        dst: SocketAddr::new(src.ip(), dp),
                        ssrc: block.ssrc,
                    };
                    if let Some(st) = self.streams.get_mut(&key) {
                        let clock = if st.clock == 0 { 8000 } else { st.clock };
                        st.rtcp.fraction_lost = Some(block.fraction_lost as f64 / 256.0);
                        st.rtcp.cumulative_lost = Some(block.cumulative_lost);
                        st.rtcp.jitter_ms = Some(block.jitter as f64 * 1000.0 / clock as f64);
                        st.rtcp.rtt_ms = rtcp::rtt_ms(block.lsr, block.dlsr, ntp_middle32(now));
                        break;
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
        let mut slot = 0;
        while let Some(s) = self.streams.next_slot(slot) {
            slot = s + 1;
            let Some((k, st)) = self.streams.by_slot_mut(s) else {
                continue;
            };
            let key = *k;
            if sec > st.second && st.packets_in_second > 0 {
                report_interval(key, st, out, delay);
                st.second = sec;
            }
            if now.saturating_duration_since(st.last_seen) > timeout {
                if let Some((k, mut st)) = self.streams.remove_slot(s) {
                    end_stream(k, &mut st, now, "timeout", out, delay);
                    counters.rtp.streams_ended += 1;
                }
            }
        }
    }

    /// Ends the streams of a call (its final event is being built) and returns the
    /// per-direction quality for it: (caller → callee, callee → caller).
    pub fn remove_call(
        &mut self,
        serial: u64,
        now: Instant,
        reason: &str,
        out: &mut impl EventSink,
        counters: &mut Counters,
    ) -> (Option<DirectionQuality>, Option<DirectionQuality>) {
        let delay = self.cfg.assumed_delay_ms;
        let mut to_callee: Option<DirectionQuality> = None;
        let mut to_caller: Option<DirectionQuality> = None;
        let mut slot = 0;
        while let Some(s) = self.streams.next_slot(slot) {
            slot = s + 1;
            let belongs = self
                .streams
                .by_slot(s)
                .is_some_and(|(_, st)| st.call.is_some_and(|c| c.serial == serial));
            if !belongs {
                continue;
            }
            let Some((k, mut st)) = self.streams.remove_slot(s) else {
                continue;
            };
            let end = end_stream(k, &mut st, now, reason, out, delay);
            counters.rtp.streams_ended += 1;
            let q = DirectionQuality {
                src: Some(k.src),
                dst: Some(k.dst),
                codec: st.codec.clone(),
                packets: end.packets,
                lost: end.lost,
                jitter_max_ms: end.jitter_max_ms,
                mos_min: end.mos_min,
                mos_mean: end.mos_mean,
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

    /// Ends every stream (end of capture / sensor stop).
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
                end_stream(k, &mut st, now, reason, out, delay);
                counters.rtp.streams_ended += 1;
            }
        }
    }
}

fn other(p: Party) -> Party {
    match p {
        Party::Caller => Party::Callee,
        Party::Callee => Party::Caller,
    }
}

/// NTP "middle 32 bits" of a packet time, for round-trip computation.
fn ntp_middle32(now: Instant) -> u32 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let us = now.as_micros();
    let secs = us / 1_000_000 + NTP_UNIX_OFFSET;
    let frac = ((us % 1_000_000) << 16) / 1_000_000;
    ((secs as u32) << 16) | frac as u32
}

fn confirmed(st: &Stream) -> bool {
    !st.heuristic || st.stats.packets() >= HEURISTIC_CONFIRM
}

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

fn report_interval(key: StreamKey, st: &mut Stream, out: &mut impl EventSink, delay_ms: f64) {
    let f = st.stats.take_interval();
    st.packets_in_second = 0;
    let capture_loss = core::mem::take(&mut st.capture_loss);
    if !confirmed(st) {
        return;
    }
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
}

fn end_stream(
    key: StreamKey,
    st: &mut Stream,
    now: Instant,
    reason: &str,
    out: &mut impl EventSink,
    delay_ms: f64,
) -> StreamEnd {
    if st.packets_in_second > 0 {
        report_interval(key, st, out, delay_ms);
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
        reason: r,
    };
    if confirmed(st) {
        out.emit(&Event::StreamEnd(end.clone()));
    }
    end
}

/// Until `rtp::heuristic` lands: version 2, not an RTCP type, no SIP/STUN look.
fn plausible_rtp(payload: &[u8]) -> bool {
    payload.len() >= 12 && payload[0] >> 6 == 2 && !is_rtcp_pt(payload[1])
}
