//! The frame decoder: link header, VLAN tags, IP (with fragment reassembly), remote-mirror
//! tunnels decoded recursively, then UDP or TCP.
//!
//! Everything is zero-copy over the frame except a reassembled datagram, whose bytes live
//! in the fragment table's buffer: that is why [`Decoder::decode`] borrows `&'a mut self`
//! for as long as the returned packet lives.

use super::frag::{FragKey, FragOutcome, Reassembler};
use super::ip::{self, PROTO_GRE, PROTO_IPIP, PROTO_IPV6};
use super::link::{self, Network};
use super::tunnel::{self, Inner, TZSP_PORT, VXLAN_PORT};
use super::{DecodeError, Encap, LinkType, Packet, Transport, WireCounters, sctp};
use crate::table::TableStats;
use core::net::IpAddr;
use embassy_time::{Duration, Instant};

/// Tunnels nested deeper than this are refused (`TooDeep`): real mirror setups use one or
/// two levels; a crafted packet could otherwise recurse without end.
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// Decodes frames into UDP/TCP packets; owns the fragment table and the counters.
pub struct Decoder {
    frag: Reassembler,
    counters: WireCounters,
}

/// Per-frame decoding state carried down the layers.
struct State<'c> {
    counters: &'c mut WireCounters,
    now: Instant,
    vlan: Option<u16>,
    encap: Encap,
    depth: usize,
}

impl Decoder {
    /// `frag_capacity`: most datagrams reassembled at once; every buffer is allocated now.
    pub fn new(frag_capacity: usize, frag_timeout: Duration) -> Decoder {
        Decoder {
            frag: Reassembler::new(frag_capacity, frag_timeout),
            counters: WireCounters::default(),
        }
    }

    /// `Ok(Some(packet))`: the innermost UDP or TCP packet. `Ok(None)`: a fragment was
    /// stored (or dropped as oversize), awaiting the rest. `Err(e)`: counted; skip it.
    pub fn decode<'a>(
        &'a mut self,
        now: Instant,
        link: LinkType,
        frame: &'a [u8],
    ) -> Result<Option<Packet<'a>>, DecodeError> {
        let Decoder { frag, counters } = self;
        let mut st = State {
            counters,
            now,
            vlan: None,
            encap: Encap::default(),
            depth: 0,
        };
        let mut frag = Some(frag);
        let r = link::strip(link, frame).and_then(|l| {
            st.vlan = l.vlan;
            st.encap = l.encap;
            network(&mut st, &mut frag, l.network)
        });
        let c = &mut *st.counters;
        match &r {
            Ok(Some(p)) => {
                if p.vlan.is_some() {
                    c.vlan_tagged += 1;
                }
                match p.src {
                    IpAddr::V4(_) => c.ipv4 += 1,
                    IpAddr::V6(_) => c.ipv6 += 1,
                }
            }
            Ok(None) => {}
            Err(DecodeError::Truncated) => c.truncated += 1,
            Err(DecodeError::Malformed) => c.malformed += 1,
            Err(DecodeError::UnsupportedLink) => c.unsupported_link += 1,
            Err(DecodeError::NotIpTransport) => c.not_ip_transport += 1,
            Err(DecodeError::TooDeep) => c.too_deep += 1,
        }
        r
    }

    /// Drops fragment sets older than the timeout (counted in `fragments_timed_out`).
    pub fn expire(&mut self, now: Instant) {
        self.frag.expire(now);
    }

    pub fn counters(&self) -> WireCounters {
        let f = self.frag.counters();
        WireCounters {
            fragments: f.fragments,
            fragments_reassembled: f.reassembled,
            fragments_timed_out: f.timed_out,
            fragments_evicted: f.evicted,
            fragments_oversize: f.oversize,
            ..self.counters
        }
    }

    pub fn frag_stats(&self) -> TableStats {
        self.frag.stats()
    }
}

