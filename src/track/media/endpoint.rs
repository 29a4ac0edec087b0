//! Endpoints: the addresses SDP announced, each the place one party of one call receives
//! media (RTP, or its RTCP port), with the payload types it offered.

use super::links::{CallLinks, CallRef, Chain, Member};
use crate::rtp::codec;
use crate::sip::sdp::{self, MediaKind};
use crate::table::{Inserted, Table, TableStats};
use crate::track::event::{CallId, Codec, Party, fill};
use core::net::SocketAddr;
use embassy_time::Instant;

/// Payload types remembered per endpoint (from `m=` and `a=rtpmap`).
const PT_MAX: usize = 12;

#[derive(Debug, Clone)]
pub(super) struct PtInfo {
    pub pt: u8,
    pub codec: Codec,
    pub clock: u32,
    /// RFC 4733 telephone-event.
    pub event: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// The call's serial.
    pub serial: u64,
    /// The call's slot in the call table.
    pub call_slot: u32,
    /// Its place on the call's list of endpoints.
    in_call: Chain,
    pub call_id: CallId,
    /// The party that receives media here.
    pub owner: Party,
    pub rtcp: bool,
    pub kind: MediaKind,
    pub pts: heapless::Vec<PtInfo, PT_MAX>,
    pub last_used: Instant,
}

impl Endpoint {
    pub fn call(&self) -> CallRef {
        CallRef {
            serial: self.serial,
            slot: self.call_slot,
        }
    }
}

impl Member for Endpoint {
    fn owner(&self) -> Option<CallRef> {
        Some(self.call())
    }
    fn chain(&mut self) -> &mut Chain {
        &mut self.in_call
    }
}

/// An endpoint's address as its table key, hashed as one word for IPv4 (as
/// [`super::stream::StreamKey`] is hashed by words): an INVITE with SDP looks up and
/// inserts its endpoints, and the derived hash, which feeds a `SocketAddr` to the hasher
/// field by field, cost the INVITE-with-SDP flood 4 % of its instructions. Equal keys hash
/// equal: only fields `Eq` compares are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At(SocketAddr);

impl core::hash::Hash for At {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        match self.0 {
            SocketAddr::V4(a) => {
                h.write_u64(u64::from(a.ip().to_bits()) << 16 | u64::from(a.port()));
            }
            SocketAddr::V6(a) => {
                h.write_u128(a.ip().to_bits());
                h.write_u16(a.port());
            }
        }
    }
}

/// The endpoint table, keyed by `(ip, port)`; one eviction class, least recently used
/// (registered or matched by a packet) first.
pub(super) struct Endpoints {
    table: Table<At, Endpoint>,
    /// Each call's endpoints, so a call's departure costs only its own.
    links: CallLinks,
}

impl Endpoints {
    /// `calls`: the call table's capacity.
    pub fn new(capacity: usize, calls: usize) -> Endpoints {
        Endpoints {
            table: Table::new("media_endpoints", capacity),
            links: CallLinks::new(calls),
        }
    }

    pub fn memory_bytes(capacity: usize, calls: usize) -> usize {
        Table::<At, Endpoint>::memory_bytes(capacity) + CallLinks::memory_bytes(calls)
    }

    pub fn stats(&self) -> TableStats {
        self.table.stats()
    }

