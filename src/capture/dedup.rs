//! Duplicate frames, sans-IO: the same frame delivered twice is analysed once.
//!
//! Two kinds. [`DedupRing`]: the same packet seen on two interfaces (two SPAN sessions
//! covering the same traffic), tagged or routed differently. [`MirrorDuplicates`]: the same
//! frame, byte for byte, twice on one interface a few microseconds apart: a SPAN session
//! that mirrors both directions of two ports (each frame leaves one and enters the other),
//! or a port and its VLAN. Wireshark users clean such captures with `editcap -D`; the
//! sensor drops the copy before decoding, counts it, and says so (`mirror_duplicates`).
//!
//! Real RTP duplicates are different: same sequence number but other bytes (a new IP id or
//! checksum), or much later than [`MIRROR_WINDOW_US`]; those pass and the stream counts
//! them. Fixed memory, nothing allocated per frame.

use crate::wire::LinkType;
use core::hash::BuildHasher;
use core::time::Duration;
use embassy_time::Instant;
use serde::Serialize;

/// Recent frames by fingerprint, to drop a frame seen on two interfaces (two SPAN sessions
/// covering the same traffic). Direct-mapped: one slot per fingerprint bucket.
pub struct DedupRing {
    slots: Box<[(u64, u64, u8)]>,
    window_us: u64,
    /// Keyed per run: a flood cannot aim frames at one bucket (or forge a "copy").
    hasher: foldhash::fast::RandomState,
}

/// Bytes of the frame (after the link header) fingerprinted: IP and transport headers and
/// the start of the payload (RTP sequence and timestamp) tell packets apart.
const FINGERPRINT_BYTES: usize = 96;
/// Entries per bucket of the duplicate ring.
const WAYS: usize = 4;

impl DedupRing {
    pub fn new(slots: usize, window: Duration) -> DedupRing {
        DedupRing {
            slots: vec![(0, 0, u8::MAX); slots.max(WAYS).next_multiple_of(WAYS)].into_boxed_slice(),
            window_us: window.as_micros() as u64,
            hasher: Default::default(),
        }
    }

    /// True when the same frame was just seen on another interface.
    pub fn is_duplicate(&mut self, iface: u8, ts: Instant, link: LinkType, frame: &[u8]) -> bool {
        let body = l3(link, frame);
        let (a, b) = strip_ttl(body.get(..FINGERPRINT_BYTES).unwrap_or(body));
        // foldhash reads 16 bytes a step (FNV's byte-at-a-time loop was a quarter of replay).
        let hash = self.hasher.hash_one((body.len(), a, b));
        let key = hash | 1; // 0 marks an empty slot
        let t = ts.as_micros();
        // 4-way buckets: a frame's copy is found even if a few other frames hashed to the
        // same bucket in between (the interfaces are read in interleaved batches). The
        // bucket comes from the high bits: `key`'s lowest is always 1, and with it a
        // power-of-two bucket count would use only the odd half of the buckets.
        let buckets = self.slots.len() / WAYS;
        let b = ((hash >> 32) % buckets as u64) as usize * WAYS;
        let bucket = &mut self.slots[b..b + WAYS];
        if bucket
            .iter()
            .any(|&(k, seen, from)| k == key && from != iface && t.abs_diff(seen) <= self.window_us)
        {
            return true;
        }
        let oldest = (0..WAYS).min_by_key(|&i| bucket[i].1).unwrap_or(0);
        let slot = bucket
            .iter()
            .position(|&(k, _, from)| k == key && from == iface)
            .unwrap_or(oldest);
        bucket[slot] = (key, t, iface);
        false
    }
}

/// The frame from its network header on (link headers and VLAN tags differ between ports).
fn l3(link: LinkType, frame: &[u8]) -> &[u8] {
    match crate::wire::link::strip(link, frame) {
        Ok(r) => match r.network {
            crate::wire::link::Network::Ipv4(b) | crate::wire::link::Network::Ipv6(b) => b,
        },
        Err(_) => frame,
    }
}

/// IPv4 TTL and checksum, IPv6 hop limit change per routed hop: the fingerprint skips them
/// by hashing the two slices around them.
fn strip_ttl(b: &[u8]) -> (&[u8], &[u8]) {
    match b.first().map(|v| v >> 4) {
        Some(4) if b.len() >= 12 => (&b[..8], &b[12..]),
        Some(6) if b.len() >= 8 => (&b[..7], &b[8..]),
        _ => (b, &[]),
    }
}

