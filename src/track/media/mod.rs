//! Media: the endpoints SDP announced, the RTP streams seen on them (or found by the
//! heuristic), their per-second interval reports and their summaries.
//!
//! Two fixed tables:
//! * **endpoints** (`endpoint.rs`), keyed by the `(ip, port)` a party asked to receive
//!   media on (from SDP offer/answer, updated by re-INVITE/UPDATE), plus its RTCP port
//!   (`a=rtcp`, port+1, or the RTP port itself with `a=rtcp-mux`). A UDP packet finds its
//!   call with one lookup of its destination (then its source, for symmetric RTP). Full:
//!   the endpoint used least recently is evicted (counted).
//! * **streams** (`stream.rs`), keyed by `(src, dst, SSRC)`: a new SSRC on the same
//!   addresses is a new stream. Full: the stream idle longest is evicted (its `stream_end`
//!   says `evicted`).
//!
//! Intervals (`interval.rs`) are whole seconds of packet time; a stream reports a second
//! in which it carried packets. Signalled silence (hold, sendonly, inactive, comfort noise)
//! produces no packets and so no loss. RTCP (`rtcp.rs`) adds the far end's view and the
//! round trip; `quality.rs` scores intervals (E-model) and a call's directions at its end;
//! `report.rs` sums a stream up in its `stream_end`; `dtmf.rs` reports RFC 4733 digits.
//! Imports among these run one way: `endpoint` ← `stream` ← `rtcp`, `dtmf`, `quality` ←
//! `interval` ← `report` ← this file.
//!
//! Unsignalled RTP (`rtp::heuristic`): a plausible datagram opens a candidate stream whose
//! statistics count from that first packet; it is reported only once a run of in-sequence
//! packets confirms it, so noise never produces events and confirmed streams lose nothing.
//! A stream outlives its call's end until idle (`closed_call_idle`) so packets in flight
//! after the BYE stay in one stream. Nothing here allocates per packet.
//!
//! Calls are known only by their serial (and Call-ID, for the events): this side never
//! sees the call table.

mod dtmf;
mod endpoint;
mod interval;
mod links;
mod quality;
mod report;
mod rtcp;
mod stream;
#[cfg(test)]
mod testing;

pub use links::CallRef;
pub use stream::StreamKey;

use crate::rtp::emodel;
use crate::rtp::heuristic::{self, Verdict};
use crate::rtp::packet::{RtpPacket, is_rtcp_pt};
use crate::rtp::stats::PacketKind;
use crate::sip::sdp;
use crate::table::{Inserted, Table, TableStats};
use crate::timer_wheel::{TimerWheel, second_after};
use crate::track::counters::Counters;
use crate::track::event::{CallId, DirectionQuality, EventSink, Party};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};
use endpoint::{Endpoint, Endpoints};
use links::{CallLinks, Member};
use quality::DirectionAcc;
use stream::Stream;

/// Index of a direction in a call's `[DirectionAcc; 2]`: toward the caller, toward the callee.
fn direction_index(toward: Party) -> usize {
    match toward {
        Party::Caller => 0,
        Party::Callee => 1,
    }
}

/// Calls that can have ended streams at once: at most half the stream table (a call with
/// an ended stream has had at least two).
fn ended_capacity(cfg: &MediaConfig) -> usize {
    (cfg.streams / 2).max(1)
}

pub const MEDIA_ENDPOINTS_DEFAULT: usize = 16384;
pub const STREAMS_DEFAULT: usize = 8192;

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
    endpoints: Endpoints,
    streams: Table<StreamKey, Stream>,
    /// Streams of still-open calls that ended before their call, summed per direction
    /// (caller → callee, callee → caller), so the call's final quality covers all of its
    /// media. One entry per such call; when full, the oldest call's entry is evicted.
    ended: Table<u64, [DirectionAcc; 2]>,
    /// Each call's streams, so closing a call visits only its own.
    stream_links: CallLinks,
    capture_loss: bool,
    /// When each stream slot next needs looking at: the second after it carried packets
    /// (its interval report, its call's media health) or its idle timeout. The tick visits
    /// only those.
    timers: TimerWheel,
    /// The stream slots due this tick, in slot order (room for every slot, from start).
    due: Vec<u32>,
    /// The previous tick's time: a stream seen since then feeds its call's media health.
    last_tick: Option<Instant>,
}