    pub fn get(&self, slot: u32) -> Option<&Endpoint> {
        self.table.by_slot(slot).map(|(_, e)| e)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Endpoint> {
        self.table.by_slot_mut(slot).map(|(_, e)| e)
    }

    /// The endpoint a datagram `src` → `dst` belongs to: its destination's, else its
    /// source's (symmetric RTP). With it, whether the datagram flows toward the
    /// endpoint's owner. A match counts as use (the endpoint is evicted last).
    pub fn find(&mut self, src: SocketAddr, dst: SocketAddr) -> Option<(u32, bool)> {
        let found = match self.table.slot_of(&At(dst)) {
            Some(s) => Some((s, true)),
            None => self.table.slot_of(&At(src)).map(|s| (s, false)),
        };
        if let Some((s, _)) = found {
            self.table.touch(s);
        }
        found
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
                serial: call.serial,
                call_slot: call.slot,
                in_call: Chain::NONE,
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
                let r = Endpoint {
                    call_id: ep.call_id.clone(),
                    rtcp: true,
                    pts: heapless::Vec::new(),
                    ..ep
                };
                self.insert(SocketAddr::new(rtcp_addr, rtcp_port), r);
            }
            self.insert(rtp_at, ep);
        }
    }

    fn insert(&mut self, at: SocketAddr, ep: Endpoint) {
        let at = At(at);
        // Announced again (re-INVITE, or another call reusing the address): the new
        // announcement replaces the old, on its own call's list.
        // (Replaced in place: same slot, not counted as a new insert.)
        if let Some(old) = self.table.slot_of(&at) {
            self.links.unlink(&mut self.table, old);
        }
        self.open(ep.call());
        // Least recently used goes first when full.
        let inserted = self.table.insert(at, ep, 0, 1);
        let Some(slot) = self.table.slot_of(&at) else {
            return; // rejected
        };
        if let Inserted::Evicted(_, mut gone) = inserted {
            self.links.unlink_removed(&mut self.table, slot, &mut gone);
        }
        self.links.push(&mut self.table, slot);
    }

    /// Drops every endpoint of `call`: only its own are visited.
    pub fn forget(&mut self, call: CallRef) {
        while let Some(s) = self.links.first(call) {
            self.links.unlink(&mut self.table, s);
            self.table.discard_slot(s);
        }
        self.links.release(call);
    }

    /// The call slot `call` takes may still list a departed call's endpoints (a call
    /// evicted from the call table): they go, so its address no longer leads to it.
    pub fn open(&mut self, call: CallRef) {
        if let Some(prev) = self.links.open(call) {
            self.forget(prev);
            self.links.open(call);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(body: &str) -> sdp::Sdp {
        sdp::parse(body.as_bytes()).unwrap()
    }

    fn id(s: &str) -> CallId {
        let mut c = CallId::new();
        fill(&mut c, s);
        c
    }

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\n\
        t=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:8 pcma/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n";

    fn call(serial: u64) -> CallRef {
        CallRef {
            serial,
            slot: serial as u32,
        }
    }

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_offered_endpoint_matches_packets_to_and_from_it() {
        let mut eps = Endpoints::new(16, 8);
        eps.register(
            call(7),
            &id("c1"),
            Party::Caller,
            &sdp(OFFER),
            Instant::from_secs(1),
        );
        let (slot, toward) = eps.find(at("10.0.0.2:5000"), at("10.0.0.1:4000")).unwrap();
        assert!(toward, "sent to the endpoint: flows toward its owner");
        let e = eps.get(slot).unwrap();
        assert_eq!((e.serial, e.owner, e.rtcp), (7, Party::Caller, false));
        assert_eq!(e.call_id.as_str(), "c1");
        // Symmetric RTP: the owner's own packets come from the same address.
        let (back, toward) = eps.find(at("10.0.0.1:4000"), at("10.0.0.2:5000")).unwrap();
        assert_eq!((back, toward), (slot, false));
        assert!(eps.find(at("10.0.0.9:1"), at("10.0.0.9:2")).is_none());
    }

    #[test]
    fn payload_types_keep_the_static_spelling_and_mark_telephone_events() {
        let mut eps = Endpoints::new(16, 8);
        eps.register(
            call(1),
            &id("c"),
            Party::Callee,
            &sdp(OFFER),
            Instant::from_secs(1),
        );
        let (slot, _) = eps.find(at("10.0.0.2:1"), at("10.0.0.1:4000")).unwrap();
        let pts = &eps.get(slot).unwrap().pts;
        let names: Vec<(u8, &str, u32, bool)> = pts
            .iter()
            .map(|p| (p.pt, p.codec.as_str(), p.clock, p.event))
            .collect();
        assert_eq!(
            names,
            [
                (0, "PCMU", 8000, false),
                (8, "PCMA", 8000, false),
                (101, "telephone-event", 8000, true)
            ]
        );
    }

    #[test]
    fn rtcp_is_expected_on_the_next_port_unless_muxed() {
        let mut eps = Endpoints::new(16, 8);
        eps.register(
            call(1),
            &id("c"),
            Party::Caller,
            &sdp(OFFER),
            Instant::from_secs(1),
        );
        let (slot, _) = eps.find(at("10.0.0.2:1"), at("10.0.0.1:4001")).unwrap();
        assert!(eps.get(slot).unwrap().rtcp);
        assert!(eps.get(slot).unwrap().pts.is_empty());

        let muxed = OFFER.replace("a=rtpmap:8", "a=rtcp-mux\r\na=rtpmap:8");
        let mut eps = Endpoints::new(16, 8);
        eps.register(
            call(1),
            &id("c"),
            Party::Caller,
            &sdp(&muxed),
            Instant::from_secs(1),
        );
        assert!(eps.find(at("10.0.0.2:1"), at("10.0.0.1:4001")).is_none());
        assert_eq!(eps.stats().len, 1);
    }

    #[test]
    fn rejected_and_held_media_lines_register_nothing() {
        let mut eps = Endpoints::new(16, 8);
        let rejected = OFFER.replace("m=audio 4000", "m=audio 0");
        eps.register(
            call(1),
            &id("c"),
            Party::Caller,
            &sdp(&rejected),
            Instant::from_secs(1),
        );
        let held = OFFER.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0");
        eps.register(
            call(2),
            &id("d"),
            Party::Caller,
            &sdp(&held),
            Instant::from_secs(1),
        );
        assert_eq!(eps.stats().len, 0);
    }

    #[test]
    fn forgetting_a_call_drops_only_its_endpoints() {
        let mut eps = Endpoints::new(16, 8);
        eps.register(
            call(1),
            &id("a"),
            Party::Caller,
            &sdp(OFFER),
            Instant::from_secs(1),
        );
        let other = OFFER.replace("10.0.0.1", "10.0.0.5");
        eps.register(
            call(2),
            &id("b"),
            Party::Caller,
            &sdp(&other),
            Instant::from_secs(1),
        );
        assert_eq!(eps.stats().len, 4);
        eps.forget(call(1));
        assert_eq!(eps.stats().len, 2);
        assert!(eps.find(at("10.0.0.2:1"), at("10.0.0.1:4000")).is_none());
        assert!(eps.find(at("10.0.0.2:1"), at("10.0.0.5:4000")).is_some());
    }

    #[test]
    fn a_full_table_evicts_the_endpoint_used_least_recently() {
        let mut eps = Endpoints::new(2, 8);
        let muxed = OFFER.replace("a=rtpmap:8", "a=rtcp-mux\r\na=rtpmap:8");
        eps.register(
            call(1),
            &id("a"),
            Party::Caller,
            &sdp(&muxed),
            Instant::from_secs(1),
        );
        let b = muxed.replace("10.0.0.1", "10.0.0.5");
        eps.register(
            call(2),
            &id("b"),
            Party::Caller,
            &sdp(&b),
            Instant::from_secs(2),
        );
        let c = muxed.replace("10.0.0.1", "10.0.0.6");
        eps.register(
            call(3),
            &id("c"),
            Party::Caller,
            &sdp(&c),
            Instant::from_secs(3),
        );
        assert!(eps.find(at("10.0.0.2:1"), at("10.0.0.1:4000")).is_none());
        assert!(eps.find(at("10.0.0.2:1"), at("10.0.0.6:4000")).is_some());
        assert_eq!(eps.stats().evicted, 1);
    }
}
