//! IPv4 and IPv6 fragment reassembly in fixed memory.
//!
//! Sets in progress live in a [`Table`] keyed by (src, dst, id, protocol); each table slot
//! owns one preallocated [`FRAG_BUF`]-byte buffer, so nothing is allocated per packet. A
//! set's received data is tracked per 8-byte block (fragment offsets are multiples of 8):
//! the first copy of a block wins, so duplicates and overlaps can neither grow a datagram
//! nor rewrite what was already accepted. A block counts as received only when a fragment
//! covered all of it (or it is the datagram's last, partial block): a non-final fragment
//! whose length is not a multiple of 8 (RFC 791 forbids it) has its trailing bytes
//! ignored, as Linux does, and counted, so no byte of an earlier datagram left in the
//! buffer can be delivered. When the table is full the oldest set is evicted; sets older
//! than the timeout are dropped, oldest first, without a walk of the table (sets are
//! never touched, so the table's LRU order is the order they began).

use super::ip::FragInfo;
use crate::table::{Inserted, Table, TableStats};
use core::net::IpAddr;
use embassy_time::{Duration, Instant};

/// Largest datagram reassembled (jumbo-frame sized; SIP over UDP stays well below).
pub const FRAG_BUF: usize = 9216;
const BLOCK: usize = 8;
const WORDS: usize = FRAG_BUF / BLOCK / 64;

/// Identifies the datagram a fragment belongs to (RFC 791 / RFC 8200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

/// Bookkeeping of one datagram in progress; its bytes are in the slot's buffer.
#[derive(Debug, Clone, Copy)]
struct FragSet {
    first_seen: Instant,
    /// Datagram length, known once the last fragment (MF clear) arrived.
    total: Option<usize>,
    /// One bit per 8-byte block received.
    have: [u64; WORDS],
}

impl FragSet {
    fn new(now: Instant) -> Self {
        FragSet {
            first_seen: now,
            total: None,
            have: [0; WORDS],
        }
    }
    fn has(&self, block: usize) -> bool {
        self.have
            .get(block / 64)
            .is_some_and(|w| w & (1 << (block % 64)) != 0)
    }
    fn set(&mut self, block: usize) {
        if let Some(w) = self.have.get_mut(block / 64) {
            *w |= 1 << (block % 64);
        }
    }
    fn complete(&self) -> bool {
        self.total
            .is_some_and(|t| (0..t.div_ceil(BLOCK)).all(|b| self.has(b)))
    }
}

/// What happened to a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum FragOutcome<'a> {
    /// Stored; the datagram is still incomplete.
    Stored,
    /// This fragment completed the datagram: its payload (after the IP header).
    Complete(&'a [u8]),
    /// The datagram would exceed [`FRAG_BUF`]; the set was dropped.
    Oversize,
    /// Fragments disagree on the datagram length; the set was dropped.
    Inconsistent,
}

/// Counters of the reassembler (merged into `WireCounters` by the decoder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragCounters {
    pub fragments: u64,
    pub reassembled: u64,
    pub timed_out: u64,
    pub evicted: u64,
    pub oversize: u64,
    /// Non-final fragments whose length was not a multiple of 8 (trailing bytes ignored).
    pub misaligned: u64,
}

/// Written over the buffers at start so their pages are resident (a zero fill would be
/// mapped lazily); their contents never matter, only the blocks received do.
const FILL: u8 = 0xa5;

/// The fragment table and its buffers.
pub struct Reassembler {
    table: Table<FragKey, FragSet>,
    /// `capacity * FRAG_BUF` bytes; slot `i` owns `[i * FRAG_BUF, (i + 1) * FRAG_BUF)`.
    bufs: Vec<u8>,
    timeout: Duration,
    counters: FragCounters,
}

impl Reassembler {
    /// Heap bytes `new(capacity, _)` allocates.
    pub fn memory_bytes(capacity: usize) -> usize {
        Table::<FragKey, FragSet>::memory_bytes(capacity) + capacity * FRAG_BUF
    }

    /// Allocates the table and all buffers now.
    pub fn new(capacity: usize, timeout: Duration) -> Self {
        let table = Table::new("ip_fragments", capacity);
        let bufs = vec![FILL; table.capacity() * FRAG_BUF];
        Reassembler {
            table,
            bufs,
            timeout,
            counters: FragCounters::default(),
        }
    }

    pub fn counters(&self) -> FragCounters {
        self.counters
    }

    pub fn stats(&self) -> TableStats {
        self.table.stats()
    }

    fn expired(&self, set: &FragSet, now: Instant) -> bool {
        now.saturating_duration_since(set.first_seen) >= self.timeout
    }

