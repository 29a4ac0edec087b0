//! Network and transport layers: IPv4, IPv6 (with its extension-header chain), UDP, TCP.
//!
//! smoltcp's views read the fixed fields, but its checked constructors are not used for
//! IPv4: a capture taken on a host with segmentation offload shows IPv4 total length 0,
//! which smoltcp rejects. Checksums are never verified: mirrored traffic often carries
//! offloaded (unfilled) checksums. Lengths come from the IP header, not the frame, so
//! Ethernet padding never leaks into payloads.

use super::{DecodeError, TcpFlags, Transport};
use crate::view::read;
use core::net::IpAddr;
use smoltcp::wire::{
    IpSecAuthHeaderPacket, Ipv4Packet, Ipv6ExtHeader, Ipv6FragmentHeader, Ipv6Packet, TcpPacket,
    UdpPacket,
};

pub const PROTO_HOP_BY_HOP: u8 = 0;
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_ROUTING: u8 = 43;
pub const PROTO_FRAGMENT: u8 = 44;
pub const PROTO_GRE: u8 = 47;
pub const PROTO_ESP: u8 = 50;
pub const PROTO_AH: u8 = 51;
pub const PROTO_NO_NEXT: u8 = 59;
pub const PROTO_DST_OPTS: u8 = 60;

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const FRAG_HEADER: usize = 8;
/// Longer extension chains than this are an attack or garbage; stop there.
pub const MAX_EXT_HEADERS: usize = 8;

/// Where a fragment sits in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Offset of this fragment's payload in the datagram, in bytes.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
}

/// A parsed IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRepr<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol after any extension headers. For a fragment, the protocol of
    /// the fragmented datagram (for IPv6 it may still be an extension header, walked after
    /// reassembly with [`walk_ipv6_ext`]).
    pub proto: u8,
    /// Upper-layer bytes, bounded by the header's length field (padding excluded).
    pub payload: &'a [u8],
    /// Set when this is a fragment of a larger datagram.
    pub frag: Option<FragInfo>,
}

/// Parses an IPv4 header.
pub fn parse_ipv4(buf: &[u8]) -> Result<IpRepr<'_>, DecodeError> {
    if buf.len() < IPV4_MIN_HEADER {
        return Err(DecodeError::Truncated);
    }
    // Length checked above: smoltcp's accessors for fixed fields cannot go out of bounds.
    let p = Ipv4Packet::new_unchecked(buf);
    if p.version() != 4 {
        return Err(DecodeError::Malformed);
    }
    let hl = usize::from(p.header_len());
    if hl < IPV4_MIN_HEADER {
        return Err(DecodeError::Malformed);
    }
    let total = match usize::from(p.total_len()) {
        // Segmentation offload on the capturing host leaves the length unfilled.
        0 => buf.len(),
        t if t < hl => return Err(DecodeError::Malformed),
        t => t,
    };
    let payload = buf.get(hl..total).ok_or(DecodeError::Truncated)?;
    let offset = usize::from(p.frag_offset());
    let more = p.more_frags();
    let frag = (more || offset != 0).then_some(FragInfo {
        id: u32::from(p.ident()),
        offset,
        more,
    });
    Ok(IpRepr {
        src: IpAddr::V4(p.src_addr()),
        dst: IpAddr::V4(p.dst_addr()),
        proto: u8::from(p.next_header()),
        payload,
        frag,
    })
}

/// Parses an IPv6 header and walks its extension headers.
pub fn parse_ipv6(buf: &[u8]) -> Result<IpRepr<'_>, DecodeError> {
    if buf.len() < IPV6_HEADER {
        return Err(DecodeError::Truncated);
    }
    let p = Ipv6Packet::new_unchecked(buf);
    if p.version() != 6 {
        return Err(DecodeError::Malformed);
    }
    let next = u8::from(p.next_header());
    let end = match usize::from(p.payload_len()) {
        // Jumbogram or offloaded segment: the frame is all we have.
        0 if next != PROTO_NO_NEXT => buf.len(),
        n => IPV6_HEADER + n,
    };
    let body = buf.get(IPV6_HEADER..end).ok_or(DecodeError::Truncated)?;
    let (proto, payload, frag) = walk_ipv6_ext(next, body)?;
    Ok(IpRepr {
        src: IpAddr::V6(p.src_addr()),
        dst: IpAddr::V6(p.dst_addr()),
        proto,
        payload,
        frag,
    })
}