/// A frame is a mirror copy when an identical one came this recently on the same
/// interface: the two copies of a SPAN session leave the switch microseconds apart, a
/// little more under egress queueing; a genuine resend (SIP T1 is 500 ms, TCP's RTO at
/// least 200 ms, RTP's next packet 10 ms or more) is far later.
pub const MIRROR_WINDOW_US: u64 = 5_000;
/// ...and within this many frames of it on that interface (the ring's size).
pub const MIRROR_WINDOW_FRAMES: usize = 32;
/// Leading bytes of a frame fingerprinted, with its length and its last
/// [`TAIL_BYTES`]: they hold the IP id and the IP, UDP/TCP checksums over the rest, so two
/// frames that agree on them are the same frame.
const HEAD_BYTES: usize = 128;
const TAIL_BYTES: usize = 16;
/// The share is judged over two buckets of this many seconds.
pub const SHARE_BUCKET_S: u64 = 10;
/// Below this many frames in the window nothing is judged.
pub const SHARE_MIN_FRAMES: u64 = 100;
/// Share of frames (percent) that are mirror copies above which the mirror is named
/// misconfigured: every frame twice is 50 %.
pub const SHARE_PERCENT: u64 = 30;

/// Frames and mirror copies over the last one to two [`SHARE_BUCKET_S`] buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DupWindow {
    pub frames: u64,
    pub duplicates: u64,
}

impl DupWindow {
    /// A large share of the traffic arrives twice.
    pub fn doubled(&self) -> bool {
        self.frames >= SHARE_MIN_FRAMES && self.duplicates * 100 >= self.frames * SHARE_PERCENT
    }
}

/// Byte-identical frames on one interface within [`MIRROR_WINDOW_US`] and
/// [`MIRROR_WINDOW_FRAMES`].
pub struct MirrorDuplicates {
    /// Fingerprints of the last frames (a ring, `next` its oldest) and when each came; two
    /// arrays, so the fingerprints alone are compared, all at once.
    keys: [u64; MIRROR_WINDOW_FRAMES],
    seen: [u64; MIRROR_WINDOW_FRAMES],
    next: usize,
    /// Keyed per run: a flood cannot forge a frame that hashes like a real one.
    hasher: foldhash::fast::RandomState,
    /// Copies dropped since start.
    pub total: u64,
    cur: DupWindow,
    prev: DupWindow,
    bucket_start_s: Option<u64>,
}

impl Default for MirrorDuplicates {
    fn default() -> Self {
        MirrorDuplicates::new()
    }
}

impl MirrorDuplicates {
    pub fn new() -> MirrorDuplicates {
        MirrorDuplicates {
            keys: [0; MIRROR_WINDOW_FRAMES],
            seen: [0; MIRROR_WINDOW_FRAMES],
            next: 0,
            hasher: Default::default(),
            total: 0,
            cur: DupWindow::default(),
            prev: DupWindow::default(),
            bucket_start_s: None,
        }
    }

    /// True when `frame` is a mirror copy of one just seen (drop it); counts either way.
    pub fn is_duplicate(&mut self, ts: Instant, frame: &[u8]) -> bool {
        let head = frame.get(..HEAD_BYTES).unwrap_or(frame);
        let tail = frame
            .get(frame.len().saturating_sub(TAIL_BYTES).max(head.len())..)
            .unwrap_or_default();
        // foldhash reads 16 bytes a step (FNV's byte-at-a-time loop was a quarter of replay).
        let key = self.hasher.hash_one((frame.len(), head, tail)) | 1; // 0 marks an empty slot
        let t = ts.as_micros();
        self.cur.frames += 1;
        // Almost no frame matches, so an early exit never pays: every fingerprint is
        // compared without branches (vector compares, a third of the loop's instructions).
        let any = self.keys.iter().fold(false, |d, &k| d | (k == key));
        let dup = any
            && (self.keys.iter().zip(&self.seen))
                .any(|(&k, &seen)| k == key && t.abs_diff(seen) <= MIRROR_WINDOW_US);
        if dup {
            self.total += 1;
            self.cur.duplicates += 1;
        } else {
            self.keys[self.next] = key;
            self.seen[self.next] = t;
            self.next = (self.next + 1) % MIRROR_WINDOW_FRAMES;
        }
        dup
    }

