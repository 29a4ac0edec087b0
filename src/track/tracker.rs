//! The sans-IO tracker: `(timestamp, link type, frame)` in, events out.
//!
//! It reads no clock and does no I/O. Time is the packets' own: the tracker's "now" is the
//! latest timestamp seen (a frame stamped earlier is processed at that "now" and counted),
//! and once per whole second of packet time it reports intervals and runs timeouts. A live
//! capture with no traffic calls [`Tracker::tick`] from its timer so timeouts still fire.
//! Feeding the same frames gives the same events, byte for byte.

use crate::sip::{self, Method, StartLine};
use crate::track::call::{CALLS_DEFAULT, CallEffect, CallEffects, CallTimeouts, Calls, Hop};
use crate::track::carried;
use crate::track::counters::Counters;
use crate::track::event::{Event, EventSink};
use crate::track::health::Health;
use crate::track::media::{CallRef, Media, MediaConfig, Seen};
use crate::track::mirror::{self, MirrorSeen};
use crate::track::sip_tcp;
use crate::wire::sctp::SctpReassembler;
use crate::wire::{Decoder, LinkType, TcpStreams, Transport, sctp as sctp_wire, websocket};
use embassy_time::{Duration, Instant};

/// Concurrent IP datagrams being reassembled from fragments.
pub const FRAGMENTS_DEFAULT: usize = 256;
/// Concurrent TCP connections carrying SIP.
pub const TCP_STREAMS_DEFAULT: usize = 1024;
/// Reassembly buffer per TCP direction (a SIP message larger than this is dropped, counted).
pub const TCP_BUFFER_DEFAULT: usize = 16 * 1024;

/// Capacities and timeouts. Defaults fit a branch office on a 1 GiB board; `boards/`
/// and the config file size them.
#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    pub calls: usize,
    pub fragments: usize,
    pub fragment_timeout: Duration,
    pub tcp_streams: usize,
    pub tcp_buffer: usize,
    pub tcp_idle: Duration,
    pub timeouts: CallTimeouts,
    pub media: MediaConfig,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            calls: CALLS_DEFAULT,
            fragments: FRAGMENTS_DEFAULT,
            fragment_timeout: Duration::from_secs(30),
            tcp_streams: TCP_STREAMS_DEFAULT,
            tcp_buffer: TCP_BUFFER_DEFAULT,
            tcp_idle: Duration::from_secs(300),
            timeouts: CallTimeouts::default(),
            media: MediaConfig::default(),
        }
    }
}

impl TrackerConfig {
    /// Heap bytes a tracker with this configuration allocates at start — all it will ever
    /// hold (the mirror diagnostics' few KiB aside).
    pub fn memory_bytes(&self) -> usize {
        self.memory_parts().iter().map(|(_, b)| b).sum()
    }

    /// [`memory_bytes`](Self::memory_bytes) by part, as the start-up log and the README's
    /// "Fixed memory" table give it.
    pub fn memory_parts(&self) -> [(&'static str, usize); 7] {
        [
            ("calls", Calls::memory_bytes(self.calls)),
            ("media", Media::memory_bytes(&self.media, self.calls)),
            ("media_health", Health::memory_bytes(self.calls)),
            (
                "fragments",
                crate::wire::frag::Reassembler::memory_bytes(self.fragments),
            ),
            (
                "tcp_streams",
                TcpStreams::memory_bytes(self.tcp_streams, self.tcp_buffer) + self.tcp_buffer, // WebSocket unmasking scratch
            ),
            ("media_tcp_streams", carried::memory_bytes()),
            ("sctp", SctpReassembler::memory_bytes()),
        ]
    }
}

pub struct Tracker {
    decoder: Decoder,
    tcp: TcpStreams,
    /// TCP connections carrying media: RFC 4571 RTP, TURN (`carried.rs`).
    media_tcp: TcpStreams,
    calls: Calls,
    /// One buffer for every call step's effects, reused (~12 KB: not built per message).
    fx: Box<CallEffects>,
    media: Media,
    health: Health,
    counters: Counters,
    mirror: MirrorSeen,
    /// Fragmented SIP-over-SCTP messages being rebuilt (bounded).
    sctp: SctpReassembler,
    /// Where masked WebSocket payloads are unmasked (one SIP message at a time).
    ws_scratch: Box<[u8]>,
    now: Option<Instant>,
    second: u64,
}

/// The well-known port of SIP over TLS: TLS seen here is signalling we cannot read.
const SIP_TLS_PORT: u16 = 5061;

impl Tracker {
    /// Allocates every table now; frame processing allocates nothing afterwards.
    pub fn new(cfg: TrackerConfig) -> Tracker {
        Tracker {
            decoder: Decoder::new(cfg.fragments, cfg.fragment_timeout),
            // Non-zero so the pages are written now (a zero fill is mapped lazily).
            ws_scratch: vec![0xa5; cfg.tcp_buffer].into_boxed_slice(),
            tcp: TcpStreams::new(cfg.tcp_streams, cfg.tcp_buffer, cfg.tcp_idle),
            media_tcp: carried::media_tcp(cfg.tcp_idle),
            calls: Calls::new(cfg.calls, cfg.timeouts),
            fx: Box::default(),
            media: Media::new(cfg.media, cfg.calls),
            health: Health::new(cfg.calls, cfg.media.health_silence),
            counters: Counters::default(),
            mirror: MirrorSeen::new(),
            sctp: SctpReassembler::new(),
            now: None,
            second: 0,
        }
    }

