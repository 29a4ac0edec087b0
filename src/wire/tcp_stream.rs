//! TCP stream reassembly for message-oriented protocols (SIP over TCP), protocol-agnostic:
//! the caller supplies the framing rule (a [`Framer`]), so `wire/` does not depend on `sip/`.
//! The rule is run over the buffered head after every segment; a [`FrameHint`] kept in the
//! stream's slot lets it go on where it stopped, so a message cut into tiny segments is
//! still framed in time linear in its bytes (issue 11).
//!
//! Each direction of a connection is one stream. Its bytes live in the `i`-th
//! [`SLOT_BYTES`] chunk of the slot pool (table slot `i`), enough for nearly every SIP
//! message; a stream whose undelivered bytes outgrow that borrows a full-size buffer
//! (`buf_size`) from a shared pool of [`TcpStreams::large_buffers`] and gives it back as
//! soon as its bytes fit the slot again. Both pools are allocated in [`TcpStreams::new`],
//! so nothing is allocated per segment and memory is bounded by the capacity, not by the
//! traffic. When the shared pool is exhausted the stream stays in its slot: a message
//! larger than the slot is then flushed like any overflow, and `pool_exhausted` counts it.
//! The buffer holds the undelivered in-order bytes at its head, and segments that arrived
//! past a gap at their offsets behind it (up to [`MAX_HELD`] ranges). A gap that is not filled within [`GAP_TIMEOUT`], or
//! a segment that cannot be held, makes the stream resync past the gap: on a mirror port
//! a lost segment may never be seen again, even though the endpoints recovered it.

use super::TcpFlags;
use crate::table::{Inserted, Table, TableStats};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

/// Bytes of a stream's own buffer (per table slot).
pub const SLOT_BYTES: usize = 2048;
/// One full-size buffer in the shared pool per this many streams (at least one).
pub const STREAMS_PER_LARGE: usize = 16;

/// Out-of-order ranges held per stream past the first gap.
pub const MAX_HELD: usize = 4;
/// How long a gap may stay open before the stream skips it.
pub const GAP_TIMEOUT: Duration = Duration::from_secs(1);
/// Sequence distances beyond this are not retransmissions but a different byte stream
/// (a connection reused the 4-tuple while its SYN was missed).
const WILD_DISTANCE: i64 = 1 << 30;

/// One direction of a TCP connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FlowKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// By whole words, as the stream key is (`track::media::stream::StreamKey`): every segment
/// looks its flow up, and the derived hash, feeding each `SocketAddr` to the hasher field by
/// field, was 11 % of a flood of new flows. An IPv4 key is one 128-bit write. Equal keys
/// hash equal: only fields `Eq` compares are used.
impl core::hash::Hash for FlowKey {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        let ports = u64::from(self.src.port()) << 16 | u64::from(self.dst.port());
        match (self.src, self.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                let ips = u64::from(s.ip().to_bits()) << 32 | u64::from(d.ip().to_bits());
                h.write_u128(u128::from(ips) << 64 | u128::from(ports));
            }
            (s, d) => super::hash_v6_pair(h, s, d, ports),
        }
    }
}

/// What the caller's framer says of the head of the buffered bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framing {
    /// The first `n` bytes are one complete message.
    Complete(usize),
    /// No complete message yet.
    NeedMore,
    /// The first `n` bytes are not the start of a message: drop them.
    Skip(usize),
}

/// A framer's resume state for a stream's current head, kept in the stream's slot. `wire`
/// never reads it: it hands the framer what it left on the previous call for the same head
/// and resets it to `default()` whenever the head moves (message delivered, bytes skipped,
/// resync, flush, new connection). The framer gives the words their meaning (SIP: how far
/// the start line and headers are checked, the message's total once known).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct FrameHint {
    pub phase: u8,
    pub at: [u32; 4],
    /// Bytes the framer examined on this head, all calls together (tests check linearity).
    pub examined: u32,
}

/// The framing rule [`TcpStreams::segment`] applies to a stream's buffered head.
pub trait Framer {
    /// What `head` starts with; `hint` is this head's resume state (see [`FrameHint`]).
    fn frame(&mut self, head: &[u8], hint: &mut FrameHint) -> Framing;
}

/// A rule that reads only a few header bytes (RFC 4571, TURN, the tests' lines) needs no
/// resume state: any `FnMut(&[u8]) -> Framing` is a framer.
impl<F: FnMut(&[u8]) -> Framing> Framer for F {
    fn frame(&mut self, head: &[u8], _: &mut FrameHint) -> Framing {
        self(head)
    }
}

