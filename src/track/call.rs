//! Where a call begins and ends: the per-Call-ID SIP dialog state machine.
//!
//! One record per INVITE dialog, keyed by Call-ID, in a fixed [`Table`]. The rules:
//! * only an INVITE creates a call; other requests and responses for unknown Call-IDs are
//!   counted (`sip.unmatched`), never tracked;
//! * a message identical to one already seen in the call (same start line, CSeq and Via
//!   branch) is a retransmission: counted, never a new call or a second event;
//! * 401/407 to an INVITE is an authentication challenge, not a failure: the next INVITE
//!   in the same Call-ID continues the same call;
//! * the first final response decides: 2xx → `answered`; 487 (Request Terminated, the answer to a CANCEL) → `cancelled`;
//!   any other 3xx–6xx → `failed` (code and reason phrase). Later final responses to
//!   re-INVITEs never end an answered call;
//! * a response to an INVITE, or a CANCEL, for an unknown Call-ID means the sensor joined
//!   mid-setup: the dialog is tracked from there (`calls.joined_late`, no `invite` event);
//! * a re-INVITE/UPDATE whose SDP offer puts the audio on sendonly/inactive (or c=0.0.0.0)
//!   is `hold`; the next one that does not is `resume`;
//! * BYE → `ended`, `ended_by` from the BYE's From tag (the caller's tag or not);
//! * calls that vanish end by timeout (see [`CallTimeouts`]).
//!
//! When the table is full a new INVITE evicts, by eviction class and least recently used
//! first within a class (O(1), see `table.rs`): closed calls lingering for retransmissions
//! ([`CLOSED`]), then unanswered calls nobody responded to ([`UNANSWERED_BARE`]: what an
//! INVITE flood makes), then unanswered calls with a response ([`UNANSWERED`]: 100, 18x),
//! then answered calls with neither
//! media nor signalling for [`ANSWERED_IDLE_EVICTABLE`] ([`ANSWERED_IDLE`]: a real call has
//! media within seconds; hold keeps its RTCP or re-INVITEs). An answered call with recent
//! media or signalling ([`ANSWERED_ACTIVE`]) is never evicted: if only those remain, the new
//! call is rejected and counted.
//!
//! This table knows nothing of media: each step pushes [`CallEffect`]s, in order, into a
//! caller-provided fixed buffer, and the tracker applies them to the media side (endpoints
//! offered, streams ended, media-health watched), all keyed by the call's serial.

use crate::sip::{Message, Method, StartLine, sdp};
use crate::table::{Inserted, Table};
use crate::timer_wheel::{TimerWheel, second_after};
use crate::track::counters::Counters;
use crate::track::digest::Digest;
use crate::track::event::{
    CallEvent, CallEventKind, CallId, Event, Party, Text, Ts, User, fill, text_from,
};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};

/// Default capacity of the call table.
pub const CALLS_DEFAULT: usize = 4096;
/// Recent message fingerprints kept per call for retransmission detection.
const RECENT: usize = 16;

/// Eviction classes of the call table (lowest evicted first), counted per class in the
/// table's `evicted_by_class`.
pub const CLOSED: u8 = 0;
pub const UNANSWERED_BARE: u8 = 1;
pub const UNANSWERED: u8 = 2;
pub const ANSWERED_IDLE: u8 = 3;
pub const ANSWERED_ACTIVE: u8 = 4;
/// An answered call with no RTP/RTCP and no signalling for this long becomes evictable.
pub const ANSWERED_IDLE_EVICTABLE: Duration = Duration::from_secs(10);

/// When a call that vanished is ended.
#[derive(Debug, Clone, Copy)]
pub struct CallTimeouts {
    /// Never answered and no final response: end (`timeout`) this long after the last
    /// signalling (RFC 3261 Timer C is 3 minutes).
    pub setup: Duration,
    /// Answered and media seen: end this long after both media and signalling stopped.
    pub media_grace: Duration,
    /// Answered, on hold or no media ever seen (RTP not mirrored): end this long after the
    /// last signalling.
    pub no_media: Duration,
    /// A closed call is kept this long to absorb retransmissions (64×T1 = 32 s).
    pub linger: Duration,
}

impl Default for CallTimeouts {
    fn default() -> Self {
        CallTimeouts {
            setup: Duration::from_secs(180),
            media_grace: Duration::from_secs(30),
            no_media: Duration::from_secs(3600),
            linger: Duration::from_secs(32),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// INVITE sent, no 18x yet.
    Calling,
    /// 18x seen.
    Proceeding,
    /// 2xx seen.
    Answered,
    /// Final event emitted; kept for `linger` to absorb retransmissions.
    Closed,
}

/// Key of the call table.
pub type CallKey = CallId;

/// What one step of the call table asks of the rest of the tracker, in the order the
/// tracker must apply them (call events interleave with the media work they depend on).
// Kept inline (no `Box`): the buffer lives on the stack for one step and nothing allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum CallEffect {
    /// A finished call event (`Event::Call`): publish it. Held as the `Event` it is
    /// published as, so publishing does not copy it again.
    Event(Event),
    /// A new call, in call-table slot `slot`: start watching its media health.
    Opened { serial: u64, slot: u32 },
    /// `sender` sent the step's SDP ([`CallEffects::sdp`]): it receives media at the
    /// addresses it announces.
    MediaOffered {
        serial: u64,
        slot: u32,
        call_id: CallId,
        sender: Party,
        at: Instant,
    },
    /// The call ended (or was evicted): its streams end with `reason` once idle and its
    /// health is no longer watched. `event`, if any, is its final event: fill in the
    /// per-direction quality from the media side, then publish it.
    Closed {
        serial: u64,
        slot: u32,
        reason: &'static str,
        event: Option<Event>,
    },
    /// A closed call's linger is over: its media endpoints can go.
    Forgotten { serial: u64, slot: u32 },
    /// An answered, open call not on hold: check its media health, silence counted from
    /// `since` (the answer or the latest signalling).
    CheckHealth {
        serial: u64,
        slot: u32,
        call_id: CallId,
        since: Instant,
    },
}

/// Room for the effects of one step. The worst steps push five: a new INVITE with SDP
/// that evicts an open call (closed, evicted event, opened, invite event, media offered),
/// or a late-joined response with SDP that evicts one (closed, evicted event, opened,
/// media offered, then its final or provisional event). One spare.
pub const EFFECTS_MAX: usize = 6;

/// The buffer a step pushes its effects into; the caller drains it after each step.
#[derive(Debug, Default)]
pub struct CallEffects {
    list: heapless::Vec<CallEffect, EFFECTS_MAX>,
    /// The step's SDP, parsed straight into place (`has_sdp`: it is this step's): a
    /// message carries at most one body, so `MediaOffered` refers to it here instead of
    /// carrying a copy (an SDP is ~5 KB; one in each effect made the buffer 30 KB, copied
    /// in and out on every INVITE).
    sdp: sdp::Sdp,
    has_sdp: bool,
}

impl CallEffects {
    pub fn new() -> Self {
        Self::default()
    }