    /// The tracker's clock: the latest packet (or tick) time seen.
    pub fn now(&self) -> Option<Instant> {
        self.now
    }

    /// Mirror diagnostics: SIP transactions seen one way only, VLANs, encapsulations.
    pub fn mirror(&self) -> &MirrorSeen {
        &self.mirror
    }

    /// See [`Media::set_capture_loss`].
    pub fn set_capture_loss(&mut self, dropping: bool) {
        self.media.set_capture_loss(dropping);
    }

    /// Feeds one captured frame.
    pub fn on_frame(
        &mut self,
        ts: Instant,
        link: LinkType,
        frame: &[u8],
        out: &mut impl EventSink,
    ) {
        self.counters.frames += 1;
        self.counters.bytes += frame.len() as u64;
        let now = match self.now {
            Some(n) if ts < n => {
                self.counters.time_went_backwards += 1;
                n
            }
            _ => ts,
        };
        self.advance(now, out);
        let Tracker {
            decoder,
            tcp,
            media_tcp,
            calls,
            fx,
            media,
            health,
            counters,
            mirror,
            ws_scratch,
            sctp,
            ..
        } = self;
        let Ok(Some(pkt)) = decoder.decode(now, link, frame) else {
            return; // counted by the decoder
        };
        counters.decoded += 1;
        mirror.on_packet(pkt.vlan, pkt.encap);
        let flow = pkt.flow();
        let tls_port = flow.src.port() == SIP_TLS_PORT || flow.dst.port() == SIP_TLS_PORT;
        match pkt.transport {
            Transport::Udp { payload, .. } => {
                let hop = Hop {
                    now,
                    src: flow.src,
                    dst: flow.dst,
                };
                if let Some(sniffed) = sip::sniff(payload) {
                    let mut peers = Peers {
                        calls,
                        fx,
                        media,
                        health,
                        counters,
                    };
                    on_sip_bytes(hop, payload, Some(sniffed), true, &mut peers, mirror, out);
                } else if tls_port && sip::looks_like_tls(payload) {
                    counters.sip.tls_records += 1;
                } else if let Some(seen) =
                    carried::on_udp(now, hop.src, hop.dst, payload, media, counters, out)
                {
                    if let Seen::CallMedia(call) = seen {
                        calls.media_seen(call.slot, call.serial, now);
                    }
                } else if let Seen::CallMedia(call) =
                    media.on_udp(now, hop.src, hop.dst, payload, counters, out)
                {
                    calls.media_seen(call.slot, call.serial, now);
                }
            }
            Transport::Sctp { chunks, .. } => {
                // One SIP message per DATA chunk (RFC 4168), read like a UDP datagram.
                let hop = Hop {
                    now,
                    src: flow.src,
                    dst: flow.dst,
                };
                let sip_port = [flow.src.port(), flow.dst.port()].contains(&sctp_wire::SIP_PORT);
                let mut sc = counters.sctp;
                let mut peers = Peers {
                    calls,
                    fx,
                    media,
                    health,
                    counters,
                };
                sctp.packet(flow, chunks, &mut sc, |_ppid, msg| {
                    if let Some(sniffed) = sip::sniff(msg) {
                        peers.counters.sip.over_sctp += 1;
                        on_sip_bytes(hop, msg, Some(sniffed), true, &mut peers, mirror, out);
                    } else if sip_port {
                        peers.counters.sip.malformed += 1;
                    } else {
                        return false;
                    }
                    true
                });
                peers.counters.sctp = sc;
            }
            Transport::Tcp {
                seq,
                flags,
                payload,
                ..
            } => {
                let key = flow;
                if tls_port && sip::looks_like_tls(payload) {
                    counters.sip.tls_records += 1;
                    return;
                }
                // Only connections that carry SIP get a reassembly buffer: a stream starts
                // at a segment that begins with a SIP message (mid-connection starts too),
                // or with the HTTP Upgrade of SIP over WebSocket (RFC 7118).
                if !tcp.contains(&key)
                    && !sip::looks_like_sip(payload)
                    && !websocket::is_upgrade(payload)
                {
                    let m = carried::TcpMedia {
                        streams: media_tcp,
                        media,
                        counters,
                    };
                    let seen = |call: CallRef| calls.media_seen(call.slot, call.serial, now);
                    m.segment(now, key, seq, flags, payload, seen, out);
                    return;
                }
                let hop = Hop {
                    now,
                    src: key.src,
                    dst: key.dst,
                };
                let mut peers = Peers {
                    calls,
                    fx,
                    media,
                    health,
                    counters,
                };
                let oversize = core::cell::Cell::new(0);
                let framer = sip_tcp::framer(&oversize);
                tcp.segment(now, key, seq, flags, payload, framer, |msg| {
                    let counters = &mut *peers.counters;
                    counters.sip.over_tcp += 1;
                    match sip_tcp::open(msg, ws_scratch) {
                        sip_tcp::Message::Sip(sip) => {
                            on_sip_bytes(hop, sip, None, false, &mut peers, mirror, out)
                        }
                        sip_tcp::Message::WebSocket(sip) => {
                            counters.sip.over_websocket += 1;
                            match sip {
                                Some(sip) => {
                                    on_sip_bytes(hop, sip, None, true, &mut peers, mirror, out)
                                }
                                None => counters.sip.malformed += 1,
                            }
                        }
                        sip_tcp::Message::Other => {} // ping, pong, close
                    }
                });
                peers.counters.sip.oversize += oversize.get();
            }
        }
    }