/// A rule that resumes: `Resuming(|head, hint| ...)`.
pub struct Resuming<F>(pub F);

impl<F: FnMut(&[u8], &mut FrameHint) -> Framing> Framer for Resuming<F> {
    fn frame(&mut self, head: &[u8], hint: &mut FrameHint) -> Framing {
        (self.0)(head, hint)
    }
}

/// Counters of TCP reassembly (published in `summary`/`health`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCounters {
    pub segments: u64,
    /// Payload bytes accepted into stream buffers (in order or held).
    pub bytes: u64,
    /// Complete messages delivered.
    pub messages: u64,
    /// Segments whose every byte had been seen already.
    pub retransmitted_segments: u64,
    /// Bytes dropped because already seen (whole or partial retransmissions).
    pub retransmitted_bytes: u64,
    /// Segments held past a gap.
    pub out_of_order: u64,
    /// Gaps given up on (timeout, no room to hold, or a wild sequence jump).
    pub resyncs: u64,
    /// Bytes dropped at a resync: the incomplete message before a skipped gap.
    pub resync_bytes: u64,
    /// Bytes the framer skipped as garbage.
    pub garbage_bytes: u64,
    /// Buffers flushed because they filled without a complete message.
    pub overflows: u64,
    pub streams_opened: u64,
    /// Streams freed by FIN or RST.
    pub streams_closed: u64,
    /// Streams evicted (least recently used) to make room.
    pub streams_evicted: u64,
    /// Streams dropped after the idle timeout.
    pub streams_expired: u64,
    /// Times a stream outgrew its slot and the shared pool had no buffer left.
    pub pool_exhausted: u64,
    /// Shared full-size buffers lent out (a stream outgrew its slot).
    pub large_borrowed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    /// Sequence number of the buffer's first byte.
    base_seq: u32,
    /// In-order bytes at the head of the buffer.
    len: usize,
    /// Ranges `[start, end)` (buffer offsets, sorted, disjoint, all `> len`) past a gap.
    held: [(usize, usize); MAX_HELD],
    nheld: usize,
    gap_since: Option<Instant>,
    last_seen: Instant,
    /// Index of the shared full-size buffer holding the bytes, if borrowed.
    large: Option<u16>,
    /// The framer's resume state for the head.
    hint: FrameHint,
}

impl Stream {
    fn new(base_seq: u32, now: Instant) -> Self {
        Stream {
            base_seq,
            len: 0,
            held: [(0, 0); MAX_HELD],
            nheld: 0,
            gap_since: None,
            last_seen: now,
            large: None,
            hint: FrameHint::default(),
        }
    }
    fn next_seq(&self) -> u32 {
        self.base_seq.wrapping_add(self.len as u32)
    }
    /// End of the bytes in use (in-order and held).
    fn used_end(&self) -> usize {
        match self.nheld {
            0 => self.len,
            n => self.held.get(n - 1).map_or(self.len, |r| r.1),
        }
    }
    fn held(&self) -> &[(usize, usize)] {
        self.held.get(..self.nheld).unwrap_or(&[])
    }
}

/// The shared full-size buffers and the stack of free ones (never reallocated: it is
/// created with room for every index).
struct LargePool {
    bytes: Vec<u8>,
    size: usize,
    free: Vec<u16>,
}

impl LargePool {
    fn new(count: usize, size: usize) -> Self {
        LargePool {
            bytes: vec![0; count * size],
            size,
            free: (0..count as u16).rev().collect(),
        }
    }
    fn chunk(&mut self, i: u16) -> &mut [u8] {
        let at = i as usize * self.size;
        self.bytes.get_mut(at..at + self.size).unwrap_or(&mut [])
    }
    fn release(&mut self, s: &mut Stream) {
        if let Some(i) = s.large.take() {
            self.free.push(i);
        }
    }
}

/// The streams table and its buffer pools.
pub struct TcpStreams {
    table: Table<FlowKey, Stream>,
    /// One [`SLOT_BYTES`] (or `buf_size`, if smaller) chunk per table slot.
    slots: Vec<u8>,
    slot_size: usize,
    large: LargePool,
    idle_timeout: Duration,
    counters: TcpCounters,
    /// Streams `expire` looked at, ever (the O(expired) claim, checked by tests).
    expire_work: u64,
}

impl TcpStreams {
    /// Shared full-size buffers for `capacity` streams.
    pub fn large_buffers(capacity: usize) -> usize {
        capacity
            .div_ceil(STREAMS_PER_LARGE)
            .clamp(1, u16::MAX as usize)
    }