    /// The effects in order, with the step's SDP; [`clear`](Self::clear) empties the
    /// buffer after. Visited in place: a `CallEffect` holds a whole call event (~1 KiB),
    /// and moving each out copied it twice per effect.
    pub fn effects(&mut self) -> (core::slice::IterMut<'_, CallEffect>, Option<&sdp::Sdp>) {
        (self.list.iter_mut(), self.has_sdp.then_some(&self.sdp))
    }

    /// Parses `msg`'s SDP body, if any, as this step's.
    fn read_sdp(&mut self, msg: &Message, counters: &mut Counters) -> bool {
        self.has_sdp = msg.sdp_body().is_some_and(|body| {
            let ok = sdp::parse_into(body, &mut self.sdp).is_ok();
            if !ok {
                counters.sip.sdp_malformed += 1;
            }
            ok
        });
        self.has_sdp
    }

    /// Forgets the step's SDP (after its effects were applied).
    pub fn clear(&mut self) {
        self.list.clear();
        self.has_sdp = false;
    }
}

fn push(fx: &mut CallEffects, e: CallEffect) {
    let pushed = fx.list.push(e).is_ok();
    // EFFECTS_MAX covers the worst step; a miss is a bug here, never packet data.
    debug_assert!(pushed, "call effect buffer too small");
}

pub struct Call {
    /// Unique per call for the tracker's lifetime: how the media side refers to a call.
    pub serial: u64,
    state: State,
    caller: User,
    callee: User,
    caller_tag: heapless::String<64>,
    caller_addr: SocketAddr,
    callee_addr: SocketAddr,
    invite_cseq: u32,
    /// `None` when the sensor joined after the INVITE.
    invite_at: Option<Instant>,
    first_18x_at: Option<Instant>,
    answer_at: Option<Instant>,
    pub last_signal: Instant,
    closed_at: Option<Instant>,
    cancel_seen: bool,
    /// A response to its INVITE was seen (evidence of a real dialog).
    responded: bool,
    challenged: Option<u16>,
    rang: bool,
    early_media: bool,
    on_hold: bool,
    retransmissions: u32,
    recent: heapless::Deque<u64, RECENT>,
}

impl Call {
    pub fn is_answered(&self) -> bool {
        self.answer_at.is_some()
    }
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }
    pub fn on_hold(&self) -> bool {
        self.on_hold
    }

    /// Its eviction class after a message or media (`None`: closed, stays [`CLOSED`]).
    fn active_class(&self) -> Option<u8> {
        match self.state {
            State::Closed => None,
            State::Answered => Some(ANSWERED_ACTIVE),
            _ if self.responded => Some(UNANSWERED),
            _ => Some(UNANSWERED_BARE),
        }
    }
}

/// A deterministic fingerprint of the parts that identify a message: two messages of a
/// call with the same one are a message and its retransmission.
pub fn fingerprint(msg: &Message) -> u64 {
    let mut h = Digest::new();
    match msg.start() {
        StartLine::Request { method_raw, .. } => h.write(method_raw),
        StartLine::Response { code, .. } => h.write(&code.to_be_bytes()),
    }
    if let Some((n, m)) = msg.cseq() {
        h.write(&n.to_be_bytes());
        h.write(&[m as u8]);
    }
    h.write(msg.via_branch().unwrap_or_default());
    if let Some(t) = msg.to().and_then(|t| t.tag) {
        h.write(t);
    }
    h.finish()
}

fn pdd(call: &Call) -> Option<u32> {
    let (i, r) = call.invite_at.zip(call.first_18x_at)?;
    Some(ms_u32(i, r))
}