/// Walks IPv6 extension headers starting with `next` over `buf`. Stops at the first
/// upper-layer protocol, or at a fragment header of a real fragment (the rest is only
/// readable after reassembly; the returned protocol is then the fragment header's next
/// header). ESP and "no next header" leave nothing to decode.
pub fn walk_ipv6_ext(
    mut next: u8,
    mut buf: &[u8],
) -> Result<(u8, &[u8], Option<FragInfo>), DecodeError> {
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            PROTO_HOP_BY_HOP | PROTO_ROUTING | PROTO_DST_OPTS => {
                let h = Ipv6ExtHeader::new_checked(buf).map_err(|_| DecodeError::Truncated)?;
                let len = usize::from(h.header_len()) * 8 + 8;
                next = u8::from(h.next_header());
                buf = buf.get(len..).ok_or(DecodeError::Truncated)?;
            }
            PROTO_AH => {
                // AH counts its length in 4-octet units minus 2 (RFC 4302); smoltcp's
                // check also refuses a length too small for SPI and sequence number.
                let h = IpSecAuthHeaderPacket::new_checked(buf).map_err(|_| match buf.get(1) {
                    Some(&units) if (usize::from(units) + 2) * 4 <= buf.len() => {
                        DecodeError::Malformed
                    }
                    _ => DecodeError::Truncated,
                })?;
                let len = (usize::from(h.payload_len()) + 2) * 4;
                next = u8::from(h.next_header());
                buf = buf.get(len..).ok_or(DecodeError::Truncated)?;
            }
            PROTO_FRAGMENT => {
                // Next header and a reserved octet, then smoltcp's fragment header proper.
                let h = buf.get(..FRAG_HEADER).ok_or(DecodeError::Truncated)?;
                let f = Ipv6FragmentHeader::new_checked(h.get(2..).unwrap_or(&[]))
                    .map_err(|_| DecodeError::Truncated)?;
                let id = f.ident();
                let offset = usize::from(f.frag_offset()) * 8;
                let more = f.more_frags();
                next = h.first().copied().unwrap_or(PROTO_NO_NEXT);
                buf = buf.get(FRAG_HEADER..).unwrap_or(&[]);
                if offset != 0 || more {
                    return Ok((next, buf, Some(FragInfo { id, offset, more })));
                }
                // An atomic fragment (RFC 6946) is a whole datagram: keep walking.
            }
            PROTO_ESP | PROTO_NO_NEXT => return Err(DecodeError::NotIpTransport),
            _ => return Ok((next, buf, None)),
        }
    }
    Err(DecodeError::Malformed)
}