    /// Heap bytes `new(capacity, buf_size, _)` allocates.
    pub fn memory_bytes(capacity: usize, buf_size: usize) -> usize {
        let buf_size = buf_size.max(1);
        Table::<FlowKey, Stream>::memory_bytes(capacity)
            + capacity * buf_size.min(SLOT_BYTES)
            + Self::large_buffers(capacity) * (buf_size + 2)
    }

    /// Allocates the table, a slot chunk per stream and the shared full-size buffers now;
    /// `buf_size` is the largest message a stream can reassemble.
    pub fn new(capacity: usize, buf_size: usize, idle_timeout: Duration) -> Self {
        let table = Table::new("tcp_streams", capacity);
        let buf_size = buf_size.max(1);
        let slot_size = buf_size.min(SLOT_BYTES);
        let slots = vec![0; table.capacity() * slot_size];
        TcpStreams {
            large: LargePool::new(Self::large_buffers(table.capacity()), buf_size),
            table,
            slots,
            slot_size,
            idle_timeout,
            counters: TcpCounters::default(),
            expire_work: 0,
        }
    }

    /// Shared full-size buffers not lent out.
    pub fn large_free(&self) -> usize {
        self.large.free.len()
    }

    pub fn counters(&self) -> TcpCounters {
        self.counters
    }

    pub fn stats(&self) -> TableStats {
        self.table.stats()
    }

    /// Whether this direction of a connection already has a reassembly buffer.
    pub fn contains(&self, key: &FlowKey) -> bool {
        self.table.contains(key)
    }

    /// Feeds one segment; see the module doc. `framer` judges the buffered head, `deliver`
    /// receives each complete message exactly once.
    // The signature is the tracker's contract: one segment plus the two closures.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        now: Instant,
        key: FlowKey,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        mut framer: impl Framer,
        mut deliver: impl FnMut(&[u8]),
    ) {
        self.counters.segments += 1;
        if flags.rst {
            if let Some(mut s) = self.table.remove(&key) {
                self.large.release(&mut s);
                self.counters.streams_closed += 1;
            }
            return;
        }
        // Data starts one past the SYN's sequence number.
        let data_seq = if flags.syn { seq.wrapping_add(1) } else { seq };
        let slot = match self.table.slot_of(&key) {
            Some(slot) => {
                if flags.syn
                    && let Some((_, s)) = self.table.by_slot_mut(slot)
                    && s.base_seq != data_seq
                {
                    // A new connection on the same 4-tuple.
                    self.large.release(s);
                    *s = Stream::new(data_seq, now);
                }
                // Most recently used: last to be evicted, last to time out.
                self.table.touch(slot);
                slot
            }
            None => {
                if payload.is_empty() && !flags.syn {
                    return;
                }
                // Without a SYN this is a mid-stream start: the framer resyncs with Skip.
                // One class (0): when full, the least recently used stream goes, in O(1).
                match self.table.insert(key, Stream::new(data_seq, now), 0, 1) {
                    Inserted::Stored => {}
                    Inserted::Evicted(_, mut old) => {
                        self.large.release(&mut old);
                        self.counters.streams_evicted += 1;
                    }
                    Inserted::Rejected(..) => return,
                }
                self.counters.streams_opened += 1;
                match self.table.slot_of(&key) {
                    Some(slot) => slot,
                    None => return,
                }
            }
        };
        let base = slot as usize * self.slot_size;
        if let (Some((_, s)), Some(small)) = (
            self.table.by_slot_mut(slot),
            self.slots.get_mut(base..base + self.slot_size),
        ) {
            s.last_seen = now;
            let mut io = Io {
                small,
                large: &mut self.large,
                c: &mut self.counters,
                framer: &mut framer,
                deliver: &mut deliver,
            };
            io.ingest(s, now, data_seq, payload);
            io.shrink(s);
            if flags.fin {
                self.large.release(s);
            }
        }
        if flags.fin {
            self.table.discard_slot(slot);
            self.counters.streams_closed += 1;
        }
    }

    /// Drops streams idle for the idle timeout (their undelivered bytes are lost). Every
    /// segment touches its stream, so the least recently used end of the table's list is the
    /// stream idle longest: pop from there and stop at the first still active, O(expired).
    pub fn expire(&mut self, now: Instant) {
        while let Some(slot) = self.table.lru(0) {
            self.expire_work += 1;
            let idle = self.table.by_slot(slot).is_some_and(|(_, s)| {
                now.saturating_duration_since(s.last_seen) >= self.idle_timeout
            });
            if !idle {
                break;
            }
            if let Some((_, s)) = self.table.by_slot_mut(slot) {
                self.large.release(s);
            }
            self.table.discard_slot(slot);
            self.counters.streams_expired += 1;
        }
    }

    /// Streams [`expire`](Self::expire) looked at since construction.
    pub fn expire_work(&self) -> u64 {
        self.expire_work
    }
}

