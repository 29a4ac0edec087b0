//! Mirror diagnostics, sans-IO: is the SPAN session delivering both directions, and what
//! does it deliver (VLANs, tunnels)?
//!
//! A misconfigured mirror port often copies only one direction (only RX or only TX of the
//! monitored port). Every SIP transaction normally shows its request one way and at least one
//! response the other way; when, over a window, most settled transactions were seen in one
//! direction only, the mirror is one-way, and the direction of what *was* seen names the
//! half that is mirrored. Answered calls whose media is seen one way only corroborate it.
//!
//! Fixed memory: a direct-mapped table of recent transactions, a few direction pairs, a few
//! VLAN ids. Nothing here allocates on the per-packet path.

// Re-exported: `capture/live.rs` hashes its fanout key with it.
use crate::track::digest::Digest;
use crate::track::event::{CallEventKind, Event};
use crate::wire::Encap;
use core::net::IpAddr;
use embassy_time::{Duration, Instant};
use serde::Serialize;

/// Recent transactions tracked (direct-mapped: a collision replaces the older entry).
pub const TRANSACTIONS: usize = 1024;
/// A transaction is judged this long after its first message: responses come within
/// milliseconds to seconds (a provisional one at once for INVITE).
pub const SETTLE: Duration = Duration::from_secs(4);
/// The judgement window is two buckets of this length.
pub const BUCKET: Duration = Duration::from_secs(30);
/// Direction pairs remembered per bucket for naming the seen direction.
const PAIRS: usize = 8;
/// VLAN ids listed (more are counted as overflow).
pub const VLANS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Txn {
    key: u64,
    t0: Instant,
    /// Source and destination of the request / of a response, when seen.
    req: Option<(IpAddr, IpAddr)>,
    resp: Option<(IpAddr, IpAddr)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    settled: u64,
    one_way: u64,
    pairs: [Option<(IpAddr, IpAddr, u64)>; PAIRS],
}

impl Bucket {
    fn add_pair(&mut self, src: IpAddr, dst: IpAddr) {
        for (s, d, n) in self.pairs.iter_mut().flatten() {
            if *s == src && *d == dst {
                *n += 1;
                return;
            }
        }
        if let Some(free) = self.pairs.iter_mut().find(|p| p.is_none()) {
            *free = Some((src, dst, 1));
        } else if let Some(min) = self.pairs.iter_mut().min_by_key(|p| p.map_or(0, |p| p.2)) {
            *min = Some((src, dst, 1)); // keep the busiest pairs
        }
    }
}

/// Totals and the current window, as published in `health` under `mirror`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirectionStats {
    /// Transactions judged since start.
    pub transactions: u64,
    /// Of which seen in one direction only.
    pub one_way: u64,
    /// The last minute or so.
    pub window_transactions: u64,
    pub window_one_way: u64,
    /// The direction most one-way transactions were seen in, this window.
    pub seen_from: Option<IpAddr>,
    pub seen_to: Option<IpAddr>,
}

/// VLANs and encapsulations the mirror delivers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delivery {
    pub vlans: Vec<u16>,
    /// More VLAN ids than listed.
    pub vlans_overflow: bool,
    pub encapsulations: Vec<&'static str>,
}

/// The SIP-direction and delivery part, fed by the tracker for every SIP message / packet.
pub struct MirrorSeen {
    txns: Box<[Option<Txn>]>,
    cur: Bucket,
    prev: Bucket,
    bucket_start: Option<Instant>,
    transactions: u64,
    one_way: u64,
    vlans: [u16; VLANS],
    n_vlans: usize,
    vlans_overflow: bool,
    encap: u16,
}

impl Default for MirrorSeen {
    fn default() -> Self {
        MirrorSeen::new()
    }
}

impl MirrorSeen {
    pub fn new() -> MirrorSeen {
        MirrorSeen {
            txns: vec![None; TRANSACTIONS].into_boxed_slice(),
            cur: Bucket::default(),
            prev: Bucket::default(),
            bucket_start: None,
            transactions: 0,
            one_way: 0,
            vlans: [0; VLANS],
            n_vlans: 0,
            vlans_overflow: false,
            encap: 0,
        }
    }

    /// Every decoded packet: its VLAN and encapsulations.
    pub fn on_packet(&mut self, vlan: Option<u16>, encap: Encap) {
        self.encap |= encap.0;
        if let Some(v) = vlan
            && !self.vlans.iter().take(self.n_vlans).any(|&x| x == v)
        {
            match self.vlans.get_mut(self.n_vlans) {
                Some(free) => {
                    *free = v;
                    self.n_vlans += 1;
                }
                None => self.vlans_overflow = true,
            }
        }
    }

