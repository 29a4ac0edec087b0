//! What the fuzz targets and the seed writer share: how a fuzz input is cut into records,
//! and how a byte picks a link type or a time step.
//!
//! A record is `[head: u8][len: u16 LE][len bytes]`; the last record takes whatever is left
//! when `len` runs past the end, so every input is a valid record sequence.

use voipsensor::wire::LinkType;

/// Every link type the decoder reads, in the order a selector byte picks them.
pub const LINKS: [LinkType; 7] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
];

/// The link type a selector byte names (any byte names one).
pub fn link(b: u8) -> LinkType {
    LINKS[usize::from(b) % LINKS.len()]
}

/// The selector byte of `l`.
pub fn link_byte(l: LinkType) -> u8 {
    LINKS.iter().position(|x| *x == l).unwrap_or(0) as u8
}

/// Iterates the records of a fuzz input.
pub struct Records<'a>(pub &'a [u8]);

impl<'a> Iterator for Records<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let (&head, rest) = self.0.split_first()?;
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (rest.len(), &[][..]),
        };
        let (body, rest) = rest.split_at(len.min(rest.len()));
        self.0 = rest;
        Some((head, body))
    }
}

/// Appends one record.
pub fn record(out: &mut Vec<u8>, head: u8, body: &[u8]) {
    let len = body.len().min(usize::from(u16::MAX));
    out.push(head);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&body[..len]);
}

/// Latest packet time a capture can carry: libpcap's `tv_sec * 1e6 + tv_usec`, saturated
/// to `i64` (capture/file.rs).
pub const MAX_US: u64 = i64::MAX as u64;

/// Applies a 5-bit time step to `now_us`: 0 stays, 1..=24 move 2^(k-1) ms forward (1 ms
/// up to 2.3 h), 25..=28 jump a day, a year, 2^60 µs or to the end of time, 29 and 30 go back
/// a second or an hour (a clock step in the capture), 31 back to 0.
pub fn step(now_us: u64, k: u8) -> u64 {
    let t = match k & 31 {
        0 => now_us,
        k @ 1..=24 => now_us.saturating_add(1000u64 << (k - 1)),
        25 => now_us.saturating_add(86_400_000_000),
        26 => now_us.saturating_add(31_536_000_000_000),
        27 => now_us.saturating_add(1 << 60),
        28 => MAX_US,
        29 => now_us.saturating_sub(1_000_000),
        30 => now_us.saturating_sub(3_600_000_000),
        _ => 0,
    };
    t.min(MAX_US)
}

/// The time step that comes closest to moving `delta_us` forward (seed writing).
pub fn step_for(delta_us: u64) -> u8 {
    let ms = delta_us / 1000;
    if ms == 0 {
        return 0;
    }
    // The smallest k with 2^(k-1) ms >= ms.
    let k = 1 + (64 - (ms - 1).leading_zeros()) as u8;
    k.min(24)
}