/// One stream's buffers plus the caller's closures, for the duration of one segment.
struct Io<'b, F, D> {
    /// The stream's slot chunk.
    small: &'b mut [u8],
    large: &'b mut LargePool,
    c: &'b mut TcpCounters,
    framer: &'b mut F,
    deliver: &'b mut D,
}

/// The buffer holding `s`'s bytes: its borrowed full-size buffer, else its slot chunk.
fn buf_of<'a>(small: &'a mut [u8], large: &'a mut LargePool, s: &Stream) -> &'a mut [u8] {
    match s.large {
        Some(i) => large.chunk(i),
        None => small,
    }
}

impl<F: Framer, D: FnMut(&[u8])> Io<'_, F, D> {
    fn buf(&mut self, s: &Stream) -> &mut [u8] {
        buf_of(self.small, self.large, s)
    }

    /// Room for `end` buffered bytes, moving to a shared full-size buffer if the slot is
    /// too small and one is free.
    fn room(&mut self, s: &mut Stream, end: usize) -> bool {
        if end <= self.buf(s).len() {
            return true;
        }
        if s.large.is_some() || end > self.large.size {
            return false;
        }
        let Some(i) = self.large.free.pop() else {
            self.c.pool_exhausted += 1;
            return false;
        };
        let used = s.used_end();
        let (from, to) = (self.small.get(..used), self.large.chunk(i).get_mut(..used));
        if let (Some(from), Some(to)) = (from, to) {
            to.copy_from_slice(from);
        }
        s.large = Some(i);
        self.c.large_borrowed += 1;
        true
    }

    /// Gives the shared buffer back once the bytes fit the slot again.
    fn shrink(&mut self, s: &mut Stream) {
        let Some(i) = s.large else { return };
        let used = s.used_end();
        if used > self.small.len() {
            return;
        }
        let (from, to) = (self.large.chunk(i).get(..used), self.small.get_mut(..used));
        if let (Some(from), Some(to)) = (from, to) {
            to.copy_from_slice(from);
        }
        self.large.release(s);
    }

    fn ingest(&mut self, s: &mut Stream, now: Instant, seq: u32, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        let mut data = payload;
        let mut off;
        loop {
            off = i64::from(seq.wrapping_sub(s.next_seq()) as i32);
            if off.abs() > WILD_DISTANCE {
                self.restart(s, seq);
                off = 0;
                break;
            }
            if off <= 0 {
                break;
            }
            let start = s.len + off as usize;
            if self.can_hold(s, start, start + data.len()) && self.room(s, start + data.len()) {
                break;
            }
            // Cannot hold it: give up on the oldest gap, or on the stream's head.
            if s.nheld > 0 {
                self.skip_gap(s, now);
            } else {
                self.restart(s, seq);
            }
        }
        if off < 0 {
            let dup = ((-off) as usize).min(data.len());
            self.c.retransmitted_bytes += dup as u64;
            if dup == data.len() {
                self.c.retransmitted_segments += 1;
                return;
            }
            data = data.get(dup..).unwrap_or(&[]);
        } else if off > 0 {
            let start = s.len + off as usize;
            self.hold(s, start, data);
            self.c.out_of_order += 1;
            self.c.bytes += data.len() as u64;
            match s.gap_since {
                None => s.gap_since = Some(now),
                Some(t) if now.saturating_duration_since(t) >= GAP_TIMEOUT => {
                    self.skip_gap(s, now);
                    self.frame(s);
                }
                Some(_) => {}
            }
            return;
        }
        self.c.bytes += data.len() as u64;
        while !data.is_empty() {
            let buf = self.buf(s);
            let n = (buf.len() - s.len).min(data.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(s.len..s.len + n), data.get(..n)) {
                dst.copy_from_slice(src);
            }
            s.len += n;
            data = data.get(n..).unwrap_or(&[]);
            self.absorb_held(s);
            self.frame(s);
        }
    }

    /// Room for a held range: it must merge with an existing one or fit in the array.
    fn can_hold(&self, s: &Stream, start: usize, end: usize) -> bool {
        s.nheld < MAX_HELD || s.held().iter().any(|&(a, b)| start <= b && end >= a)
    }

    fn hold(&mut self, s: &mut Stream, start: usize, data: &[u8]) {
        let end = start + data.len();
        if let Some(dst) = self.buf(s).get_mut(start..end) {
            dst.copy_from_slice(data);
        }
        // Insert keeping ranges sorted, then merge overlapping/adjacent neighbours.
        // At most MAX_HELD held plus the new one: every push fits.
        let mut merged: heapless::Vec<(usize, usize), { MAX_HELD + 1 }> = heapless::Vec::new();
        let new = core::iter::once((start, end));
        let (before, after): (&[_], &[_]) = {
            let held = s.held();
            let at = held.iter().position(|r| start < r.0).unwrap_or(held.len());
            held.split_at_checked(at).unwrap_or((held, &[]))
        };
        for r in before
            .iter()
            .copied()
            .chain(new)
            .chain(after.iter().copied())
        {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
                _ => {
                    let _ = merged.push(r);
                }
            }
        }
        // `can_hold` guaranteed at most MAX_HELD remain.
        let mut keep = 0;
        for (dst, r) in s.held.iter_mut().zip(&merged) {
            *dst = *r;
            keep += 1;
        }
        s.nheld = keep;
    }

    /// Held ranges the in-order head has reached become part of it.
    fn absorb_held(&mut self, s: &mut Stream) {
        while s.nheld > 0 && s.held[0].0 <= s.len {
            s.len = s.len.max(s.held[0].1);
            s.held.copy_within(1..s.nheld, 0);
            s.nheld -= 1;
        }
        if s.nheld == 0 {
            s.gap_since = None;
        }
    }

    /// Drops the head (an incomplete message that the gap cut) and continues at the first
    /// held range.
    fn skip_gap(&mut self, s: &mut Stream, now: Instant) {
        let Some(&(start, _)) = s.held().first() else {
            return;
        };
        self.c.resyncs += 1;
        self.c.resync_bytes += s.len as u64;
        s.len = 0;
        self.consume(s, start);
        self.absorb_held(s);
        if s.nheld > 0 {
            s.gap_since = Some(now);
        }
    }

    /// Forgets everything buffered and restarts the stream at `seq`.
    fn restart(&mut self, s: &mut Stream, seq: u32) {
        self.c.resyncs += 1;
        self.c.resync_bytes += s.len as u64;
        s.base_seq = seq;
        s.len = 0;
        s.nheld = 0;
        s.gap_since = None;
        s.hint = FrameHint::default();
    }

    /// Removes `n` bytes from the buffer head, moving everything behind them forward.
    fn consume(&mut self, s: &mut Stream, n: usize) {
        let end = s.used_end();
        let n = n.min(end);
        self.buf(s).copy_within(n..end, 0);
        s.base_seq = s.base_seq.wrapping_add(n as u32);
        s.len = s.len.saturating_sub(n);
        for r in s.held.iter_mut().take(s.nheld) {
            r.0 -= n;
            r.1 -= n;
        }
        // A new head: the framer starts over on it.
        s.hint = FrameHint::default();
    }

    /// Runs the framer over the head until it needs more; flushes a full buffer.
    fn frame(&mut self, s: &mut Stream) {
        while s.len > 0 {
            let head = buf_of(self.small, self.large, s)
                .get(..s.len)
                .unwrap_or(&[]);
            match self.framer.frame(head, &mut s.hint) {
                Framing::Complete(n) if n > 0 => {
                    let n = n.min(s.len);
                    (self.deliver)(head.get(..n).unwrap_or(&[]));
                    self.c.messages += 1;
                    self.consume(s, n);
                }
                Framing::Skip(n) if n > 0 => {
                    let n = n.min(s.len);
                    self.c.garbage_bytes += n as u64;
                    self.consume(s, n);
                }
                _ => break,
            }
        }
        if s.len == self.buf(s).len() && !self.room(s, s.len + 1) {
            // Full and still no message: the framer can never succeed on this head.
            self.c.overflows += 1;
            let n = s.len;
            self.consume(s, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Framer for "messages" terminated by '\n'; lines starting with '#' are garbage.
    fn lines(b: &[u8]) -> Framing {
        if b.first() == Some(&b'#') {
            return Framing::Skip(
                b.iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |i| i + 1),
            );
        }
        match b.iter().position(|&c| c == b'\n') {
            Some(i) => Framing::Complete(i + 1),
            None => Framing::NeedMore,
        }
    }

    fn key() -> FlowKey {
        FlowKey {
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:40000".parse().unwrap(),
        }
    }

    const ACK: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        rst: false,
    };
    const SYN: TcpFlags = TcpFlags {
        syn: true,
        fin: false,
        rst: false,
    };
    const FIN: TcpFlags = TcpFlags {
        syn: false,
        fin: true,
        rst: false,
    };
    const RST: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        rst: true,
    };

    struct Rig {
        t: TcpStreams,
        out: Vec<Vec<u8>>,
    }

    impl Rig {
        fn new(buf: usize) -> Self {
            Rig {
                t: TcpStreams::new(2, buf, Duration::from_secs(60)),
                out: Vec::new(),
            }
        }
        fn seg(&mut self, ms: u64, seq: u32, flags: TcpFlags, data: &[u8]) {
            let out = &mut self.out;
            self.t.segment(
                Instant::from_millis(ms),
                key(),
                seq,
                flags,
                data,
                lines,
                |m| out.push(m.to_vec()),
            );
        }
        fn got(&self) -> Vec<&str> {
            self.out
                .iter()
                .map(|m| core::str::from_utf8(m).unwrap())
                .collect()
        }
    }

    #[test]
    fn messages_split_and_joined_across_segments_are_framed() {
        let mut r = Rig::new(64);
        r.seg(0, 999, SYN, b"");
        r.seg(1, 1000, ACK, b"INVITE 1\nACK");
        r.seg(2, 1012, ACK, b" 2\nBYE 3\n");
        assert_eq!(r.got(), ["INVITE 1\n", "ACK 2\n", "BYE 3\n"]);
        assert_eq!(r.t.counters().messages, 3);
    }

    #[test]
    fn retransmissions_are_never_delivered_twice() {
        let mut r = Rig::new(64);
        r.seg(0, 1, ACK, b"A\nB");
        r.seg(1, 1, ACK, b"A\nB");
        // Partial overlap: "B" again plus new "C\n".
        r.seg(2, 3, ACK, b"B\nC\n");
        assert_eq!(r.got(), ["A\n", "B\n", "C\n"]);
        let c = r.t.counters();
        assert_eq!((c.retransmitted_segments, c.retransmitted_bytes), (1, 4));
    }

    #[test]
    fn out_of_order_segment_is_held_until_the_gap_fills() {
        let mut r = Rig::new(64);
        r.seg(0, 100, ACK, b"one\n");
        r.seg(1, 108, ACK, b"three\n");
        assert_eq!(r.got(), ["one\n"]);
        r.seg(2, 104, ACK, b"two\n");
        assert_eq!(r.got(), ["one\n", "two\n", "three\n"]);
        assert_eq!(r.t.counters().out_of_order, 1);
    }

    #[test]
    fn a_gap_never_filled_is_skipped_after_the_timeout() {
        let mut r = Rig::new(64);
        r.seg(0, 100, ACK, b"partial");
        // Bytes 107..110 are lost on the mirror.
        r.seg(10, 110, ACK, b"\nnext\n");
        assert!(r.got().is_empty());
        r.seg(2000, 116, ACK, b"last\n");
        assert_eq!(r.got(), ["\n", "next\n", "last\n"]);
        let c = r.t.counters();
        assert_eq!((c.resyncs, c.resync_bytes), (1, 7));
    }

    #[test]
    fn a_full_buffer_without_a_message_is_flushed() {
        let mut r = Rig::new(8);
        r.seg(0, 0, ACK, b"0123456789ab\nok\n");
        let c = r.t.counters();
        assert_eq!(c.overflows, 1);
        // The tail after the flush "89ab\n" still frames, then "ok\n".
        assert_eq!(r.got(), ["89ab\n", "ok\n"]);
    }

    #[test]
    fn framer_skip_drops_garbage() {
        let mut r = Rig::new(64);
        r.seg(0, 0, ACK, b"#junk\nreal\n");
        assert_eq!(r.got(), ["real\n"]);
        assert_eq!(r.t.counters().garbage_bytes, 6);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Rig::new(64);
        r.seg(0, u32::MAX - 2, ACK, b"ab");
        r.seg(1, u32::MAX, ACK, b"c\nd\n");
        assert_eq!(r.got(), ["abc\n", "d\n"]);
    }

    #[test]
    fn fin_frees_the_stream_and_lru_is_evicted_when_full() {
        let mut r = Rig::new(64);
        r.seg(0, 0, FIN, b"bye\n");
        assert_eq!(r.got(), ["bye\n"]);
        assert_eq!(r.t.stats().len, 0);
        let mut t = TcpStreams::new(2, 16, Duration::from_secs(5));
        for (i, port) in [1000u16, 1001, 1002].into_iter().enumerate() {
            let k = FlowKey {
                src: SocketAddr::from(([10, 0, 0, 1], port)),
                dst: SocketAddr::from(([10, 0, 0, 2], 5060)),
            };
            t.segment(Instant::from_secs(i as u64), k, 0, ACK, b"x", lines, |_| {});
        }
        assert_eq!(t.counters().streams_evicted, 1);
        t.expire(Instant::from_secs(7));
        assert_eq!((t.stats().len, t.counters().streams_expired), (0, 2));
    }

    #[test]
    fn reordered_and_duplicated_segments_deliver_each_message_once_in_order() {
        let text: String = (0..300).map(|i| format!("L{i:04}\n")).collect();
        let bytes = text.as_bytes();
        let mut rng: u32 = 7;
        let mut next = || {
            rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (rng >> 16) as usize
        };
        // Random cut points, then swap neighbours and repeat some segments.
        let mut segs = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let n = (1 + next() % 40).min(bytes.len() - at);
            segs.push((at, n));
            at += n;
        }
        let mut i = 0;
        while i + 1 < segs.len() {
            if next() % 3 == 0 {
                segs.swap(i, i + 1);
                i += 1;
            }
            i += 1;
        }
        let mut r = Rig::new(256);
        let isn = u32::MAX - 100; // wraps mid-stream
        r.seg(0, isn, SYN, b"");
        for &(off, n) in &segs {
            let seq = isn.wrapping_add(1).wrapping_add(off as u32);
            r.seg(1, seq, ACK, &bytes[off..off + n]);
            if next() % 5 == 0 {
                r.seg(1, seq, ACK, &bytes[off..off + n]);
            }
        }
        assert_eq!(r.got().concat(), text);
        let c = r.t.counters();
        assert_eq!((c.messages, c.resyncs, c.overflows), (300, 0, 0));
        assert!(c.retransmitted_segments > 0 && c.out_of_order > 0);
    }

    fn flow(port: u16) -> FlowKey {
        FlowKey {
            src: SocketAddr::from(([10, 0, 0, 1], port)),
            dst: SocketAddr::from(([10, 0, 0, 2], 5060)),
        }
    }

    /// A `len`-byte "message": 'x's and a final newline.
    fn big_line(len: usize) -> Vec<u8> {
        let mut m = vec![b'x'; len - 1];
        m.push(b'\n');
        m
    }

    /// Sends `msg` on `key` in 1000-byte segments from sequence number 0.
    fn send(t: &mut TcpStreams, key: FlowKey, msg: &[u8], out: &mut Vec<usize>) {
        for (i, part) in msg.chunks(1000).enumerate() {
            let seq = (i * 1000) as u32;
            t.segment(Instant::from_secs(1), key, seq, ACK, part, lines, |m| {
                out.push(m.len())
            });
        }
    }

    #[test]
    fn a_message_larger_than_the_slot_borrows_a_shared_buffer_and_returns_it() {
        let mut t = TcpStreams::new(32, 16384, Duration::from_secs(60));
        assert_eq!(t.large_free(), 2);
        let mut out = Vec::new();
        send(&mut t, flow(1), &big_line(5000), &mut out);
        assert_eq!(out, [5000]);
        let c = t.counters();
        assert_eq!((c.large_borrowed, c.pool_exhausted, c.overflows), (1, 0, 0));
        // Delivered, so the bytes fit the slot again and the buffer went back.
        assert_eq!(t.large_free(), 2);
    }

    #[test]
    fn an_exhausted_pool_flushes_the_oversized_message_and_counts_it() {
        let mut t = TcpStreams::new(32, 16384, Duration::from_secs(60));
        let mut out = Vec::new();
        // Two streams hold the two shared buffers with unfinished 3000-byte heads.
        for port in [1, 2] {
            send(&mut t, flow(port), &vec![b'y'; 3000], &mut out);
        }
        assert_eq!(t.large_free(), 0);
        // A third oversized message cannot grow: flushed, counted; small ones still work.
        send(&mut t, flow(3), &big_line(5000), &mut out);
        let c = t.counters();
        assert!(c.pool_exhausted >= 1 && c.overflows >= 1, "{c:?}");
        assert!(!out.contains(&5000));
        out.clear();
        send(&mut t, flow(4), b"short\n", &mut out);
        assert_eq!(out, [6]);
        // Closing a holder returns its buffer; the next oversized message fits again.
        t.segment(
            Instant::from_secs(2),
            flow(1),
            3000,
            FIN,
            b"",
            lines,
            |_| {},
        );
        assert_eq!(t.large_free(), 1);
        out.clear();
        send(&mut t, flow(5), &big_line(5000), &mut out);
        assert_eq!(out, [5000]);
    }

    #[test]
    fn evicted_expired_and_reset_streams_give_their_shared_buffer_back() {
        let mut t = TcpStreams::new(2, 16384, Duration::from_secs(5));
        let mut out = Vec::new();
        send(&mut t, flow(1), &vec![b'y'; 3000], &mut out);
        assert_eq!(t.large_free(), 0);
        t.segment(Instant::from_secs(2), flow(1), 0, RST, b"", lines, |_| {});
        assert_eq!(t.large_free(), 1);
        send(&mut t, flow(2), &vec![b'y'; 3000], &mut out);
        t.expire(Instant::from_secs(60));
        assert_eq!(t.large_free(), 1);
        // Two small streams fill the table; a third evicts the holder of the buffer.
        send(&mut t, flow(3), &vec![b'y'; 3000], &mut out);
        send(&mut t, flow(4), b"a", &mut out);
        t.segment(Instant::from_secs(9), flow(5), 0, ACK, b"b", lines, |_| {});
        assert_eq!(t.counters().streams_evicted, 1);
        assert_eq!(t.large_free(), 1);
    }

    #[test]
    fn default_capacity_reassembly_fits_in_a_fraction_of_a_fixed_buffer_per_flow() {
        // 1,024 streams of up to 16 KiB each: 16 MiB as fixed buffers.
        let bytes = TcpStreams::memory_bytes(1024, 16 * 1024);
        assert!(bytes < 4 << 20, "{bytes}");
    }

    #[test]
    fn the_stream_evicted_is_the_least_recently_used_not_the_oldest() {
        let mut t = TcpStreams::new(2, 64, Duration::from_secs(60));
        let seg = |t: &mut TcpStreams, s: u64, port: u16, seq: u32| {
            t.segment(
                Instant::from_secs(s),
                flow(port),
                seq,
                ACK,
                b"x",
                lines,
                |_| {},
            )
        };
        seg(&mut t, 0, 1, 0);
        seg(&mut t, 1, 2, 0);
        // Flow 1 is older but busy again: the idle flow 2 makes room for flow 3.
        seg(&mut t, 2, 1, 1);
        seg(&mut t, 3, 3, 0);
        assert!(t.contains(&flow(1)) && t.contains(&flow(3)) && !t.contains(&flow(2)));
        assert_eq!((t.counters().streams_evicted, t.stats().evicted), (1, 1));
    }

    #[test]
    fn expiry_looks_only_at_the_streams_it_expires_and_the_next() {
        // 1,000 streams, the 10 oldest idle past the timeout: expire looks at 11, not 1,000,
        // and a later call with nothing idle looks at one.
        let mut t = TcpStreams::new(1000, 64, Duration::from_secs(5));
        for port in 0..1000u16 {
            let at = Instant::from_secs(if port < 10 { 0 } else { 10 });
            t.segment(at, flow(port), 0, ACK, b"x", lines, |_| {});
        }
        t.expire(Instant::from_secs(12));
        assert_eq!((t.counters().streams_expired, t.stats().len), (10, 990));
        assert_eq!(t.expire_work(), 11);
        t.expire(Instant::from_secs(13));
        assert_eq!(t.expire_work(), 12);
        // A stream touched late is expired last, though it was opened first.
        t.segment(
            Instant::from_secs(20),
            flow(10),
            1,
            ACK,
            b"y",
            lines,
            |_| {},
        );
        t.expire(Instant::from_secs(24));
        assert_eq!(t.stats().len, 1);
        assert!(t.contains(&flow(10)));
    }

    #[test]
    fn the_framer_gets_back_its_hint_until_the_head_moves() {
        // A resuming framer sees what it left on the same head, and a fresh hint once a
        // message was delivered.
        let mut t = TcpStreams::new(2, 64, Duration::from_secs(60));
        let mut seen = Vec::new();
        for (seq, part) in [(0u32, &b"ab"[..]), (2, b"c\nd"), (5, b"e\n")] {
            let framer = Resuming(|b: &[u8], h: &mut FrameHint| {
                seen.push(h.at[0]);
                h.at[0] = b.len() as u32;
                lines(b)
            });
            t.segment(Instant::from_secs(1), key(), seq, ACK, part, framer, |_| {});
        }
        // "ab": fresh; "abc\nd": 2 left by "ab", then "d" fresh after "abc\n"; "de\n": 1.
        assert_eq!(seen, [0, 2, 0, 1]);
    }

    #[test]
    fn syn_on_a_known_flow_starts_a_new_connection() {
        let mut r = Rig::new(64);
        r.seg(0, 50, ACK, b"stale");
        r.seg(1, 7000, SYN, b"");
        r.seg(2, 7001, ACK, b"fresh\n");
        assert_eq!(r.got(), ["fresh\n"]);
    }
}