    /// One SIP message of the transaction `key` (see [`transaction_key`]).
    pub fn on_sip(&mut self, now: Instant, src: IpAddr, dst: IpAddr, request: bool, key: u64) {
        let slot = (key % TRANSACTIONS as u64) as usize;
        let Some(entry) = self.txns.get_mut(slot) else {
            return;
        };
        if entry.is_some_and(|t| t.key != key) {
            let old = entry.take();
            if let Some(old) = old {
                self.settle(old);
            }
        }
        let Some(entry) = self.txns.get_mut(slot) else {
            return;
        };
        let t = entry.get_or_insert(Txn {
            key,
            t0: now,
            req: None,
            resp: None,
        });
        if request {
            t.req.get_or_insert((src, dst));
        } else {
            t.resp.get_or_insert((src, dst));
        }
    }

    fn settle(&mut self, t: Txn) {
        self.transactions += 1;
        self.cur.settled += 1;
        let seen = match (t.req, t.resp) {
            (Some(_), Some(_)) | (None, None) => return,
            (Some(d), None) | (None, Some(d)) => d,
        };
        self.one_way += 1;
        self.cur.one_way += 1;
        self.cur.add_pair(seen.0, seen.1);
    }

    /// Once a second: judges transactions older than [`SETTLE`], rotates the window.
    pub fn tick(&mut self, now: Instant) {
        let start = *self.bucket_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= BUCKET {
            self.prev = core::mem::take(&mut self.cur);
            self.bucket_start = Some(now);
        }
        for i in 0..self.txns.len() {
            let Some(entry) = self.txns.get_mut(i) else {
                continue;
            };
            if let Some(t) = *entry
                && now.saturating_duration_since(t.t0) >= SETTLE
            {
                *entry = None;
                self.settle(t);
            }
        }
    }

    pub fn directions(&self) -> DirectionStats {
        let mut pairs: [Option<(IpAddr, IpAddr, u64)>; 2 * PAIRS] = [None; 2 * PAIRS];
        let mut n = 0;
        for (s, d, c) in self
            .cur
            .pairs
            .iter()
            .chain(self.prev.pairs.iter())
            .flatten()
        {
            if let Some(p) = pairs
                .iter_mut()
                .take(n)
                .flatten()
                .find(|p| p.0 == *s && p.1 == *d)
            {
                p.2 += c;
            } else if let Some(free) = pairs.get_mut(n) {
                *free = Some((*s, *d, *c));
                n += 1;
            }
        }
        let top = pairs.iter().flatten().max_by_key(|p| p.2);
        DirectionStats {
            transactions: self.transactions,
            one_way: self.one_way,
            window_transactions: self.cur.settled + self.prev.settled,
            window_one_way: self.cur.one_way + self.prev.one_way,
            seen_from: top.map(|p| p.0),
            seen_to: top.map(|p| p.1),
        }
    }

    pub fn delivery(&self) -> Delivery {
        let mut vlans: Vec<u16> = self.vlans.iter().take(self.n_vlans).copied().collect();
        vlans.sort_unstable();
        let names = [
            (Encap::VLAN, "vlan"),
            (Encap::QINQ, "qinq"),
            (Encap::GRE, "gre"),
            (Encap::ERSPAN, "erspan"),
            (Encap::VXLAN, "vxlan"),
            (Encap::IPIP, "ipip"),
            (Encap::TZSP, "tzsp"),
            (Encap::FRAGMENTED, "ip_fragments"),
        ];
        let e = Encap(self.encap);
        Delivery {
            vlans,
            vlans_overflow: self.vlans_overflow,
            encapsulations: names
                .iter()
                .filter(|(b, _)| e.has(*b))
                .map(|(_, n)| *n)
                .collect(),
        }
    }
}

/// The transaction a message belongs to: Call-ID, CSeq and top Via branch (so the two legs
/// of a proxied request are two transactions). ACK has no response and is not one.
pub fn transaction_key(msg: &crate::sip::Message<'_>) -> Option<u64> {
    let call_id = msg.call_id()?;
    let (cseq, method) = msg.cseq()?;
    if method == crate::sip::Method::Ack {
        return None;
    }
    let mut h = Digest::new();
    h.write(call_id);
    h.write(&cseq.to_be_bytes());
    h.write(&[method as u8]);
    if let Some(b) = msg.via_branch() {
        h.write(b);
    }
    Some(h.finish())
}

/// Answered calls and how many had media in one direction only, from the call events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallSides {
    pub answered_ended: u64,
    pub one_way_media: u64,
}

impl CallSides {
    pub fn on_event(&mut self, ev: &Event) {
        let Event::Call(c) = ev else { return };
        if !c.event.is_final() || c.duration_ms.is_none() || c.event == CallEventKind::Evicted {
            return;
        }
        self.answered_ended += 1;
        let has = |q: &Option<crate::track::event::DirectionQuality>| {
            q.as_ref().is_some_and(|q| q.packets > 0)
        };
        if has(&c.quality_caller) != has(&c.quality_callee) {
            self.one_way_media += 1;
        }
    }
}