/// Decodes an IP packet. `frag` is taken (and so usable once per frame) when a fragment
/// completes a datagram, since the result borrows the fragment table.
fn network<'a>(
    st: &mut State<'_>,
    frag: &mut Option<&'a mut Reassembler>,
    net: Network<'a>,
) -> Result<Option<Packet<'a>>, DecodeError> {
    let (ip, v6) = match net {
        Network::Ipv4(b) => (ip::parse_ipv4(b)?, false),
        Network::Ipv6(b) => (ip::parse_ipv6(b)?, true),
    };
    let (proto, payload) = match ip.frag {
        None => (ip.proto, ip.payload),
        Some(fi) => {
            // A second reassembly in one frame (fragments inside a reassembled tunnel
            // datagram) would need two buffers at once: refuse it as too deep.
            let r = frag.take().ok_or(DecodeError::TooDeep)?;
            let key = FragKey {
                src: ip.src,
                dst: ip.dst,
                id: fi.id,
                proto: ip.proto,
            };
            match r.insert(st.now, key, fi, ip.payload) {
                FragOutcome::Stored | FragOutcome::Oversize => return Ok(None),
                FragOutcome::Inconsistent => return Err(DecodeError::Malformed),
                FragOutcome::Complete(data) => {
                    st.encap.0 |= Encap::FRAGMENTED;
                    if v6 {
                        // The fragmentable part may start with more extension headers.
                        match ip::walk_ipv6_ext(ip.proto, data)? {
                            (p, d, None) => (p, d),
                            (_, _, Some(_)) => return Err(DecodeError::Malformed),
                        }
                    } else {
                        (ip.proto, data)
                    }
                }
            }
        }
    };
    match proto {
        PROTO_IPIP => decapsulate(st, frag, Inner::Ipv4(payload), Encap::IPIP),
        PROTO_IPV6 => decapsulate(st, frag, Inner::Ipv6(payload), Encap::IPIP),
        PROTO_GRE => {
            let d = tunnel::gre(payload)?;
            decapsulate(st, frag, d.inner, d.encap)
        }
        sctp::PROTO_SCTP => {
            let p = sctp::SctpPacket::new_checked(payload)?;
            Ok(Some(Packet {
                src: ip.src,
                dst: ip.dst,
                vlan: st.vlan,
                encap: st.encap,
                transport: Transport::Sctp {
                    src_port: p.src_port(),
                    dst_port: p.dst_port(),
                    chunks: payload.get(sctp::HEADER_LEN..).unwrap_or(&[]),
                },
            }))
        }
        _ => {
            let transport = ip::parse_transport(proto, payload)?;
            if let Transport::Udp {
                dst_port, payload, ..
            } = transport
            {
                if dst_port == VXLAN_PORT {
                    let d = tunnel::vxlan(payload)?;
                    return decapsulate(st, frag, d.inner, d.encap);
                }
                if dst_port == TZSP_PORT {
                    let d = tunnel::tzsp(payload)?;
                    return decapsulate(st, frag, d.inner, d.encap);
                }
            }
            Ok(Some(Packet {
                src: ip.src,
                dst: ip.dst,
                vlan: st.vlan,
                encap: st.encap,
                transport,
            }))
        }
    }
}