/// Parses the UDP or TCP header that `proto` announces.
pub fn parse_transport(proto: u8, buf: &[u8]) -> Result<Transport<'_>, DecodeError> {
    match proto {
        PROTO_UDP => {
            let u = UdpPacket::new_checked(buf).map_err(|_| {
                // Short-circuit: the length field is only read from a whole header.
                if buf.len() < 8 || usize::from(read::be16(buf, 4..6)) > buf.len() {
                    DecodeError::Truncated
                } else {
                    DecodeError::Malformed
                }
            })?;
            Ok(Transport::Udp {
                src_port: u.src_port(),
                dst_port: u.dst_port(),
                payload: u.payload(),
            })
        }
        PROTO_TCP => {
            let t = TcpPacket::new_checked(buf).map_err(|_| {
                // Data offset below 5 words is impossible; anything else was cut short.
                match buf.get(12) {
                    Some(off) if usize::from(off >> 4) * 4 < 20 => DecodeError::Malformed,
                    _ => DecodeError::Truncated,
                }
            })?;
            let hl = usize::from(t.header_len());
            Ok(Transport::Tcp {
                src_port: t.src_port(),
                dst_port: t.dst_port(),
                seq: t.seq_number().0 as u32,
                flags: TcpFlags {
                    syn: t.syn(),
                    fin: t.fin(),
                    rst: t.rst(),
                },
                payload: buf.get(hl..).unwrap_or(&[]),
            })
        }
        _ => Err(DecodeError::NotIpTransport),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    /// IPv4 + UDP header of a real SIP OPTIONS keep-alive: 10.0.0.5:5060 -> 10.0.0.1:5060,
    /// total length 32 (4 payload bytes "\r\n\r\n"), checksum left as captured.
    const IPV4_UDP: [u8; 32] = [
        0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x0a, 0x5c, 0x0a, 0x00, 0x00,
        0x05, 0x0a, 0x00, 0x00, 0x01, 0x13, 0xc4, 0x13, 0xc4, 0x00, 0x0c, 0x00, 0x00, b'\r', b'\n',
        b'\r', b'\n',
    ];

    #[test]
    fn ipv4_udp_gives_addresses_ports_and_payload() {
        let ip = parse_ipv4(&IPV4_UDP).unwrap();
        assert_eq!(ip.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(ip.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((ip.proto, ip.frag), (PROTO_UDP, None));
        let t = parse_transport(ip.proto, ip.payload).unwrap();
        assert_eq!(
            t,
            Transport::Udp {
                src_port: 5060,
                dst_port: 5060,
                payload: b"\r\n\r\n"
            }
        );
    }

    #[test]
    fn ethernet_padding_after_total_length_is_ignored() {
        let mut f = IPV4_UDP.to_vec();
        f.extend_from_slice(&[0; 14]);
        let ip = parse_ipv4(&f).unwrap();
        assert_eq!(ip.payload.len(), 12);
    }

    #[test]
    fn bad_checksum_is_accepted() {
        let mut f = IPV4_UDP;
        f[10] ^= 0xff;
        assert!(parse_ipv4(&f).is_ok());
    }

    #[test]
    fn ipv4_shorter_than_total_length_is_truncated() {
        assert_eq!(parse_ipv4(&IPV4_UDP[..30]), Err(DecodeError::Truncated));
        assert_eq!(parse_ipv4(&IPV4_UDP[..19]), Err(DecodeError::Truncated));
    }

    #[test]
    fn ipv4_with_bad_version_or_ihl_is_malformed() {
        let mut f = IPV4_UDP;
        f[0] = 0x65;
        assert_eq!(parse_ipv4(&f), Err(DecodeError::Malformed));
        f[0] = 0x44;
        assert_eq!(parse_ipv4(&f), Err(DecodeError::Malformed));
    }

    #[test]
    fn ipv4_offloaded_zero_total_length_uses_the_frame() {
        let mut f = IPV4_UDP;
        f[2] = 0;
        f[3] = 0;
        assert_eq!(parse_ipv4(&f).unwrap().payload.len(), 12);
    }

    #[test]
    fn ipv4_fragment_reports_offset_in_bytes() {
        let mut f = IPV4_UDP;
        // MF set, offset 185 units = 1480 bytes.
        f[6] = 0x20;
        f[7] = 0xb9;
        let ip = parse_ipv4(&f).unwrap();
        assert_eq!(
            ip.frag,
            Some(FragInfo {
                id: 0x1c46,
                offset: 1480,
                more: true
            })
        );
    }

    fn ipv6_header(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        v.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
        v.extend_from_slice(payload);
        v
    }

    const UDP_5060: [u8; 10] = [0x13, 0xc4, 0x13, 0xc4, 0x00, 0x0a, 0x00, 0x00, b'O', b'K'];

    #[test]
    fn ipv6_walks_hop_by_hop_and_destination_options() {
        // Hop-by-hop with a PadN option (8 bytes), then destination options (8 bytes), UDP.
        let mut body = vec![PROTO_DST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        body.extend_from_slice(&[PROTO_UDP, 0, 1, 4, 0, 0, 0, 0]);
        body.extend_from_slice(&UDP_5060);
        let f = ipv6_header(PROTO_HOP_BY_HOP, &body);
        let ip = parse_ipv6(&f).unwrap();
        assert_eq!((ip.proto, ip.payload), (PROTO_UDP, &UDP_5060[..]));
        assert_eq!(ip.frag, None);
    }

    #[test]
    fn ipv6_fragment_header_stops_the_walk() {
        // Fragment header: next UDP, offset 0, M=1, id 0xdeadbeef.
        let mut body = vec![PROTO_UDP, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef];
        body.extend_from_slice(&UDP_5060);
        let f = ipv6_header(PROTO_FRAGMENT, &body);
        let ip = parse_ipv6(&f).unwrap();
        assert_eq!(ip.proto, PROTO_UDP);
        assert_eq!(
            ip.frag,
            Some(FragInfo {
                id: 0xdeadbeef,
                offset: 0,
                more: true
            })
        );
        assert_eq!(ip.payload, &UDP_5060[..]);
    }

    #[test]
    fn ipv6_atomic_fragment_is_a_whole_datagram() {
        let mut body = vec![PROTO_UDP, 0, 0, 0, 0, 0, 0, 1];
        body.extend_from_slice(&UDP_5060);
        let f = ipv6_header(PROTO_FRAGMENT, &body);
        let ip = parse_ipv6(&f).unwrap();
        assert_eq!((ip.proto, ip.frag), (PROTO_UDP, None));
    }

    #[test]
    fn ipv6_esp_and_no_next_header_are_not_ours() {
        let f = ipv6_header(PROTO_ESP, &[0; 16]);
        assert_eq!(parse_ipv6(&f), Err(DecodeError::NotIpTransport));
        let f = ipv6_header(PROTO_NO_NEXT, &[]);
        assert_eq!(parse_ipv6(&f), Err(DecodeError::NotIpTransport));
    }

    #[test]
    fn ipv6_endless_extension_chain_is_malformed() {
        let mut body = Vec::new();
        for _ in 0..10 {
            body.extend_from_slice(&[PROTO_DST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let f = ipv6_header(PROTO_DST_OPTS, &body);
        assert_eq!(parse_ipv6(&f), Err(DecodeError::Malformed));
    }

    #[test]
    fn ipv6_cut_extension_header_is_truncated() {
        let f = ipv6_header(PROTO_HOP_BY_HOP, &[PROTO_UDP, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_ipv6(&f), Err(DecodeError::Truncated));
    }

    #[test]
    fn tcp_header_gives_seq_flags_and_payload() {
        // Real TCP header 5060 -> 41870, seq 0x3b9aca01, flags PSH|ACK, data offset 5.
        let mut t = vec![
            0x13, 0xc4, 0xa3, 0x8e, 0x3b, 0x9a, 0xca, 0x01, 0x00, 0x00, 0x00, 0x01, 0x50, 0x18,
            0x01, 0xf5, 0x00, 0x00, 0x00, 0x00,
        ];
        t.extend_from_slice(b"SIP/2.0");
        match parse_transport(PROTO_TCP, &t).unwrap() {
            Transport::Tcp {
                src_port,
                dst_port,
                seq,
                flags,
                payload,
            } => {
                assert_eq!((src_port, dst_port, seq), (5060, 41870, 0x3b9aca01));
                assert!(!flags.syn && !flags.fin && !flags.rst);
                assert_eq!(payload, b"SIP/2.0");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_transport(PROTO_TCP, &t[..19]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn udp_length_beyond_buffer_is_truncated() {
        assert_eq!(
            parse_transport(PROTO_UDP, &UDP_5060[..9]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            parse_transport(1, &UDP_5060),
            Err(DecodeError::NotIpTransport)
        );
    }

    /// IPv6 Fragment header of frame 1 of ipv6_fragmented_sip_prack_update.pcap: next
    /// header UDP, offset 0, more fragments, identification 0xb0647780.
    const REAL_FRAG: [u8; 8] = [0x11, 0x00, 0x00, 0x01, 0xb0, 0x64, 0x77, 0x80];

    #[test]
    fn real_ipv6_fragment_header_reads_through_smoltcp() {
        let mut b = REAL_FRAG.to_vec();
        b.extend_from_slice(b"INVITE");
        let (proto, rest, frag) = walk_ipv6_ext(PROTO_FRAGMENT, &b).unwrap();
        assert_eq!((proto, rest), (PROTO_UDP, &b"INVITE"[..]));
        assert_eq!(
            frag,
            Some(FragInfo {
                id: 0xb064_7780,
                offset: 0,
                more: true
            })
        );
        assert_eq!(
            walk_ipv6_ext(PROTO_FRAGMENT, &REAL_FRAG[..7]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn ah_is_skipped_by_its_length_and_a_short_one_refused() {
        // RFC 4302 AH with a 96-bit ICV: payload length 4 (6 words - 2), next header UDP.
        let mut b = vec![PROTO_UDP, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1];
        b.extend_from_slice(&[0xaa; 12]);
        b.extend_from_slice(b"udp");
        let (proto, rest, frag) = walk_ipv6_ext(PROTO_AH, &b).unwrap();
        assert_eq!((proto, rest, frag), (PROTO_UDP, &b"udp"[..], None));
        assert_eq!(
            walk_ipv6_ext(PROTO_AH, &b[..20]),
            Err(DecodeError::Truncated)
        );
        // Length 0 leaves no room for SPI and sequence number.
        b[1] = 0;
        assert_eq!(walk_ipv6_ext(PROTO_AH, &b), Err(DecodeError::Malformed));
    }
}