/// Milliseconds from `a` to `b`: 0 if `b` is earlier (a timestamp that jumped back).
fn ms_between(a: Instant, b: Instant) -> u64 {
    b.checked_duration_since(a)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// [`ms_between`] saturated to `u32` (a garbage jump forward must not wrap to a small value).
fn ms_u32(a: Instant, b: Instant) -> u32 {
    u32::try_from(ms_between(a, b)).unwrap_or(u32::MAX)
}

pub struct Calls {
    table: Table<CallKey, Call>,
    timeouts: CallTimeouts,
    next_serial: u64,
    /// When each call slot next needs looking at (see [`Calls::due_second`]): the
    /// once-a-second expiry visits only those, not every slot.
    timers: TimerWheel,
    /// The slots due this second, in slot order (room for every slot, allocated at start).
    due: Vec<u32>,
    /// Per call slot, beside the table: what RTP packets write (see [`MediaMark`]).
    marks: Vec<MediaMark>,
}

/// A call's last media, kept beside the call table: the RTP path writes these 32 bytes
/// instead of the ~680-byte call record, a cache miss less per packet.
#[derive(Clone, Copy)]
struct MediaMark {
    /// The call these belong to: a slot reused by another call reads as no media yet.
    serial: u64,
    last: Option<Instant>,
    /// The second in which media last settled the call's class and timer, [`UNSETTLED`]
    /// after anything else touched it (a message, its expiry). While it is this second, a
    /// packet only moves `last`: nothing else it could change has changed.
    settled: u64,
}

const UNSETTLED: u64 = u64::MAX;
const NO_MARK: MediaMark = MediaMark {
    serial: 0,
    last: None,
    settled: UNSETTLED,
};

/// Addresses of the message being handled.
#[derive(Clone, Copy)]
pub struct Hop {
    pub now: Instant,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl Calls {
    pub fn new(capacity: usize, timeouts: CallTimeouts) -> Calls {
        let table = Table::new("calls", capacity);
        let slots = table.capacity();
        Calls {
            table,
            timeouts,
            next_serial: 1,
            timers: TimerWheel::new(slots),
            due: Vec::with_capacity(slots),
            marks: vec![NO_MARK; slots],
        }
    }

    /// When call `call` in slot `slot` last had media.
    fn last_media(&self, slot: u32, call: &Call) -> Option<Instant> {
        self.marks
            .get(slot as usize)
            .filter(|m| m.serial == call.serial)
            .and_then(|m| m.last)
    }

    /// Entries the expiry timers looked at, ever (O(due) per second; tests check it).
    pub fn timer_work(&self) -> u64 {
        self.timers.work()
    }

    /// The first second at which [`Calls::expire_next`] could act on call `call` in class
    /// `class` by itself (media health aside, see [`Calls::wake`]): the end of its linger,
    /// its setup or media timeout, or its demotion to [`ANSWERED_IDLE`]. Deadlines are
    /// lazy: a later message or packet only moves them later, and the call is re-checked
    /// and rescheduled when it pops.
    fn due_second(
        call: &Call,
        last_media: Option<Instant>,
        class: Option<u8>,
        t: &CallTimeouts,
    ) -> u64 {
        let after = |from: Instant, d: Duration| second_after(from.as_micros(), d.as_micros());
        match call.state {
            State::Closed => after(call.closed_at.unwrap_or(call.last_signal), t.linger),
            State::Calling | State::Proceeding => after(call.last_signal, t.setup),
            State::Answered => {
                let timeout = match last_media {
                    Some(m) if !call.on_hold => after(m.max(call.last_signal), t.media_grace),
                    _ => after(call.last_signal, t.no_media),
                };
                if class == Some(ANSWERED_ACTIVE) {
                    let last = last_media.map_or(call.last_signal, |m| m.max(call.last_signal));
                    timeout.min(after(last, ANSWERED_IDLE_EVICTABLE))
                } else {
                    timeout
                }
            }
        }
    }

    /// Makes sure call slot `slot` is looked at by the time its own deadline comes, and,
    /// with `soon` (signalling or first media: an answered, open call not on hold has its
    /// media health baseline moved), at the next second. After a look, the health check's
    /// own next change and the streams' wakes ([`Calls::wake`]) bring it back: answered
    /// calls are not re-armed every second.
    fn arm(&mut self, slot: u32, now: Instant, soon: bool) {
        let Some((_, call)) = self.table.by_slot(slot) else {
            self.timers.cancel(slot);
            return;
        };
        if let Some(m) = self.marks.get_mut(slot as usize) {
            m.settled = UNSETTLED; // whatever armed it may have changed its class
        }
        let last_media = self.last_media(slot, call);
        let mut due = Self::due_second(call, last_media, self.table.class_of(slot), &self.timeouts);
        if soon && call.state == State::Answered && !call.on_hold {
            due = due.min(now.as_secs().saturating_add(1));
        }
        self.timers.schedule_by(slot, due);
    }

    /// Call `serial` in slot `slot` needs looking at in second `second` (media health:
    /// its streams carried packets, or a silence threshold passes then).
    pub fn wake(&mut self, slot: u32, serial: u64, second: u64) {
        if self
            .table
            .by_slot(slot)
            .is_some_and(|(_, c)| c.serial == serial)
        {
            self.timers.schedule_by(slot, second);
        }
    }

    pub fn stats(&self) -> crate::table::TableStats {
        self.table.stats()
    }

    /// Heap bytes a call table of `capacity` allocates.
    pub fn memory_bytes(capacity: usize) -> usize {
        Table::<CallKey, Call>::memory_bytes(capacity)
            + TimerWheel::memory_bytes(capacity)
            + capacity.max(1) * core::mem::size_of::<u32>()
            + capacity.max(1) * core::mem::size_of::<MediaMark>()
    }

    /// Media of call `serial`, in call-table slot `slot`, passed at `now`: no lookup by
    /// Call-ID on the RTP path. An answered call with media is protected from eviction.
    pub fn media_seen(&mut self, slot: u32, serial: u64, now: Instant) {
        let Some(m) = self.marks.get_mut(slot as usize) else {
            return;
        };
        if m.serial == serial && m.settled == now.as_secs() {
            m.last = Some(now);
            return;
        }
        let Some((_, call)) = self.table.by_slot(slot) else {
            return;
        };
        if call.serial != serial {
            return;
        }
        let prev = if m.serial == serial { m.last } else { None };
        *m = MediaMark {
            serial,
            last: Some(now),
            settled: UNSETTLED,
        };
        let first = prev.is_none();
        let class = call.active_class();
        let before = self.table.class_of(slot);
        // Relinking the LRU list on every packet costs two more cache misses (its
        // neighbours); once a second per call keeps the order by the second of last use.
        let same_second = prev.is_some_and(|p| p.as_secs() == now.as_secs());
        if let Some(c) = class
            && !(same_second && Some(c) == before)
        {
            self.table.set_class(slot, c);
        }
        // Only the first media (media grace replaces the no-media timeout) or a class
        // change (a demotion to come) can bring the deadline earlier.
        if first || class.is_some_and(|c| Some(c) != before) {
            self.arm(slot, now, true);
        }
        if let Some(m) = self.marks.get_mut(slot as usize) {
            m.settled = now.as_secs();
        }
    }

    /// Call `serial`'s class (tests and the flood tests' reports).
    pub fn class_of(&self, key: &CallKey) -> Option<u8> {
        self.table.class_of(self.table.slot_of(key)?)
    }

    /// Handles one parsed SIP message.
    pub fn on_sip(
        &mut self,
        hop: Hop,
        msg: &Message,
        counters: &mut Counters,
        fx: &mut CallEffects,
    ) {
        if let Some(slot) = self.on_sip_inner(hop, msg, counters, fx) {
            // Whatever the message changed (state, class, hold), the call's timer covers it.
            self.arm(slot, hop.now, true);
        }
    }

    /// [`Calls::on_sip`]; returns the slot of the call the message belongs to.
    fn on_sip_inner(
        &mut self,
        hop: Hop,
        msg: &Message,
        counters: &mut Counters,
        fx: &mut CallEffects,
    ) -> Option<u32> {
        let (Some(raw_id), Some((cseq, cseq_method))) = (msg.call_id(), msg.cseq()) else {
            counters.sip.missing_headers += 1;
            return None;
        };
        if cseq_method == Method::Register {
            if let Some(code) = msg.status() {
                let r = &mut counters.sip.register;
                match code {
                    200..=299 => r.ok += 1,
                    401 | 407 => r.challenged += 1,
                    300.. => r.failed += 1,
                    _ => {}
                }
            } else {
                counters.sip.register.requests += 1;
            }
            return None;
        }
        let key: CallKey = text_from(raw_id);
        if raw_id.len() > key.len() {
            counters.calls.call_id_truncated += 1;
        }
        let fp = fingerprint(msg);
        let exists = self.table.contains(&key);
        if !exists {
            let late = (!msg.is_request() && cseq_method == Method::Invite)
                || msg.method() == Some(Method::Cancel);
            if msg.method() == Some(Method::Invite) || late {
                // A response to an INVITE (or a CANCEL) we did not see: the sensor joined
                // mid-setup. Track the dialog from here so its outcome is not lost.
                if !self.create(hop, key.clone(), msg, cseq, fp, late, counters, fx) {
                    return None;
                }
                if !late {
                    return self.table.slot_of(&key);
                }
            } else {
                counters.sip.unmatched += 1;
                return None;
            }
        }
        let slot = self.table.slot_of(&key)?;
        // Any message of an open call counts as use (least recently used goes first).
        if let Some(c) = self.table.by_slot(slot).and_then(|(_, c)| c.active_class()) {
            self.table.set_class(slot, c);
        }
        let Some((_, call)) = self.table.by_slot_mut(slot) else {
            return Some(slot);
        };
        if exists && call.recent.iter().any(|f| *f == fp) {
            call.retransmissions += 1;
            counters.sip.retransmissions += 1;
            return Some(slot);
        }
        if call.recent.is_full() {
            call.recent.pop_front();
        }
        let _ = call.recent.push_back(fp);
        if call.state == State::Closed {
            return Some(slot);
        }
        call.last_signal = call.last_signal.max(hop.now);
        let serial = call.serial;
        let from_tag = msg.from().and_then(|f| f.tag).unwrap_or_default();
        let from_is_caller = if call.caller_tag.is_empty() {
            hop.src == call.caller_addr
        } else {
            from_tag == call.caller_tag.as_bytes()
        };
        // Who sent this message: requests come from the From party, responses from the other.
        let sender = match (msg.is_request(), from_is_caller) {
            (true, true) | (false, false) => Party::Caller,
            _ => Party::Callee,
        };
        let has_sdp = fx.read_sdp(msg, counters);

        match msg.start() {
            StartLine::Request { method, .. } => match method {
                Method::Invite => {
                    if call.is_answered() {
                        if has_sdp {
                            offer(fx, serial, slot, &key, sender, hop.now);
                            hold_or_resume(call, &key, hop, fx);
                        }
                    } else {
                        // A new INVITE after a challenge (or a forked retry): same call.
                        call.invite_cseq = call.invite_cseq.max(cseq);
                        call.challenged = None;
                        if has_sdp {
                            offer(fx, serial, slot, &key, sender, hop.now);
                        }
                    }
                }
                Method::Update if has_sdp => {
                    offer(fx, serial, slot, &key, sender, hop.now);
                    if call.is_answered() {
                        hold_or_resume(call, &key, hop, fx);
                    }
                }
                // Late offer: the answer rides in the ACK (or PRACK).
                Method::Ack | Method::Prack if has_sdp => {
                    offer(fx, serial, slot, &key, sender, hop.now);
                }
                Method::Cancel => call.cancel_seen = true,
                Method::Bye => {
                    let reason = msg.reason_text().or(msg.reason()).map(text_from);
                    let ended_by = if from_is_caller {
                        Party::Caller
                    } else {
                        Party::Callee
                    };
                    self.close(
                        slot,
                        hop,
                        CallEventKind::Ended,
                        None,
                        reason,
                        Some(ended_by),
                        counters,
                        fx,
                    );
                }
                _ => {}
            },
            StartLine::Response { code, reason } => {
                if has_sdp {
                    offer(fx, serial, slot, &key, sender, hop.now);
                }
                if cseq_method != Method::Invite {
                    // Responses to UPDATE/PRACK/BYE/INFO...: only their SDP matters.
                    return Some(slot);
                }
                if call.is_answered() {
                    // Responses to re-INVITEs (even 4xx/5xx) do not end an answered call.
                    return Some(slot);
                }
                call.responded = true;
                match code {
                    100 => {}
                    101..=199 => {
                        if call.first_18x_at.is_none() {
                            call.first_18x_at = Some(hop.now);
                        }
                        call.state = State::Proceeding;
                        if has_sdp && !call.early_media {
                            call.early_media = true;
                            emit(
                                call,
                                &key,
                                hop,
                                CallEventKind::EarlyMedia,
                                Some(code),
                                Some(reason),
                                fx,
                            );
                        } else if !has_sdp && !call.rang && !call.early_media {
                            call.rang = true;
                            emit(
                                call,
                                &key,
                                hop,
                                CallEventKind::Ringing,
                                Some(code),
                                Some(reason),
                                fx,
                            );
                        }
                    }
                    200..=299 => {
                        call.answer_at = Some(hop.now);
                        call.state = State::Answered;
                        counters.calls.answered += 1;
                        let mut ev = build(call, &key, hop, CallEventKind::Answered);
                        ev.code = Some(code);
                        ev.setup_ms = call.invite_at.map(|i| ms_u32(i, hop.now));
                        ev.pdd_ms = pdd(call);
                        push(fx, CallEffect::Event(Event::Call(ev)));
                    }
                    401 | 407 => call.challenged = Some(code),
                    _ => {
                        // 487 Request Terminated answers a CANCEL (even one we missed).
                        let kind = if code == 487 {
                            CallEventKind::Cancelled
                        } else {
                            CallEventKind::Failed
                        };
                        let reason = Some(text_from(reason));
                        self.close(slot, hop, kind, Some(code), reason, None, counters, fx);
                    }
                }
            }
        }
        if let Some(c) = self.table.by_slot(slot).and_then(|(_, c)| c.active_class()) {
            self.table.set_class(slot, c);
        }
        Some(slot)
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        hop: Hop,
        key: CallKey,
        msg: &Message,
        cseq: u32,
        fp: u64,
        late: bool,
        counters: &mut Counters,
        fx: &mut CallEffects,
    ) -> bool {
        let from = msg.from();
        // For a late join from a response, the caller is the response's destination.
        let (caller_addr, callee_addr) = if late && !msg.is_request() {
            (hop.dst, hop.src)
        } else {
            (hop.src, hop.dst)
        };
        let to = msg.to();
        let mut caller_tag = heapless::String::new();
        if let Some(t) = from.and_then(|f| f.tag) {
            caller_tag = text_from(t);
        }
        let mut recent = heapless::Deque::new();
        let _ = recent.push_back(fp);
        let call = Call {
            serial: self.next_serial,
            state: State::Calling,
            caller: from.and_then(|f| f.user).map(text_from).unwrap_or_default(),
            callee: to.and_then(|t| t.user).map(text_from).unwrap_or_default(),
            caller_tag,
            caller_addr,
            callee_addr,
            invite_cseq: cseq,
            invite_at: (!late).then_some(hop.now),
            first_18x_at: None,
            answer_at: None,
            last_signal: hop.now,
            closed_at: None,
            cancel_seen: false,
            responded: false,
            challenged: None,
            rang: false,
            early_media: false,
            on_hold: false,
            retransmissions: 0,
            recent,
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let ev = build(&call, &key, hop, CallEventKind::Invite);
        let inserted = self
            .table
            .insert(key.clone(), call, UNANSWERED_BARE, ANSWERED_ACTIVE);
        // An evicted call's slot is the one the new call takes.
        let slot = self.table.slot_of(&key).unwrap_or(crate::table::NIL);
        match inserted {
            Inserted::Stored => {}
            Inserted::Evicted(old_key, old) => {
                push(
                    fx,
                    CallEffect::Closed {
                        serial: old.serial,
                        slot,
                        reason: "evicted",
                        event: None,
                    },
                );
                if old.state != State::Closed {
                    counters.calls.evicted += 1;
                    let mut ev = build(&old, &old_key, hop, CallEventKind::Evicted);
                    ev.src = old.caller_addr;
                    ev.dst = old.callee_addr;
                    push(fx, CallEffect::Event(Event::Call(ev)));
                }
            }
            Inserted::Rejected(..) => {
                counters.calls.rejected += 1;
                return false;
            }
        }
        push(fx, CallEffect::Opened { serial, slot });
        counters.calls.attempted += 1;
        if late {
            counters.calls.joined_late += 1;
            return true;
        }
        let mut ev = ev;
        ev.user_agent = msg.user_agent().map(text_from);
        push(fx, CallEffect::Event(Event::Call(ev)));
        if fx.read_sdp(msg, counters) && self.table.contains(&key) {
            offer(fx, serial, slot, &key, Party::Caller, hop.now);
        }
        true
    }

    /// Builds the call's final event (the tracker adds its media quality), marks it closed.
    #[allow(clippy::too_many_arguments)]
    fn close(
        &mut self,
        slot: u32,
        hop: Hop,
        kind: CallEventKind,
        code: Option<u16>,
        reason: Option<Text>,
        ended_by: Option<Party>,
        counters: &mut Counters,
        fx: &mut CallEffects,
    ) {
        let Some((key, call)) = self.table.by_slot_mut(slot) else {
            return;
        };
        if call.state == State::Closed {
            return;
        }
        match kind {
            CallEventKind::Ended => counters.calls.ended += 1,
            CallEventKind::Failed => counters.calls.failed += 1,
            CallEventKind::Cancelled => counters.calls.cancelled += 1,
            CallEventKind::Timeout => counters.calls.timed_out += 1,
            CallEventKind::SensorStopped => counters.calls.open_at_stop += 1,
            _ => {}
        }
        let stream_reason = match kind {
            CallEventKind::Timeout => "timeout",
            CallEventKind::SensorStopped => {
                if reason.as_deref() == Some("end_of_capture") {
                    "end_of_capture"
                } else {
                    "sensor_stopped"
                }
            }
            _ => "call_ended",
        };
        let mut ev = build(call, key, hop, kind);
        ev.code = code;
        ev.reason = reason;
        ev.ended_by = ended_by;
        ev.setup_ms = call
            .invite_at
            .zip(call.answer_at)
            .map(|(i, a)| ms_u32(i, a));
        ev.pdd_ms = pdd(call);
        ev.duration_ms = call.answer_at.map(|a| ms_between(a, hop.now));
        if matches!(kind, CallEventKind::Timeout | CallEventKind::SensorStopped) {
            ev.src = call.caller_addr;
            ev.dst = call.callee_addr;
        }
        call.state = State::Closed;
        call.closed_at = Some(hop.now);
        push(
            fx,
            CallEffect::Closed {
                serial: call.serial,
                slot,
                reason: stream_reason,
                event: Some(Event::Call(ev)),
            },
        );
        self.table.set_class(slot, CLOSED);
    }

    /// Once a second of packet time, before [`Calls::expire_next`]: takes the calls whose
    /// timers are due by `now` (and only those), in slot order, so events come out in the
    /// order a walk of every slot had them.
    pub fn collect_due(&mut self, now: Instant) {
        self.due.clear();
        self.timers.pop_due(now.as_secs(), &mut self.due);
        self.due.sort_unstable();
    }

    /// One due call at a time (`i`: its place among those [`Calls::collect_due`] took):
    /// it ends if it vanished, is forgotten if its linger is over, or has its media health
    /// checked; then its timer is set again. Returns where the next step starts (`None`:
    /// all done), so the caller applies each call's effects before the next call is looked
    /// at.
    pub fn expire_next(
        &mut self,
        now: Instant,
        i: usize,
        counters: &mut Counters,
        fx: &mut CallEffects,
    ) -> Option<usize> {
        let s = *self.due.get(i)?;
        self.expire_slot(now, s, counters, fx);
        self.arm(s, now, false);
        Some(i + 1)
    }

    fn expire_slot(&mut self, now: Instant, s: u32, counters: &mut Counters, fx: &mut CallEffects) {
        let t = self.timeouts;
        let Some((_, call)) = self.table.by_slot(s) else {
            return;
        };
        let idle_sig = now.saturating_duration_since(call.last_signal);
        match call.state {
            State::Closed => {
                let closed = call.closed_at.unwrap_or(call.last_signal);
                if now.saturating_duration_since(closed) > t.linger
                    && let Some((_, c)) = self.table.remove_slot(s)
                {
                    push(
                        fx,
                        CallEffect::Forgotten {
                            serial: c.serial,
                            slot: s,
                        },
                    );
                }
            }
            State::Calling | State::Proceeding => {
                if idle_sig > t.setup {
                    let (code, kind) = match call.challenged {
                        Some(c) => (Some(c), CallEventKind::Failed),
                        None if call.cancel_seen => (None, CallEventKind::Cancelled),
                        None => (None, CallEventKind::Timeout),
                    };
                    let hop = Hop {
                        now,
                        src: call.caller_addr,
                        dst: call.callee_addr,
                    };
                    self.close(s, hop, kind, code, None, None, counters, fx);
                }
            }
            State::Answered => {
                let last_media = self.last_media(s, call);
                let expired = match last_media {
                    Some(m) if !call.on_hold => {
                        let last = m.max(call.last_signal);
                        now.saturating_duration_since(last) > t.media_grace
                    }
                    _ => idle_sig > t.no_media,
                };
                if expired {
                    let hop = Hop {
                        now,
                        src: call.caller_addr,
                        dst: call.callee_addr,
                    };
                    self.close(
                        s,
                        hop,
                        CallEventKind::Timeout,
                        None,
                        None,
                        None,
                        counters,
                        fx,
                    );
                } else {
                    // No media nor signalling for a while (a spoofed 200 OK, media not
                    // mirrored): evictable before calls with media.
                    let last = last_media.map_or(call.last_signal, |m| m.max(call.last_signal));
                    if now.saturating_duration_since(last) > ANSWERED_IDLE_EVICTABLE
                        && self.table.class_of(s) == Some(ANSWERED_ACTIVE)
                    {
                        self.table.set_class(s, ANSWERED_IDLE);
                    }
                }
                if !expired
                    && let Some((key, call)) = self.table.by_slot(s)
                    && !call.on_hold
                {
                    // Media health: silence counted from the answer or the latest
                    // signalling (a resume re-INVITE restarts it), never while on hold.
                    let since = call
                        .answer_at
                        .map_or(call.last_signal, |a| a.max(call.last_signal));
                    push(
                        fx,
                        CallEffect::CheckHealth {
                            serial: call.serial,
                            slot: s,
                            call_id: key.clone(),
                            since,
                        },
                    );
                }
            }
        }
    }

    /// Ends the first open call at or after slot `from` (`sensor_stopped`, reason
    /// `end_of_capture` or `sensor_stopped`). Returns where the next step starts.
    pub fn stop_next(
        &mut self,
        now: Instant,
        reason: &str,
        from: u32,
        counters: &mut Counters,
        fx: &mut CallEffects,
    ) -> Option<u32> {
        let s = self.table.next_slot(from)?;
        let Some((_, call)) = self.table.by_slot(s) else {
            return Some(s + 1);
        };
        let hop = Hop {
            now,
            src: call.caller_addr,
            dst: call.callee_addr,
        };
        let mut r = Text::new();
        fill(&mut r, reason);
        self.close(
            s,
            hop,
            CallEventKind::SensorStopped,
            None,
            Some(r),
            None,
            counters,
            fx,
        );
        Some(s + 1)
    }
}

/// `sender`'s SDP (the step's, in `fx`), for the media side to register.
fn offer(fx: &mut CallEffects, serial: u64, slot: u32, key: &CallKey, sender: Party, at: Instant) {
    push(
        fx,
        CallEffect::MediaOffered {
            serial,
            slot,
            call_id: key.clone(),
            sender,
            at,
        },
    );
}

/// Hold or resume, by the step's SDP in `fx`.
fn hold_or_resume(call: &mut Call, key: &CallKey, hop: Hop, fx: &mut CallEffects) {
    if !fx.has_sdp {
        return;
    }
    let s = &fx.sdp;
    let mut audio = s
        .media
        .iter()
        .filter(|m| m.kind == sdp::MediaKind::Audio)
        .peekable();
    if audio.peek().is_none() {
        return; // e.g. a T.38 re-INVITE: neither hold nor resume
    }
    let hold = audio.all(|m| m.is_hold());
    if hold != call.on_hold {
        call.on_hold = hold;
        let kind = if hold {
            CallEventKind::Hold
        } else {
            CallEventKind::Resume
        };
        emit(call, key, hop, kind, None, None, fx);
    }
}

fn build(call: &Call, key: &CallKey, hop: Hop, kind: CallEventKind) -> CallEvent {
    CallEvent {
        call_id: key.clone(),
        caller: call.caller.clone(),
        callee: call.callee.clone(),
        retransmissions: call.retransmissions,
        ..CallEvent::new(Ts::from_instant(hop.now), kind, hop.src, hop.dst)
    }
}

fn emit(
    call: &Call,
    key: &CallKey,
    hop: Hop,
    kind: CallEventKind,
    code: Option<u16>,
    reason: Option<&[u8]>,
    fx: &mut CallEffects,
) {
    let mut ev = build(call, key, hop, kind);
    ev.code = code;
    ev.reason = reason.map(text_from);
    push(fx, CallEffect::Event(Event::Call(ev)));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                       m=audio 4000 RTP/AVP 0\r\n";

    fn hop(t: u64, src: &str, dst: &str) -> Hop {
        Hop {
            now: Instant::from_secs(t),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        }
    }

    fn request(method: &str, call_id: &str, cseq: u32, body: &str) -> String {
        format!(
            "{method} sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{cseq}{method}\r\n\
             From: <sip:alice@10.0.0.1>;tag=a1\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn step(calls: &mut Calls, h: Hop, text: &str) -> Vec<CallEffect> {
        let msg = Message::parse(text.as_bytes()).unwrap();
        let mut fx = CallEffects::new();
        calls.on_sip(h, &msg, &mut Counters::default(), &mut fx);
        fx.list.into_iter().collect()
    }

    /// One expiry tick at `now`, as the tracker runs it: the calls that timed out.
    fn tick_timeouts(calls: &mut Calls, now: Instant, c: &mut Counters) -> usize {
        calls.collect_due(now);
        let (mut i, mut fx, mut n) = (0, CallEffects::new(), 0);
        while let Some(next) = calls.expire_next(now, i, c, &mut fx) {
            n += fx
                .list
                .drain(..)
                .filter(|e| {
                    matches!(
                        e,
                        CallEffect::Closed {
                            reason: "timeout",
                            ..
                        }
                    )
                })
                .count();
            i = next;
        }
        n
    }

    const A: &str = "10.0.0.1:5060";
    const B: &str = "10.0.0.2:5060";

    fn response(code: u16, reason: &str, call_id: &str) -> String {
        format!(
            "SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1INVITE\r\n\
             From: <sip:alice@10.0.0.1>;tag=a1\r\nTo: <sip:bob@10.0.0.2>;tag=b1\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn event_of(fx: &[CallEffect], kind: CallEventKind) -> &CallEvent {
        fx.iter()
            .find_map(|e| match e {
                CallEffect::Event(Event::Call(ev)) if ev.event == kind => Some(ev),
                CallEffect::Closed {
                    event: Some(Event::Call(ev)),
                    ..
                } if ev.event == kind => Some(ev),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {kind:?} in {fx:?}"))
    }

    #[test]
    fn durations_saturate_on_a_huge_jump_forward_and_are_zero_after_a_jump_back() {
        let mut calls = Calls::new(4, CallTimeouts::default());
        step(&mut calls, hop(10, A, B), &request("INVITE", "j1", 1, ""));
        // 180 stamped before the INVITE (a clock stepped back): 0 ms, not a wrap.
        step(&mut calls, hop(5, B, A), &response(180, "Ringing", "j1"));
        // 200 some 136 years later (a garbage timestamp): u32::MAX, not the remainder.
        let far = 10 + u64::from(u32::MAX) / 1000 * 2;
        let fx = step(&mut calls, hop(far, B, A), &response(200, "OK", "j1"));
        let answered = event_of(&fx, CallEventKind::Answered);
        assert_eq!(answered.pdd_ms, Some(0));
        assert_eq!(answered.setup_ms, Some(u32::MAX));
        // BYE stamped before the answer: a duration of 0, the setup still saturated.
        let fx = step(&mut calls, hop(11, A, B), &request("BYE", "j1", 2, ""));
        let ended = event_of(&fx, CallEventKind::Ended);
        assert_eq!(ended.duration_ms, Some(0));
        assert_eq!((ended.setup_ms, ended.pdd_ms), (Some(u32::MAX), Some(0)));
    }

    #[test]
    fn an_invite_with_sdp_opens_the_call_then_offers_the_callers_media() {
        let mut calls = Calls::new(4, CallTimeouts::default());
        let fx = step(&mut calls, hop(1, A, B), &request("INVITE", "x1", 1, SDP));
        let [
            CallEffect::Opened { serial: 1, .. },
            CallEffect::Event(Event::Call(ev)),
            CallEffect::MediaOffered {
                serial: 1,
                slot: 0,
                call_id,
                sender: Party::Caller,
                ..
            },
        ] = &fx[..]
        else {
            panic!("{fx:?}")
        };
        assert_eq!(ev.event, CallEventKind::Invite);
        assert_eq!(call_id.as_str(), "x1");
        let mut fx = CallEffects::new();
        let mut other = Calls::new(4, CallTimeouts::default());
        let msg = request("INVITE", "x1", 1, SDP);
        let msg = Message::parse(msg.as_bytes()).unwrap();
        other.on_sip(hop(1, A, B), &msg, &mut Counters::default(), &mut fx);
        assert_eq!(fx.effects().1.map(|s| s.media.len()), Some(1));
        let again = step(&mut calls, hop(2, A, B), &request("INVITE", "x1", 1, SDP));
        assert!(again.is_empty(), "a retransmission asks nothing: {again:?}");
    }

    #[test]
    fn a_bye_closes_the_calls_media_with_its_final_event() {
        let mut calls = Calls::new(4, CallTimeouts::default());
        step(&mut calls, hop(1, A, B), &request("INVITE", "x1", 1, ""));
        let fx = step(&mut calls, hop(9, A, B), &request("BYE", "x1", 2, ""));
        let [
            CallEffect::Closed {
                serial: 1,
                reason: "call_ended",
                event: Some(Event::Call(ev)),
                ..
            },
        ] = &fx[..]
        else {
            panic!("{fx:?}")
        };
        assert_eq!(ev.event, CallEventKind::Ended);
        assert_eq!(ev.ended_by, Some(Party::Caller));
        assert!(
            ev.quality_caller.is_none(),
            "quality is the media side's to add"
        );
    }

    #[test]
    fn expiry_checks_health_of_answered_calls_and_forgets_closed_ones() {
        let t = CallTimeouts::default();
        let mut calls = Calls::new(4, t);
        let mut c = Counters::default();
        step(&mut calls, hop(1, A, B), &request("INVITE", "x1", 1, ""));
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1INVITE\r\n\
                  From: <sip:alice@10.0.0.1>;tag=a1\r\nTo: <sip:bob@10.0.0.2>;tag=b1\r\n\
                  Call-ID: x1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        step(&mut calls, hop(2, B, A), ok);
        let mut fx = CallEffects::new();
        calls.collect_due(Instant::from_secs(3));
        assert_eq!(
            calls.expire_next(Instant::from_secs(3), 0, &mut c, &mut fx),
            Some(1)
        );
        assert!(
            matches!(&fx.list[..], [CallEffect::CheckHealth { serial: 1, since, .. }] if *since == Instant::from_secs(2)),
            "{fx:?}"
        );
        assert_eq!(
            calls.expire_next(Instant::from_secs(3), 1, &mut c, &mut fx),
            None
        );
        step(&mut calls, hop(5, A, B), &request("BYE", "x1", 2, ""));
        let after_linger = Instant::from_secs(6) + t.linger;
        let mut fx = CallEffects::new();
        calls.collect_due(after_linger);
        calls.expire_next(after_linger, 0, &mut c, &mut fx);
        assert!(
            matches!(&fx.list[..], [CallEffect::Forgotten { serial: 1, slot: 0 }]),
            "{fx:?}"
        );
        assert_eq!(calls.stats().len, 0);
    }

    #[test]
    fn the_last_packet_of_a_second_not_its_first_starts_the_media_timeout() {
        let t = CallTimeouts::default();
        let mut calls = Calls::new(4, t);
        let mut c = Counters::default();
        step(&mut calls, hop(1, A, B), &request("INVITE", "x1", 1, ""));
        step(&mut calls, hop(2, B, A), &response(200, "OK", "x1"));
        // Three packets in second 10: the first settles the call, the others only move
        // its last media (they take the mark's fast path).
        for ms in [10_000, 10_300, 10_900] {
            calls.media_seen(0, 1, Instant::from_millis(ms));
        }
        // Ticks half-way through each second, as a packet half a second in would bring.
        let mut timed_out = |now: Instant| tick_timeouts(&mut calls, now, &mut c);
        let grace = t.media_grace.as_secs();
        // At 10.5 s + grace the second's first packet is past the grace, its last not.
        for sec in 11..=10 + grace {
            assert_eq!(
                timed_out(Instant::from_millis(sec * 1000 + 500)),
                0,
                "{sec}.5 s"
            );
        }
        assert_eq!(
            timed_out(Instant::from_millis((11 + grace) * 1000 + 500)),
            1
        );
    }

    #[test]
    fn a_full_table_closes_the_evicted_calls_media_before_opening_the_new_one() {
        let mut calls = Calls::new(1, CallTimeouts::default());
        step(&mut calls, hop(1, A, B), &request("INVITE", "x1", 1, ""));
        let fx = step(&mut calls, hop(2, A, B), &request("INVITE", "x2", 1, ""));
        let [
            CallEffect::Closed {
                serial: 1,
                slot: 0,
                reason: "evicted",
                event: None,
            },
            CallEffect::Event(Event::Call(evicted)),
            CallEffect::Opened { serial: 2, .. },
            CallEffect::Event(Event::Call(invite)),
        ] = &fx[..]
        else {
            panic!("{fx:?}")
        };
        assert_eq!(evicted.event, CallEventKind::Evicted);
        assert_eq!(invite.call_id.as_str(), "x2");
    }

    #[test]
    fn answered_calls_without_media_are_not_looked_at_every_second() {
        let mut calls = Calls::new(1000, CallTimeouts::default());
        let mut c = Counters::default();
        for n in 0..1000 {
            let id = format!("a{n}");
            step(&mut calls, hop(1, A, B), &request("INVITE", &id, 1, ""));
            step(&mut calls, hop(1, B, A), &response(200, "OK", &id));
        }
        // The second after the answer (media health baseline), then second 11 (exactly
        // 10 s idle: not yet) and 12 (demoted to class 3); nothing else until the no-media
        // timeout. Media health's own thresholds and the streams wake a call (`wake`);
        // re-arming every answered call each second made this 599,000.
        let mut work = Vec::new();
        for sec in 2..=600 {
            tick_timeouts(&mut calls, Instant::from_secs(sec), &mut c);
            work.push(calls.timer_work());
        }
        assert_eq!(calls.timer_work(), 3000, "{:?}", &work[..20]);
        assert_eq!(calls.stats().len, 1000);
    }

    #[test]
    fn idle_calls_cost_the_expiry_nothing_until_they_are_due() {
        let mut calls = Calls::new(1000, CallTimeouts::default());
        let mut c = Counters::default();
        for n in 0..1000 {
            step(
                &mut calls,
                hop(1, A, B),
                &request("INVITE", &format!("i{n}"), 1, ""),
            );
        }
        let mut tick =
            |calls: &mut Calls, sec: u64| tick_timeouts(calls, Instant::from_secs(sec), &mut c);
        // Up to second 180 nothing is due: no call is even looked at.
        for sec in 2..=180 {
            assert_eq!(tick(&mut calls, sec), 0);
        }
        assert_eq!(calls.timer_work(), 0);
        // Second 181 is exactly 180 s after the INVITEs (not yet over): looked at, re-armed.
        assert_eq!(tick(&mut calls, 181), 0);
        assert_eq!(calls.timer_work(), 1000);
        assert_eq!(tick(&mut calls, 182), 1000);
        assert_eq!(calls.timer_work(), 2000);
        // Closed, they linger 32 s, then are forgotten, again without a walk.
        for sec in 183..=213 {
            tick(&mut calls, sec);
        }
        assert_eq!((calls.timer_work(), calls.stats().len), (2000, 1000));
        tick(&mut calls, 214);
        tick(&mut calls, 215);
        assert_eq!((calls.timer_work(), calls.stats().len), (4000, 0));
    }
}