/// Goes one tunnel level down, counting the tunnel kinds `bits` names.
fn decapsulate<'a>(
    st: &mut State<'_>,
    frag: &mut Option<&'a mut Reassembler>,
    inner: Inner<'a>,
    bits: u16,
) -> Result<Option<Packet<'a>>, DecodeError> {
    st.depth += 1;
    if st.depth > MAX_TUNNEL_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    st.encap.0 |= bits;
    let c = &mut *st.counters;
    let e = Encap(bits);
    c.gre += u64::from(e.has(Encap::GRE));
    c.erspan += u64::from(e.has(Encap::ERSPAN));
    c.vxlan += u64::from(e.has(Encap::VXLAN));
    c.ipip += u64::from(e.has(Encap::IPIP));
    c.tzsp += u64::from(e.has(Encap::TZSP));
    match inner {
        Inner::Ethernet(b) => {
            let l = link::ethernet(b)?;
            if l.vlan.is_some() {
                st.vlan = l.vlan;
            }
            st.encap.0 |= l.encap.0;
            network(st, frag, l.network)
        }
        Inner::Ipv4(b) => network(st, frag, Network::Ipv4(b)),
        Inner::Ipv6(b) => network(st, frag, Network::Ipv6(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const MACS: [u8; 12] = [
        0x00, 0x1b, 0x21, 0x0a, 0x0b, 0x0c, 0x00, 0x50, 0x56, 0x01, 0x02, 0x03,
    ];

    /// IPv4 header (no options, checksum zero: never verified) for `payload`.
    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&frag.to_be_bytes());
        v.extend_from_slice(&[64, proto, 0, 0]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(payload);
        v
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = sport.to_be_bytes().to_vec();
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = MACS.to_vec();
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    const SIP: &[u8] = b"OPTIONS sip:pbx SIP/2.0\r\n\r\n";
    const A: [u8; 4] = [10, 1, 1, 1];
    const B: [u8; 4] = [10, 1, 1, 2];

    fn sip_udp_frame() -> Vec<u8> {
        eth(0x0800, &ipv4(17, A, B, 1, 0, &udp(5060, 5060, SIP)))
    }

    fn decoder() -> Decoder {
        Decoder::new(8, Duration::from_secs(30))
    }

    fn udp_payload<'a>(p: &Packet<'a>) -> &'a [u8] {
        match p.transport {
            Transport::Udp { payload, .. } => payload,
            Transport::Tcp { .. } | Transport::Sctp { .. } => &[],
        }
    }

    #[test]
    fn plain_ethernet_udp_decodes_and_ignores_padding() {
        let mut f = sip_udp_frame();
        f.extend_from_slice(&[0; 6]);
        let mut d = decoder();
        let p = d
            .decode(Instant::from_secs(1), LinkType::Ethernet, &f)
            .unwrap()
            .unwrap();
        assert_eq!(p.src, IpAddr::V4(Ipv4Addr::from(A)));
        assert_eq!(udp_payload(&p), SIP);
        assert_eq!(p.encap, Encap::default());
        assert_eq!(d.counters().ipv4, 1);
    }

    #[test]
    fn erspan_ii_in_gre_in_ipv4_is_decapsulated() {
        let inner = sip_udp_frame();
        let mut gre = vec![
            0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 9, 0x10, 0x64, 0x00, 0x01, 0, 0, 0, 0,
        ];
        gre.extend_from_slice(&inner);
        let f = eth(
            0x0800,
            &ipv4(47, [192, 0, 2, 1], [192, 0, 2, 2], 7, 0, &gre),
        );
        let mut d = decoder();
        let p = d
            .decode(Instant::from_secs(1), LinkType::Ethernet, &f)
            .unwrap()
            .unwrap();
        assert!(p.encap.has(Encap::GRE) && p.encap.has(Encap::ERSPAN));
        assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::from(B)));
        assert_eq!(udp_payload(&p), SIP);
        let c = d.counters();
        assert_eq!((c.gre, c.erspan), (1, 1));
    }

    #[test]
    fn vxlan_inner_vlan_is_reported() {
        let tagged = {
            let ip = ipv4(17, A, B, 1, 0, &udp(5060, 5060, SIP));
            let mut t = vec![0x00, 0x2a, 0x08, 0x00];
            t.extend_from_slice(&ip);
            eth(0x8100, &t)
        };
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x64, 0];
        vx.extend_from_slice(&tagged);
        let f = eth(
            0x0800,
            &ipv4(
                17,
                [192, 0, 2, 1],
                [192, 0, 2, 2],
                3,
                0,
                &udp(50000, 4789, &vx),
            ),
        );
        let mut d = decoder();
        let p = d
            .decode(Instant::from_secs(1), LinkType::Ethernet, &f)
            .unwrap()
            .unwrap();
        assert_eq!(p.vlan, Some(42));
        assert!(p.encap.has(Encap::VXLAN) && p.encap.has(Encap::VLAN));
        assert_eq!(udp_payload(&p), SIP);
    }

    #[test]
    fn ipip_sets_ipip_bit_and_inner_addresses() {
        let inner = ipv4(17, A, B, 1, 0, &udp(5060, 5060, SIP));
        let f = ipv4(4, [192, 0, 2, 1], [192, 0, 2, 2], 2, 0, &inner);
        let mut d = decoder();
        let p = d
            .decode(Instant::from_secs(1), LinkType::RawIp, &f)
            .unwrap()
            .unwrap();
        assert!(p.encap.has(Encap::IPIP));
        assert_eq!(p.src, IpAddr::V4(Ipv4Addr::from(A)));
    }

    #[test]
    fn nesting_beyond_the_limit_is_too_deep() {
        let mut f = ipv4(17, A, B, 1, 0, &udp(5060, 5060, SIP));
        for _ in 0..=MAX_TUNNEL_DEPTH {
            f = ipv4(4, A, B, 1, 0, &f);
        }
        let mut d = decoder();
        assert_eq!(
            d.decode(Instant::from_secs(1), LinkType::RawIp, &f),
            Err(DecodeError::TooDeep)
        );
        assert_eq!(d.counters().too_deep, 1);
    }

    #[test]
    fn ipv4_fragments_reassemble_into_one_udp_packet() {
        let dgram = udp(5060, 5060, SIP);
        let (head, tail) = dgram.split_at(16);
        // First fragment MF=1 offset 0; second offset 2 units (16 bytes), MF=0.
        let f1 = eth(0x0800, &ipv4(17, A, B, 0x4242, 0x2000, head));
        let f2 = eth(0x0800, &ipv4(17, A, B, 0x4242, 0x0002, tail));
        let mut d = decoder();
        assert_eq!(
            d.decode(Instant::from_secs(1), LinkType::Ethernet, &f2),
            Ok(None)
        );
        let p = d
            .decode(Instant::from_secs(1), LinkType::Ethernet, &f1)
            .unwrap()
            .unwrap();
        assert!(p.encap.has(Encap::FRAGMENTED));
        assert_eq!(udp_payload(&p), SIP);
        let c = d.counters();
        assert_eq!((c.fragments, c.fragments_reassembled), (2, 1));
        assert_eq!(d.frag_stats().len, 0);
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let mut d = decoder();
        let now = Instant::from_secs(1);
        let f = sip_udp_frame();
        assert_eq!(
            d.decode(now, LinkType::Ethernet, &f[..30]),
            Err(DecodeError::Truncated)
        );
        let arp = eth(0x0806, &[0; 28]);
        assert_eq!(
            d.decode(now, LinkType::Ethernet, &arp),
            Err(DecodeError::NotIpTransport)
        );
        let icmp = eth(0x0800, &ipv4(1, A, B, 1, 0, &[8, 0, 0, 0]));
        assert_eq!(
            d.decode(now, LinkType::Ethernet, &icmp),
            Err(DecodeError::NotIpTransport)
        );
        let c = d.counters();
        assert_eq!((c.truncated, c.not_ip_transport), (1, 2));
    }
}