/// Stream eviction classes: a stream is tentative (evicted first) until it has carried
/// [`ESTABLISHED_PACKETS`] and, if found by the heuristic, been confirmed. A flood of
/// one-packet streams (new SSRCs, new ports) then only evicts its own kind.
const TENTATIVE: u8 = 0;
const ESTABLISHED: u8 = 1;
/// Packets that make a stream established (0.16 s of 20 ms audio).
const ESTABLISHED_PACKETS: u64 = 8;

/// What a UDP packet turned out to be, for the caller's activity bookkeeping.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Media of `call` — refreshes the call's media clock.
    CallMedia(CallRef),
    Media,
    NotMedia,
}

impl Media {
    /// `calls`: the call table's capacity (the per-call lists are indexed by call slot).
    pub fn new(cfg: MediaConfig, calls: usize) -> Media {
        Media {
            cfg,
            endpoints: Endpoints::new(cfg.endpoints, calls),
            streams: Table::new("streams", cfg.streams),
            ended: Table::new("ended_streams", ended_capacity(&cfg)),
            stream_links: CallLinks::new(calls),
            capture_loss: false,
            timers: TimerWheel::new(cfg.streams.max(1)),
            due: Vec::with_capacity(cfg.streams.max(1)),
            last_tick: None,
        }
    }

    /// Entries the stream timers looked at, ever (O(due) per tick; tests check it).
    pub fn timer_work(&self) -> u64 {
        self.timers.work()
    }

    /// The second by which stream `st` must be looked at if no packet comes first: its
    /// idle timeout (`closed_call_idle` once its call ended). A packet only moves it later
    /// (and asks for the next second itself); the tick re-checks and re-arms.
    fn idle_due(cfg: &MediaConfig, st: &Stream) -> u64 {
        let idle = match st.closed {
            Some(_) => cfg.closed_call_idle,
            None => cfg.stream_timeout,
        };
        second_after(st.last_seen.as_micros(), idle.as_micros())
    }

    /// Heap bytes `new(cfg, calls)` allocates (endpoint and stream tables, call lists).
    pub fn memory_bytes(cfg: &MediaConfig, calls: usize) -> usize {
        Endpoints::memory_bytes(cfg.endpoints, calls)
            + Table::<StreamKey, Stream>::memory_bytes(cfg.streams)
            + Table::<u64, [DirectionAcc; 2]>::memory_bytes(ended_capacity(cfg))
            + CallLinks::memory_bytes(calls)
            + TimerWheel::memory_bytes(cfg.streams.max(1))
            + cfg.streams.max(1) * core::mem::size_of::<u32>()
    }

    /// A new call took its call slot: a departed call's endpoints still listed there go,
    /// its streams leave that list (they end on their own).
    pub fn open_call(&mut self, call: CallRef) {
        self.endpoints.open(call);
        if let Some(prev) = self.stream_links.open(call) {
            self.detach_streams(prev);
            self.stream_links.open(call);
        }
    }

    fn detach_streams(&mut self, call: CallRef) {
        while let Some(s) = self.stream_links.first(call) {
            self.stream_links.unlink(&mut self.streams, s);
            if let Some((_, st)) = self.streams.by_slot_mut(s) {
                st.call_slot = crate::table::NIL;
            }
        }
        self.stream_links.release(call);
    }

    /// Removes the stream at `slot`, off its call's list.
    fn remove_stream(&mut self, slot: u32) -> Option<(StreamKey, Stream)> {
        self.stream_links.unlink(&mut self.streams, slot);
        self.timers.cancel(slot);
        self.streams.remove_slot(slot)
    }