    /// Moves the share window on to `now_s` (packet or wall seconds, called at least once
    /// per bucket).
    pub fn tick(&mut self, now_s: u64) {
        let start = *self.bucket_start_s.get_or_insert(now_s);
        if now_s >= start + 2 * SHARE_BUCKET_S {
            self.prev = DupWindow::default();
            self.cur = DupWindow::default();
            self.bucket_start_s = Some(now_s);
        } else if now_s >= start + SHARE_BUCKET_S {
            self.prev = core::mem::take(&mut self.cur);
            self.bucket_start_s = Some(start + SHARE_BUCKET_S);
        }
    }

    /// Frames and copies over the window.
    pub fn window(&self) -> DupWindow {
        DupWindow {
            frames: self.cur.frames + self.prev.frames,
            duplicates: self.cur.duplicates + self.prev.duplicates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_frame(ttl: u8, vlan: bool, seq: u8) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[
            0x45, 0, 0, 32, 0, 1, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc4, 0, 12, 0, 0, 0x80, 0, 0, seq]);
        f
    }

    #[test]
    fn same_frame_on_two_interfaces_is_a_duplicate_even_if_tagged_or_routed() {
        let mut d = DedupRing::new(64, Duration::from_millis(50));
        let t = Instant::from_millis(1_000);
        assert!(!d.is_duplicate(0, t, LinkType::Ethernet, &udp_frame(64, false, 1)));
        assert!(d.is_duplicate(
            1,
            Instant::from_millis(1_010),
            LinkType::Ethernet,
            &udp_frame(63, true, 1)
        ));
    }

    #[test]
    fn same_interface_later_or_different_frames_are_not_duplicates() {
        let mut d = DedupRing::new(64, Duration::from_millis(50));
        let t = Instant::from_millis(1_000);
        assert!(!d.is_duplicate(0, t, LinkType::Ethernet, &udp_frame(64, false, 1)));
        // Same interface again: a real retransmission, not a mirror duplicate.
        assert!(!d.is_duplicate(0, t, LinkType::Ethernet, &udp_frame(64, false, 1)));
        // Another packet.
        assert!(!d.is_duplicate(1, t, LinkType::Ethernet, &udp_frame(64, false, 2)));
        // Outside the window.
        assert!(!d.is_duplicate(
            1,
            Instant::from_millis(2_000),
            LinkType::Ethernet,
            &udp_frame(64, false, 1)
        ));
    }

    #[test]
    fn a_frame_twice_within_the_window_is_a_mirror_copy_once() {
        let mut m = MirrorDuplicates::new();
        let f = udp_frame(64, false, 1);
        assert!(!m.is_duplicate(Instant::from_micros(1_000), &f));
        assert!(m.is_duplicate(Instant::from_micros(1_004), &f));
        // The next packet, then the first one again much later: a real resend, analysed.
        assert!(!m.is_duplicate(Instant::from_micros(1_010), &udp_frame(64, false, 2)));
        assert!(!m.is_duplicate(Instant::from_micros(20_000), &f));
        assert_eq!(m.total, 1);
    }

    #[test]
    fn a_copy_older_than_the_frame_window_is_not_dropped() {
        let mut m = MirrorDuplicates::new();
        let t = Instant::from_micros(1_000);
        let first = udp_frame(64, false, 0);
        assert!(!m.is_duplicate(t, &first));
        for seq in 1..=MIRROR_WINDOW_FRAMES as u8 {
            assert!(!m.is_duplicate(t, &udp_frame(64, false, seq)));
        }
        assert!(!m.is_duplicate(t, &first));
    }

    #[test]
    fn frames_differing_only_past_the_head_are_told_apart() {
        let mut m = MirrorDuplicates::new();
        let mut a = vec![0u8; 300];
        let t = Instant::from_micros(5);
        assert!(!m.is_duplicate(t, &a));
        a[299] = 1;
        assert!(!m.is_duplicate(t, &a));
        assert!(m.is_duplicate(t, &a));
    }

    #[test]
    fn the_share_is_judged_over_the_last_two_buckets() {
        let mut m = MirrorDuplicates::new();
        m.tick(0);
        for k in 0..100u64 {
            let f = udp_frame(64, false, k as u8);
            let t = Instant::from_micros(k * 20_000);
            m.is_duplicate(t, &f);
            m.is_duplicate(t, &f);
        }
        assert_eq!(
            m.window(),
            DupWindow {
                frames: 200,
                duplicates: 100
            }
        );
        assert!(m.window().doubled());
        m.tick(SHARE_BUCKET_S);
        assert!(m.window().doubled(), "still in the previous bucket");
        m.tick(2 * SHARE_BUCKET_S);
        assert!(!m.window().doubled());
        assert_eq!(m.total, 100);
    }
}