/// Every public capture under `../shared/pcaps` through the decoder, checked against
/// tshark's view of the same files (`tshark -Y udp` / `-Y tcp` frame counts).
#[cfg(test)]
mod pcap_tests {
    use super::*;
    use crate::wire::tcp_stream::{FlowKey, Framing, TcpCounters, TcpStreams};
    use core::net::SocketAddr;
    use std::path::PathBuf;

    fn dir() -> Option<PathBuf> {
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
        if d.is_dir() {
            Some(d)
        } else {
            println!("skipped: {} is absent", d.display());
            None
        }
    }

    /// Feeds every frame of `name` to `f` with its timestamp and link type.
    fn each_frame(name: &str, mut f: impl FnMut(Instant, LinkType, &[u8])) -> bool {
        let Some(d) = dir() else { return false };
        let mut cap = pcap::Capture::from_file(d.join(name)).expect("open capture");
        let link = LinkType::from_dlt(cap.get_datalink().0).expect("known link type");
        while let Ok(p) = cap.next_packet() {
            // sip_ipv6_udp_call.pcap has garbage (negative) timestamps: clamp, never panic.
            let secs = u64::try_from(p.header.ts.tv_sec).unwrap_or(0);
            let us = u64::try_from(p.header.ts.tv_usec).unwrap_or(0);
            let us = secs.saturating_mul(1_000_000).saturating_add(us);
            f(Instant::from_micros(us), link, p.data);
        }
        true
    }

    #[derive(Default, Debug)]
    struct Tally {
        udp: usize,
        tcp: usize,
        sctp: usize,
        stored: usize,
        errors: usize,
    }