    /// Folds a stream that ends while its call is open into the call's quality.
    fn fold_ended(&mut self, key: &StreamKey, st: &Stream) {
        let (Some(serial), Some(toward), None, None) =
            (st.call, st.toward, st.closed, &st.candidate)
        else {
            return;
        };
        let delay = self.cfg.assumed_delay_ms;
        if !self.ended.contains(&serial) {
            // Full: the call whose first stream ended longest ago goes (its final event is
            // the one most likely lost anyway).
            let _ = self.ended.insert(serial, Default::default(), 0, 1);
        }
        if let Some(a) = self
            .ended
            .get_mut(&serial)
            .and_then(|acc| acc.get_mut(direction_index(toward)))
        {
            a.add(key, st, delay);
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

    /// Registers the endpoints of an SDP body that `sender`, in call `serial`, sent (it
    /// receives there).
    pub fn register(
        &mut self,
        call: CallRef,
        call_id: &CallId,
        sender: Party,
        s: &sdp::Sdp,
        now: Instant,
    ) {
        self.endpoints.register(call, call_id, sender, s, now);
    }

    /// Handles a UDP payload that is not SIP. Returns what it was.
    pub fn on_udp(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Seen {
        self.on_datagram(now, src, dst, payload, false, counters, out)
    }

    /// A packet carried inside another protocol (TURN, RFC 4571 over TCP), between the
    /// wire addresses `src` and `dst`: the heuristic judges the packet alone, since the
    /// ports are the carrier's (3478 is on its not-RTP list).
    pub fn on_carried(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        packet: &[u8],
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Seen {
        self.on_datagram(now, src, dst, packet, true, counters, out)
    }

    /// Whether SDP announced `src` or `dst` as a media endpoint.
    pub fn is_endpoint(&mut self, src: SocketAddr, dst: SocketAddr) -> bool {
        self.endpoints.find(src, dst).is_some()
    }

    #[allow(clippy::too_many_arguments)]
    fn on_datagram(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        carried: bool,
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Seen {
        if let Some(seen) = self.known_stream_same_second(now, src, dst, payload, counters, out) {
            return seen;
        }
        let (ep_slot, toward_owner) = match self.endpoints.find(src, dst) {
            Some((s, toward)) => (Some(s), toward),
            None => (None, false),
        };
        // RTCP: on an RTCP endpoint, or muxed (PT 200–207 in the second byte).
        let b1 = payload.get(1).copied().unwrap_or(0);
        let ep_is_rtcp = ep_slot
            .and_then(|s| self.endpoints.get(s))
            .is_some_and(|e| e.rtcp);
        if ep_is_rtcp
            || (payload.len() >= 8
                && payload.first().is_some_and(|b| b >> 6 == 2)
                && is_rtcp_pt(b1))
        {
            if ep_slot.is_none() && !self.cfg.heuristic {
                counters.rtp.other_udp += 1;
                return Seen::NotMedia;
            }
            rtcp::on_rtcp(&mut self.streams, now, src, dst, payload, counters);
            return match ep_slot.and_then(|s| self.endpoints.get(s)) {
                Some(e) => Seen::CallMedia(e.call()),
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
                        && if carried {
                            heuristic::looks_like_carried_rtp(payload)
                        } else {
                            heuristic::looks_like_rtp(payload, src.port(), dst.port())
                        })
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
        self.rtp_on_stream(now, slot, key, &pkt, ep_slot, counters, out)
    }

    /// The common case in one hash lookup: an RTP packet of a stream that already had a
    /// packet this second, with its usual payload type (or its telephone-event or comfort
    /// noise one), so neither the endpoint nor the codec list is consulted. The endpoint is
    /// still looked up (and touched, for its LRU) on each stream's first packet of a second.
    /// `None`: take the full path.
    fn known_stream_same_second(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Option<Seen> {
        let b1 = payload.get(1).copied().unwrap_or(0);
        if is_rtcp_pt(b1) {
            return None;
        }
        let pkt = RtpPacket::new_checked(payload).ok()?;
        let key = StreamKey {
            src,
            dst,
            ssrc: pkt.ssrc(),
        };
        let slot = self.streams.slot_of(&key)?;
        let (_, st) = self.streams.by_slot(slot)?;
        let pt = pkt.payload_type();
        let usual =
            pt == st.pt || Some(pt) == st.event_pt || crate::rtp::codec::is_comfort_noise_pt(pt);
        if !usual || st.second != now.as_secs() {
            return None;
        }
        Some(self.rtp_on_stream(now, slot, key, &pkt, None, counters, out))
    }

    /// Counts one RTP packet into the stream in `slot`.
    #[allow(clippy::too_many_arguments)]
    fn rtp_on_stream(
        &mut self,
        now: Instant,
        slot: u32,
        key: StreamKey,
        pkt: &RtpPacket,
        ep_slot: Option<u32>,
        counters: &mut Counters,
        out: &mut impl EventSink,
    ) -> Seen {
        let ep = ep_slot.and_then(|s| self.endpoints.get(s));
        let Some((_, st)) = self.streams.by_slot_mut(slot) else {
            return Seen::NotMedia;
        };
        let prev_second = st.last_seen.as_secs();
        // An established stream's earlier packet this second relinked and scheduled it.
        let settled_this_second = prev_second == now.as_secs() && st.established;
        on_rtp_packet(
            st,
            key,
            now,
            pkt,
            ep,
            self.capture_loss,
            self.cfg.assumed_delay_ms,
            counters,
            out,
        );
        let established = st.candidate.is_none() && st.stats.packets() >= ESTABLISHED_PACKETS;
        let seen = match st.owner() {
            Some(call) => Seen::CallMedia(call),
            None => Seen::Media,
        };
        if settled_this_second {
            return seen;
        }
        // An established stream is relinked in its LRU list once a second, not per packet
        // (each relink touches two neighbours' links: cache misses at 20,000 streams).
        if established {
            st.established = true;
            self.streams.set_class(slot, ESTABLISHED);
        } else {
            self.streams.touch(slot);
        }
        // The next tick reports this second and feeds the call's health (once a second:
        // the later packets of the second would find it already due by then).
        self.timers
            .schedule_by(slot, now.as_secs().saturating_add(1));
        seen
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
        let ep = ep_slot.and_then(|s| self.endpoints.get_mut(s));
        let stream = Stream::new(now, pkt, ep, toward_owner)?;
        counters.rtp.streams_started += 1;
        let delay = self.cfg.assumed_delay_ms;
        match self.streams.insert(key, stream, TENTATIVE, ESTABLISHED + 1) {
            Inserted::Stored => {}
            Inserted::Evicted(k, mut s) => {
                if let Some(slot) = self.streams.slot_of(&key) {
                    self.stream_links
                        .unlink_removed(&mut self.streams, slot, &mut s);
                }
                self.fold_ended(&k, &s);
                report::end_stream(k, &mut s, now, "evicted", out, delay, counters);
                counters.rtp.streams_ended += 1;
            }
            Inserted::Rejected(..) => return None,
        }
        let slot = self.streams.slot_of(&key)?;
        self.stream_links.push(&mut self.streams, slot);
        Some(slot)
    }

    /// Once per second of packet time: reports finished seconds, ends idle streams, and
    /// feeds `health` (call serial, call slot, the party it flows toward, last packet time,
    /// addresses) from every open, confirmed call stream that carried packets since the
    /// last tick. Only the streams whose timers are due are visited, in slot order (the
    /// order a walk of every slot had their events in); the others have nothing to do.
    pub fn tick(
        &mut self,
        now: Instant,
        counters: &mut Counters,
        out: &mut impl EventSink,
        mut health: impl FnMut(u64, u32, Party, Instant, &StreamKey),
    ) {
        let sec = now.as_secs();
        let delay = self.cfg.assumed_delay_ms;
        let timeout = self.cfg.stream_timeout;
        let closed_idle = self.cfg.closed_call_idle;
        let since = self.last_tick.replace(now);
        let mut due = core::mem::take(&mut self.due);
        due.clear();
        self.timers.pop_due(sec, &mut due);
        due.sort_unstable();
        for &s in &due {
            let Some((k, st)) = self.streams.by_slot_mut(s) else {
                continue;
            };
            let key = *k;
            if sec > st.second && st.packets_in_second > 0 {
                interval::report_interval(key, st, out, delay);
                if st.packets_in_second == 0 {
                    st.second = sec;
                }
            }
            let idle = now.saturating_duration_since(st.last_seen);
            let reason = match st.closed {
                Some(r) if idle > closed_idle => r,
                _ if idle > timeout => "timeout",
                _ => {
                    if since.is_none_or(|t| st.last_seen >= t)
                        && let (Some(c), Some(p), None, None) =
                            (st.call, st.toward, st.closed, &st.candidate)
                    {
                        health(c, st.call_slot, p, st.last_seen, &key);
                    }
                    let again = Self::idle_due(&self.cfg, st);
                    self.timers.schedule(s, again);
                    continue;
                }
            };
            if let Some((k, mut st)) = self.remove_stream(s) {
                self.fold_ended(&k, &st);
                report::end_stream(k, &mut st, now, reason, out, delay, counters);
                counters.rtp.streams_ended += 1;
            }
        }
        self.due = due;
    }

    /// Call `serial` ended (`reason`): returns its per-direction quality (caller → callee,
    /// callee → caller) as of now, for its final event. Its streams are marked ended with
    /// `reason` and end (with `stream_end`) once idle for `closed_call_idle`, so packets
    /// still in flight after the BYE are not split into a second stream.
    ///
    /// Only the call's own streams are visited (its list, most recent first; a tie for a
    /// direction's busiest stream goes to the lowest slot, as a walk in slot order had it).
    pub fn close_call(
        &mut self,
        call: CallRef,
        reason: &'static str,
    ) -> (Option<DirectionQuality>, Option<DirectionQuality>) {
        let delay = self.cfg.assumed_delay_ms;
        let closed_idle_us = self.cfg.closed_call_idle.as_micros();
        let mut acc = self.ended.remove(&call.serial).unwrap_or_default();
        let mut next = self.stream_links.first(call);
        while let Some(s) = next {
            next = CallLinks::next(&mut self.streams, s);
            let Some((k, st)) = self.streams.by_slot_mut(s) else {
                continue;
            };
            // A call evicted after it ended: its streams keep the reason it ended with.
            st.closed.get_or_insert(reason);
            // Its idle timeout is now `closed_call_idle`: sooner.
            let again = second_after(st.last_seen.as_micros(), closed_idle_us);
            self.timers.schedule_by(s, again);
            if st.candidate.is_some() {
                continue;
            }
            if let Some(a) = st.toward.and_then(|t| acc.get_mut(direction_index(t))) {
                a.add_at(s, k, st, delay);
            }
        }
        let [to_caller, to_callee] = &acc;
        (to_callee.quality(), to_caller.quality())
    }

    /// Drops a closed call's endpoints (after its linger time); its streams leave its
    /// list (they end on their own). Costs the call's own entries only.
    pub fn forget_call(&mut self, call: CallRef) {
        self.endpoints.forget(call);
        self.detach_streams(call);
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
            if let Some((k, mut st)) = self.remove_stream(s) {
                self.fold_ended(&k, &st);
                let r = st.closed.unwrap_or(reason);
                report::end_stream(k, &mut st, now, r, out, delay, counters);
                counters.rtp.streams_ended += 1;
            }
        }
    }
}

/// Counts one packet of stream `key`, reporting the second before it first if it starts
/// a new one.
#[allow(clippy::too_many_arguments)]
fn on_rtp_packet(
    st: &mut Stream,
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
    if sec > st.second {
        if st.packets_in_second > 0 {
            interval::report_interval(key, st, out, delay_ms);
        }
        if st.packets_in_second == 0 {
            st.second = sec;
        }
    }
    st.capture_loss |= capture_loss;
    st.last_seen = now;
    let pt = pkt.payload_type();
    let (clock, kind) = stream::classify(st, ep, pt, pkt.payload().len());
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
        Some(c) => match c.observe(pkt) {
            Verdict::Pending => 0,
            Verdict::Confirmed => {
                st.candidate = None;
                st.stats.packets()
            }
        },
    };
    if kind == PacketKind::Event {
        dtmf::on_event_packet(now, key, st, pkt, counters, out);
    }
    counters.rtp.packets += newly_counted;
    if st.heuristic {
        counters.rtp.heuristic += newly_counted;
    } else {
        counters.rtp.signalled += newly_counted;
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::track::event::Event;

    #[test]
    fn a_tick_visits_only_the_streams_that_had_packets_or_time_out() {
        let mut m = Media::new(
            MediaConfig {
                streams: 1000,
                ..MediaConfig::default()
            },
            4,
        );
        let id = call_id("c1");
        m.open_call(call(1));
        m.register(call(1), &id, Party::Caller, &offer(CALLER), us(0));
        m.register(call(1), &id, Party::Callee, &offer(CALLEE), us(0));
        for ssrc in 0..1000 {
            send(&mut m, CALLER, CALLEE, ssrc, 1, 1_000_000);
        }
        let (mut c, mut out) = (Counters::default(), Vec::<Event>::new());
        let mut fed = 0;
        let mut tick = |m: &mut Media, out: &mut Vec<Event>, sec: u64| {
            m.tick(us(sec * 1_000_000), &mut c, out, |_, _, _, _, _| fed += 1);
        };
        tick(&mut m, &mut out, 2);
        // Second 1 reported for each, each fed to its call's health.
        assert_eq!(out.len(), 1000);
        assert_eq!(m.timer_work(), 1000);
        // Idle, not yet timed out: nothing is looked at.
        for sec in 3..=30 {
            tick(&mut m, &mut out, sec);
        }
        assert_eq!((out.len(), m.timer_work()), (1000, 1000));
        // 30 s idle is not yet more than the timeout: looked at once more, then ended.
        tick(&mut m, &mut out, 31);
        tick(&mut m, &mut out, 32);
        assert_eq!(m.timer_work(), 3000);
        let ended = out
            .iter()
            .filter(|e| matches!(e, Event::StreamEnd(_)))
            .count();
        assert_eq!((ended, m.stream_stats().len), (1000, 0));
        assert_eq!(fed, 1000);
    }
}