    /// Runs the once-a-second work if `now` entered a new second: interval reports, call,
    /// stream, fragment and TCP timeouts. Called for every frame, and by a live capture's
    /// timer when there is no traffic.
    pub fn tick(&mut self, now: Instant, out: &mut impl EventSink) {
        let now = match self.now {
            Some(n) if now < n => n,
            _ => now,
        };
        self.advance(now, out);
    }

    fn advance(&mut self, now: Instant, out: &mut impl EventSink) {
        self.now = Some(now);
        let sec = now.as_secs();
        if sec <= self.second {
            return;
        }
        self.second = sec;
        // Only streams and calls whose timers are due are visited (`timer_wheel.rs`): a
        // stream that carried packets since the last tick feeds its call's media health,
        // and that call is checked this second.
        let (health, calls) = (&mut self.health, &mut self.calls);
        self.media.tick(
            now,
            &mut self.counters,
            out,
            |serial, slot, toward, at, k| {
                health.saw(serial, toward, at, k.src, k.dst);
                calls.wake(slot, serial, sec);
            },
        );
        let mut peers = self.peers();
        peers.calls.collect_due(now);
        let mut i = 0;
        while let Some(next) = peers.calls.expire_next(now, i, peers.counters, peers.fx) {
            peers.apply(now, out);
            i = next;
        }
        self.decoder.expire(now);
        self.mirror.tick(now);
        self.tcp.expire(now);
        self.media_tcp.expire(now);
    }

    /// Ends everything still open: calls get `sensor_stopped` with `reason`
    /// (`end_of_capture` or `sensor_stopped`), streams their `stream_end`.
    pub fn finish(&mut self, reason: &str, out: &mut impl EventSink) {
        let now = self.now.unwrap_or(Instant::from_micros(0));
        let mut peers = self.peers();
        let mut from = 0;
        while let Some(next) = peers
            .calls
            .stop_next(now, reason, from, peers.counters, peers.fx)
        {
            peers.apply(now, out);
            from = next;
        }
        self.media.stop_all(now, reason, &mut self.counters, out);
    }

    fn peers(&mut self) -> Peers<'_> {
        Peers {
            calls: &mut self.calls,
            fx: &mut self.fx,
            media: &mut self.media,
            health: &mut self.health,
            counters: &mut self.counters,
        }
    }

    /// Every counter, with table fill and the decoding layers' own counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        c.wire = self.decoder.counters();
        c.tcp = self.tcp.counters();
        c.tables.calls = self.calls.stats();
        c.tables.media_endpoints = self.media.endpoint_stats();
        c.tables.streams = self.media.stream_stats();
        c.tables.fragments = self.decoder.frag_stats();
        c.tables.tcp_streams = self.tcp.stats();
        c.tables.media_tcp_streams = self.media_tcp.stats();
        c
    }
}

/// The call table and the media side it drives, borrowed together so the call table's
/// effects can be applied to the others.
struct Peers<'a> {
    calls: &'a mut Calls,
    fx: &'a mut CallEffects,
    media: &'a mut Media,
    health: &'a mut Health,
    counters: &'a mut Counters,
}