    fn tally(name: &str, mut check: impl FnMut(&Packet<'_>)) -> Option<(Tally, WireCounters)> {
        let mut d = Decoder::new(16, Duration::from_secs(30));
        let mut t = Tally::default();
        let ran = each_frame(name, |now, link, frame| match d.decode(now, link, frame) {
            Ok(Some(p)) => {
                match p.transport {
                    Transport::Udp { .. } => t.udp += 1,
                    Transport::Tcp { .. } => t.tcp += 1,
                    Transport::Sctp { .. } => t.sctp += 1,
                }
                check(&p);
            }
            Ok(None) => t.stored += 1,
            Err(_) => t.errors += 1,
        });
        ran.then(|| (t, d.counters()))
    }

    #[test]
    fn every_capture_matches_tsharks_udp_and_tcp_counts() {
        // (file, UDP frames, TCP frames) as tshark counts them.
        let expected = [
            ("aaa_register_cancel_4xx.pcap", 590, 57),
            ("erspan_sip_multicall_hold.pcapng", 140, 0),
            ("fax_call_t38_reinvite_dtmf.pcap", 7217, 0),
            ("ipv6_fragmented_sip_prack_update.pcap", 32, 0),
            ("ndpi_rtcp_compound.pcap", 5, 0),
            ("ndpi_rtp_vlan_opus_h263.pcapng", 75, 37),
            ("ndpi_sip_register_401.pcapng", 30, 0),
            ("rtpproxy_dtmf_rfc2833.pcap", 196, 0),
            ("rtpproxy_rtp_rtcp.pcap", 230, 0),
            ("rtpproxy_srtp_stream.pcap", 1564, 0),
            ("sip_call_rtp_g711.pcap", 3583, 522),
            ("sip_ipv6_udp_call.pcap", 6, 0),
            ("sip_sctp.pcap", 0, 0),
            ("sip_tcp6060_segmented_70calls.pcap", 0, 1542),
            ("sip_tcp_call_rtp_rtcp.pcap", 68, 16),
            ("sip_tcp_ipip_tunnel.pcap", 0, 4),
            ("sip_tcp_retrans.pcap", 4, 181),
            ("sip_udp_rawip_linktype.pcap", 8, 0),
            ("sip_websocket.pcap", 28, 33),
            ("sipp_dtmf_2833_1.pcap", 10, 0),
            ("sipp_dtmf_2833_pound.pcap", 10, 0),
            ("sipp_g711a_rtp_only.pcap", 236, 0),
        ];
        for (name, udp, tcp) in expected {
            let Some((t, c)) = tally(name, |_| {}) else {
                return;
            };
            println!(
                "{name}: {t:?} truncated={} malformed={}",
                c.truncated, c.malformed
            );
            assert_eq!((t.udp, t.tcp), (udp, tcp), "{name}");
            assert_eq!(c.truncated + c.malformed + c.too_deep, 0, "{name}");
        }
    }

    fn is_sip_start(b: &[u8]) -> bool {
        let line = b.split(|&c| c == b'\r').next().unwrap_or(&[]);
        line.starts_with(b"SIP/2.0 ") || line.ends_with(b" SIP/2.0")
    }

    #[test]
    fn gre_mirror_capture_yields_sip_over_udp_with_gre_bit() {
        let mut sip = 0;
        let r = tally("erspan_sip_multicall_hold.pcapng", |p| {
            assert!(p.encap.has(Encap::GRE));
            if let Transport::Udp { payload, .. } = p.transport
                && is_sip_start(payload)
            {
                sip += 1;
            }
        });
        let Some((_, c)) = r else { return };
        assert_eq!((sip, c.gre), (140, 140));
    }

    #[test]
    fn ipv6_fragmented_invite_is_reassembled() {
        let mut reassembled = Vec::new();
        let r = tally("ipv6_fragmented_sip_prack_update.pcap", |p| {
            if p.encap.has(Encap::FRAGMENTED)
                && let Transport::Udp { payload, .. } = p.transport
            {
                reassembled.push(payload.to_vec());
            }
        });
        let Some((t, c)) = r else { return };
        assert_eq!((t.stored, c.fragments, c.fragments_reassembled), (2, 4, 2));
        assert_eq!(reassembled.len(), 2);
        for m in &reassembled {
            assert!(m.starts_with(b"INVITE sip:"), "{:?}", &m[..20]);
        }
    }

    #[test]
    fn raw_ip_capture_yields_eight_sip_datagrams() {
        let mut sip = 0;
        let r = tally("sip_udp_rawip_linktype.pcap", |p| {
            if let Transport::Udp { payload, .. } = p.transport
                && is_sip_start(payload)
            {
                sip += 1;
            }
        });
        if r.is_some() {
            assert_eq!(sip, 8);
        }
    }

    #[test]
    fn ipip_capture_has_two_tunnelled_tcp_packets() {
        let mut ipip = 0;
        let r = tally("sip_tcp_ipip_tunnel.pcap", |p| {
            assert!(matches!(p.transport, Transport::Tcp { .. }));
            ipip += usize::from(p.encap.has(Encap::IPIP));
        });
        if let Some((_, c)) = r {
            assert_eq!((ipip, c.ipip), (2, 2));
        }
    }

    #[test]
    fn vlan_capture_reports_vlan_ids() {
        let mut tagged = 0;
        let r = tally("ndpi_rtp_vlan_opus_h263.pcapng", |p| {
            if p.vlan.is_some() {
                assert!(p.encap.has(Encap::VLAN));
                tagged += 1;
            }
        });
        if let Some((_, c)) = r {
            assert!(tagged > 0);
            assert_eq!(c.vlan_tagged, tagged);
        }
    }

    fn find(h: &[u8], n: &[u8]) -> Option<usize> {
        h.windows(n.len()).position(|w| w == n)
    }

    /// Minimal SIP-over-TCP framer for the test: header block up to CRLFCRLF, then
    /// Content-Length bytes of body.
    fn sip_framer(b: &[u8]) -> Framing {
        let crlf = b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
        if crlf > 0 {
            return Framing::Skip(crlf);
        }
        if let Some(eol) = find(b, b"\r\n")
            && !is_sip_start(b)
        {
            return Framing::Skip(eol + 2);
        }
        let Some(end) = find(b, b"\r\n\r\n") else {
            return Framing::NeedMore;
        };
        let head = String::from_utf8_lossy(&b[..end]).to_ascii_lowercase();
        let len = head
            .split("\r\n")
            .find_map(|l| {
                let v = l.strip_prefix("content-length:").or(l.strip_prefix("l:"))?;
                v.trim().parse::<usize>().ok()
            })
            .unwrap_or(0);
        let total = end + 4 + len;
        if b.len() >= total {
            Framing::Complete(total)
        } else {
            Framing::NeedMore
        }
    }

    #[test]
    fn truncated_and_corrupted_real_frames_never_panic() {
        // Every prefix of the first frames of each tunnel/link variety, then random byte
        // corruption (a fixed LCG: reproducible).
        let mut rng: u32 = 0x1234_5678;
        let mut d = Decoder::new(4, Duration::from_secs(30));
        for name in [
            "erspan_sip_multicall_hold.pcapng",
            "ipv6_fragmented_sip_prack_update.pcap",
            "sip_tcp_ipip_tunnel.pcap",
            "ndpi_rtp_vlan_opus_h263.pcapng",
            "sip_udp_rawip_linktype.pcap",
        ] {
            let mut n = 0;
            let ran = each_frame(name, |now, link, frame| {
                n += 1;
                if n > 40 {
                    return;
                }
                for cut in 0..frame.len().min(200) {
                    let _ = d.decode(now, link, &frame[..cut]);
                }
                let mut f = frame.to_vec();
                for _ in 0..200 {
                    rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let at = (rng >> 8) as usize % f.len().clamp(1, 120);
                    if let Some(b) = f.get_mut(at) {
                        *b = (rng >> 24) as u8;
                    }
                    let _ = d.decode(now, link, &f);
                }
            });
            if !ran {
                return;
            }
        }
        assert!(d.counters().truncated > 0);
    }

    /// SIP messages that `TcpStreams` delivers from every TCP packet of `name`.
    fn tcp_sip_messages(name: &str) -> Option<(usize, TcpCounters)> {
        let mut d = Decoder::new(4, Duration::from_secs(30));
        let mut streams = TcpStreams::new(64, 16384, Duration::from_secs(300));
        let mut msgs = 0;
        let ran = each_frame(name, |now, link, frame| {
            let Ok(Some(p)) = d.decode(now, link, frame) else {
                return;
            };
            if let Transport::Tcp {
                src_port,
                dst_port,
                seq,
                flags,
                payload,
            } = p.transport
            {
                let key = FlowKey {
                    src: SocketAddr::new(p.src, src_port),
                    dst: SocketAddr::new(p.dst, dst_port),
                };
                streams.segment(now, key, seq, flags, payload, sip_framer, |m| {
                    assert!(is_sip_start(m));
                    msgs += 1;
                });
            }
        });
        ran.then(|| (msgs, streams.counters()))
    }

    #[test]
    fn segmented_sip_over_tcp_gives_tsharks_406_messages() {
        if let Some((msgs, c)) = tcp_sip_messages("sip_tcp6060_segmented_70calls.pcap") {
            println!("{c:?}");
            assert_eq!(msgs, 406);
            assert_eq!((c.resyncs, c.overflows), (0, 0));
        }
    }

    #[test]
    fn tcp_retransmission_does_not_duplicate_a_sip_message() {
        if let Some((msgs, c)) = tcp_sip_messages("sip_tcp_retrans.pcap") {
            println!("{c:?}");
            assert_eq!(msgs, 4);
        }
    }

    #[test]
    fn sip_over_tcp_captures_give_tsharks_message_counts() {
        for (name, want) in [
            ("sip_tcp_call_rtp_rtcp.pcap", 7),
            ("sip_tcp_ipip_tunnel.pcap", 4),
        ] {
            if let Some((msgs, _)) = tcp_sip_messages(name) {
                assert_eq!(msgs, want, "{name}");
            }
        }
    }
}