/// A warning a technician can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Stable identifier: `unidirectional_mirror`, `no_mirror_traffic`,
    /// `signalling_not_visible`, `capture_loss`, `interface_down`, `mirror_duplicates`.
    pub code: &'static str,
    pub message: String,
}

/// Judgement thresholds.
pub const MIN_TRANSACTIONS: u64 = 4;
/// Share of one-way transactions (percent) above which the mirror is called one-way.
pub const ONE_WAY_PERCENT: u64 = 80;

/// The mirror-direction and TLS warnings from the figures above.
pub fn warnings(dirs: &DirectionStats, calls: &CallSides, tls_records_window: u64) -> Vec<Warning> {
    let mut w = Vec::new();
    if dirs.window_transactions >= MIN_TRANSACTIONS
        && dirs.window_one_way * 100 >= dirs.window_transactions * ONE_WAY_PERCENT
    {
        let dir = match (dirs.seen_from, dirs.seen_to) {
            (Some(a), Some(b)) => format!(" (only {a}→{b} seen)"),
            _ => String::new(),
        };
        w.push(Warning {
            code: "unidirectional_mirror",
            message: format!(
                "mirror looks unidirectional{dir}: {} of {} SIP transactions and {} of {} answered calls' media seen in one direction only; mirror both RX and TX of the monitored port",
                dirs.window_one_way,
                dirs.window_transactions,
                calls.one_way_media,
                calls.answered_ended
            ),
        });
    }
    if tls_records_window > 0 {
        w.push(Warning {
            code: "signalling_not_visible",
            message: format!(
                "signalling not visible: {tls_records_window} TLS records on port 5061 (SIP over TLS cannot be decoded; calls on it are not tracked)"
            ),
        });
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(s: u64) -> Instant {
        Instant::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn requests_without_responses_name_the_seen_direction() {
        let mut m = MirrorSeen::new();
        for k in 0..10u64 {
            m.on_sip(at(k), ip("10.0.0.1"), ip("10.0.0.2"), true, k);
        }
        m.tick(at(20));
        let d = m.directions();
        assert_eq!((d.window_transactions, d.window_one_way), (10, 10));
        let w = warnings(&d, &CallSides::default(), 0);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message.contains("only 10.0.0.1→10.0.0.2 seen"),
            "{}",
            w[0].message
        );
    }

    #[test]
    fn answered_transactions_raise_no_warning() {
        let mut m = MirrorSeen::new();
        for k in 0..10u64 {
            m.on_sip(at(k), ip("10.0.0.1"), ip("10.0.0.2"), true, k);
            m.on_sip(at(k), ip("10.0.0.2"), ip("10.0.0.1"), false, k);
        }
        m.tick(at(20));
        let d = m.directions();
        assert_eq!((d.window_transactions, d.window_one_way), (10, 0));
        assert!(warnings(&d, &CallSides::default(), 0).is_empty());
    }

    #[test]
    fn young_transactions_wait_before_being_judged() {
        let mut m = MirrorSeen::new();
        m.on_sip(at(0), ip("10.0.0.1"), ip("10.0.0.2"), true, 7);
        m.tick(at(1));
        assert_eq!(m.directions().transactions, 0);
        m.tick(at(5));
        assert_eq!(m.directions().transactions, 1);
    }

    #[test]
    fn the_window_forgets_old_buckets() {
        let mut m = MirrorSeen::new();
        m.tick(at(0));
        for k in 0..10u64 {
            m.on_sip(at(1), ip("10.0.0.1"), ip("10.0.0.2"), true, k);
        }
        m.tick(at(10));
        m.tick(at(31)); // rotation: still in the previous bucket
        assert_eq!(m.directions().window_one_way, 10);
        m.tick(at(62)); // second rotation: gone from the window, kept in totals
        let d = m.directions();
        assert_eq!((d.window_one_way, d.one_way), (0, 10));
    }

    #[test]
    fn vlans_and_encapsulations_are_listed_once() {
        let mut m = MirrorSeen::new();
        m.on_packet(Some(20), Encap(Encap::VLAN));
        m.on_packet(Some(10), Encap(Encap::VLAN | Encap::ERSPAN));
        m.on_packet(Some(20), Encap(0));
        let d = m.delivery();
        assert_eq!(d.vlans, vec![10, 20]);
        assert_eq!(d.encapsulations, vec!["vlan", "erspan"]);
    }

    #[test]
    fn tls_on_5061_is_reported_as_signalling_not_visible() {
        let w = warnings(&DirectionStats::default(), &CallSides::default(), 3);
        assert_eq!(w[0].code, "signalling_not_visible");
    }
}