    /// Adds one fragment's payload `data` at `frag.offset`.
    pub fn insert(
        &mut self,
        now: Instant,
        key: FragKey,
        frag: FragInfo,
        data: &[u8],
    ) -> FragOutcome<'_> {
        self.counters.fragments += 1;
        let end = frag.offset + data.len();
        // Only whole blocks of a non-final fragment count (the final one ends the datagram).
        let used = if frag.more && !end.is_multiple_of(BLOCK) {
            self.counters.misaligned += 1;
            end - end % BLOCK
        } else {
            end
        };
        if end > FRAG_BUF {
            self.counters.oversize += 1;
            self.table.discard(&key);
            return FragOutcome::Oversize;
        }
        // A set that outlived the timeout is stale: start over rather than mix datagrams
        // whose 16-bit IPv4 ids wrapped.
        if self.table.get(&key).is_some_and(|s| self.expired(s, now)) {
            self.table.discard(&key);
            self.counters.timed_out += 1;
        }
        if !self.table.contains(&key) {
            let inserted = self.table.insert(key, FragSet::new(now), 0, 1);
            if let Inserted::Evicted(..) = inserted {
                self.counters.evicted += 1;
            }
        }
        let Some(slot) = self.table.slot_of(&key) else {
            // Cannot happen (every set is evictable); drop the fragment rather than panic.
            return FragOutcome::Stored;
        };
        let Some((_, set)) = self.table.by_slot_mut(slot) else {
            return FragOutcome::Stored;
        };
        let base = slot as usize * FRAG_BUF;
        let Some(buf) = self.bufs.get_mut(base..base + FRAG_BUF) else {
            return FragOutcome::Stored;
        };
        if !frag.more {
            match set.total {
                Some(t) if t != end => {
                    self.table.discard_slot(slot);
                    return FragOutcome::Inconsistent;
                }
                _ => set.total = Some(end),
            }
        }
        if set.total.is_some_and(|t| end > t) {
            self.table.discard_slot(slot);
            return FragOutcome::Inconsistent;
        }
        // Copy block by block, skipping blocks already received (first copy wins).
        let mut at = frag.offset;
        while at < used {
            let block = at / BLOCK;
            let stop = ((block + 1) * BLOCK).min(used);
            if !set.has(block) {
                let src = data.get(at - frag.offset..stop - frag.offset);
                if let (Some(dst), Some(src)) = (buf.get_mut(at..stop), src) {
                    dst.copy_from_slice(src);
                }
                set.set(block);
            }
            at = stop;
        }
        if !set.complete() {
            return FragOutcome::Stored;
        }
        let total = set.total.unwrap_or(0);
        // Free the slot now; its buffer stays intact until the next insert, which cannot
        // happen while the returned slice borrows `self`.
        self.table.discard_slot(slot);
        self.counters.reassembled += 1;
        match self.bufs.get(base..base + total) {
            Some(d) => FragOutcome::Complete(d),
            None => FragOutcome::Inconsistent,
        }
    }

    /// Drops sets older than the timeout: the oldest first, stopping at the first that is
    /// not (work proportional to what expires).
    pub fn expire(&mut self, now: Instant) {
        while let Some(slot) = self.table.lru(0) {
            let stale = self
                .table
                .by_slot(slot)
                .is_some_and(|(_, s)| self.expired(s, now));
            if !stale {
                break;
            }
            self.table.discard_slot(slot);
            self.counters.timed_out += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
            id,
            proto: 17,
        }
    }

    fn info(offset: usize, more: bool) -> FragInfo {
        FragInfo {
            id: 1,
            offset,
            more,
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// A 20-byte "datagram": UDP header 5060->5060 length 20, then "INVITE sip:".
    const DGRAM: [u8; 20] = [
        0x13, 0xc4, 0x13, 0xc4, 0x00, 0x14, 0x00, 0x00, b'I', b'N', b'V', b'I', b'T', b'E', b' ',
        b's', b'i', b'p', b':', b'x',
    ];

    #[test]
    fn a_short_non_final_fragment_never_delivers_an_earlier_datagrams_bytes() {
        let mut r = Reassembler::new(1, Duration::from_secs(30));
        // Datagram 1 reassembled in slot 0: its bytes stay in the buffer.
        r.insert(t(0), key(1), info(0, true), &DGRAM[..16]);
        assert_eq!(
            r.insert(t(0), key(1), info(16, false), &DGRAM[16..]),
            FragOutcome::Complete(&DGRAM)
        );
        // Datagram 2 in the same slot: a non-final fragment of 12 bytes (bytes 12..16 are
        // datagram 1's "TE s" in the buffer), then its last fragment at 16.
        let two = *b"ABCDEFGHIJKLMNOPQRST";
        assert_eq!(
            r.insert(t(1), key(2), info(0, true), &two[..12]),
            FragOutcome::Stored
        );
        assert_eq!(r.counters().misaligned, 1);
        assert_eq!(
            r.insert(t(1), key(2), info(16, false), &two[16..]),
            FragOutcome::Stored,
            "bytes 12..16 were never received: not complete"
        );
        // The block 8..16 arrives whole: only datagram 2's bytes come out.
        assert_eq!(
            r.insert(t(2), key(2), info(8, true), &two[8..16]),
            FragOutcome::Complete(&two)
        );
    }

    #[test]
    fn fragments_in_any_order_reassemble() {
        let mut r = Reassembler::new(4, Duration::from_secs(30));
        assert_eq!(
            r.insert(t(0), key(1), info(16, false), &DGRAM[16..]),
            FragOutcome::Stored
        );
        assert_eq!(
            r.insert(t(1), key(1), info(0, true), &DGRAM[..8]),
            FragOutcome::Stored
        );
        assert_eq!(
            r.insert(t(2), key(1), info(8, true), &DGRAM[8..16]),
            FragOutcome::Complete(&DGRAM)
        );
        assert_eq!(r.counters().reassembled, 1);
        assert_eq!(r.stats().len, 0);
    }

    #[test]
    fn duplicate_and_overlapping_fragments_keep_first_data() {
        let mut r = Reassembler::new(4, Duration::from_secs(30));
        r.insert(t(0), key(1), info(0, true), &DGRAM[..16]);
        // Overlap rewriting bytes 8..16 with garbage is ignored.
        r.insert(t(1), key(1), info(8, true), &[0xff; 8]);
        r.insert(t(1), key(1), info(0, true), &DGRAM[..16]);
        assert_eq!(
            r.insert(t(2), key(1), info(16, false), &DGRAM[16..]),
            FragOutcome::Complete(&DGRAM)
        );
    }

    #[test]
    fn datagram_beyond_buffer_is_oversize() {
        let mut r = Reassembler::new(4, Duration::from_secs(30));
        r.insert(t(0), key(1), info(0, true), &DGRAM[..8]);
        assert_eq!(
            r.insert(t(0), key(1), info(FRAG_BUF - 8, true), &[0; 16]),
            FragOutcome::Oversize
        );
        assert_eq!((r.counters().oversize, r.stats().len), (1, 0));
    }

    #[test]
    fn conflicting_last_fragments_drop_the_set() {
        let mut r = Reassembler::new(4, Duration::from_secs(30));
        r.insert(t(0), key(1), info(16, false), &DGRAM[16..]);
        assert_eq!(
            r.insert(t(0), key(1), info(8, false), &DGRAM[8..16]),
            FragOutcome::Inconsistent
        );
        assert_eq!(r.stats().len, 0);
    }

    #[test]
    fn full_table_evicts_oldest_set() {
        let mut r = Reassembler::new(2, Duration::from_secs(30));
        r.insert(t(0), key(1), info(0, true), &DGRAM[..8]);
        r.insert(t(1), key(2), info(0, true), &DGRAM[..8]);
        r.insert(t(2), key(3), info(0, true), &DGRAM[..8]);
        assert_eq!(r.counters().evicted, 1);
        // Set 1 is gone: its last fragment alone cannot complete it.
        assert_eq!(
            r.insert(t(3), key(1), info(8, false), &DGRAM[8..]),
            FragOutcome::Stored
        );
        // Set 3 survived.
        assert_eq!(
            r.insert(t(3), key(3), info(8, false), &DGRAM[8..]),
            FragOutcome::Complete(&DGRAM)
        );
    }

    #[test]
    fn stale_sets_time_out() {
        let mut r = Reassembler::new(2, Duration::from_secs(30));
        r.insert(t(0), key(1), info(0, true), &DGRAM[..8]);
        r.expire(t(29_999));
        assert_eq!(r.stats().len, 1);
        r.expire(t(30_000));
        assert_eq!((r.stats().len, r.counters().timed_out), (0, 1));
        // A late fragment of a stale set starts a new one instead of completing it.
        r.insert(t(0), key(2), info(0, true), &DGRAM[..8]);
        assert_eq!(
            r.insert(t(40_000), key(2), info(8, false), &DGRAM[8..]),
            FragOutcome::Stored
        );
        assert_eq!(r.counters().timed_out, 2);
    }
}