impl Peers<'_> {
    /// Applies (and drains) a call step's effects, in order.
    fn apply(&mut self, now: Instant, out: &mut impl EventSink) {
        let (effects, sdp) = self.fx.effects();
        for e in effects {
            match e {
                CallEffect::Event(ev) => out.emit(ev),
                &mut CallEffect::Opened { serial, slot } => {
                    self.media.open_call(CallRef { serial, slot });
                    self.health.open(serial);
                }
                CallEffect::MediaOffered {
                    serial,
                    slot,
                    call_id,
                    sender,
                    at,
                } => {
                    if let Some(sdp) = sdp {
                        let call = CallRef {
                            serial: *serial,
                            slot: *slot,
                        };
                        self.media.register(call, call_id, *sender, sdp, *at);
                    }
                }
                CallEffect::Closed {
                    serial,
                    slot,
                    reason,
                    event,
                } => {
                    let call = CallRef {
                        serial: *serial,
                        slot: *slot,
                    };
                    let (q_caller, q_callee) = self.media.close_call(call, reason);
                    self.health.close(*serial);
                    if let Some(ev) = event {
                        if let Event::Call(c) = ev {
                            c.quality_caller = q_caller;
                            c.quality_callee = q_callee;
                        }
                        out.emit(ev);
                    }
                }
                &mut CallEffect::Forgotten { serial, slot } => {
                    self.media.forget_call(CallRef { serial, slot })
                }
                CallEffect::CheckHealth {
                    serial,
                    slot,
                    call_id,
                    since,
                } => {
                    let again =
                        self.health
                            .check(now, *serial, call_id, *since, self.counters, out);
                    if let Some(second) = again {
                        self.calls.wake(*slot, *serial, second);
                    }
                }
            }
        }
        self.fx.clear();
    }
}

/// `bounded`: the transport delimits the message (UDP, WebSocket, SCTP), so it is read
/// leniently (`Message::parse_datagram`); TCP-framed messages strictly.
fn on_sip_bytes<'a>(
    hop: Hop,
    bytes: &'a [u8],
    sniffed: Option<sip::Sniffed<'a>>,
    bounded: bool,
    peers: &mut Peers,
    mirror: &mut MirrorSeen,
    out: &mut impl EventSink,
) {
    let counters = &mut *peers.counters;
    let mut slot = sip::MessageSlot::default();
    let Some(msg) = sip_tcp::parse(bytes, bounded, sniffed, &mut slot, &mut counters.sip) else {
        counters.sip.malformed += 1;
        return;
    };
    counters.sip.messages += 1;
    if let Some(key) = mirror::transaction_key(msg) {
        mirror.on_sip(hop.now, hop.src.ip(), hop.dst.ip(), msg.is_request(), key);
    }
    match msg.start() {
        StartLine::Request { method, .. } => {
            let m = &mut counters.sip.requests;
            *match method {
                Method::Invite => &mut m.invite,
                Method::Ack => &mut m.ack,
                Method::Bye => &mut m.bye,
                Method::Cancel => &mut m.cancel,
                Method::Register => &mut m.register,
                Method::Options => &mut m.options,
                Method::Prack => &mut m.prack,
                Method::Update => &mut m.update,
                Method::Info => &mut m.info,
                Method::Subscribe => &mut m.subscribe,
                Method::Notify => &mut m.notify,
                Method::Refer => &mut m.refer,
                Method::Message => &mut m.message,
                Method::Publish => &mut m.publish,
                Method::Other => &mut m.other,
            } += 1;
        }
        StartLine::Response { code, .. } => {
            let r = &mut counters.sip.responses;
            match code {
                100..=199 => r.r1xx += 1,
                200..=299 => r.r2xx += 1,
                300..=399 => r.r3xx += 1,
                400..=499 => r.r4xx += 1,
                500..=599 => r.r5xx += 1,
                _ => r.r6xx += 1,
            }
        }
    }
    peers.calls.on_sip(hop, msg, peers.counters, peers.fx);
    peers.apply(hop.now, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_sizes_fit_in_a_page() {
        // A table writes `None` into every slot at start; that writes every page of its
        // storage only while a slot is at most a page (`table::PAGE`). `bytes_per_slot`
        // bounds the slot's size from above.
        let c = Tracker::new(TrackerConfig::default()).counters();
        let t = c.tables;
        for s in [
            t.calls,
            t.media_endpoints,
            t.streams,
            t.fragments,
            t.tcp_streams,
        ] {
            assert!(s.bytes_per_slot > 0, "{s:?}");
            assert!(s.bytes_per_slot as usize <= crate::table::PAGE, "{s:?}");
        }
    }
}
