//! Remote-mirror encapsulations: GRE (RFC 2784/2890), ERSPAN types I, II and III, VXLAN
//! (RFC 7348) and TZSP. Each function takes the tunnel header and returns what it carries;
//! the decoder then decodes that recursively (with a depth limit). IP-in-IP needs no
//! header of its own: the decoder handles IPv4 protocol 4 / IPv6 protocol 41 directly.
//!
//! smoltcp has none of these headers, so the views are hand-written here.

use super::link::{be16, be32};
use super::{DecodeError, Encap};

pub const GRE_PROTO_IPV4: u16 = 0x0800;
pub const GRE_PROTO_IPV6: u16 = 0x86DD;
/// Transparent Ethernet bridging: a whole Ethernet frame follows.
pub const GRE_PROTO_TEB: u16 = 0x6558;
/// ERSPAN type I (no GRE sequence number) and type II.
pub const GRE_PROTO_ERSPAN: u16 = 0x88BE;
/// ERSPAN type III.
pub const GRE_PROTO_ERSPAN3: u16 = 0x22EB;

pub const VXLAN_PORT: u16 = 4789;
pub const TZSP_PORT: u16 = 37008;

const GRE_BASE_LEN: usize = 4;
const GRE_FLAG_CHECKSUM: u16 = 0x8000;
/// Source routing (RFC 1701 only): deprecated, its variable routing field is not followed.
const GRE_FLAG_ROUTING: u16 = 0x4000;
const GRE_FLAG_KEY: u16 = 0x2000;
const GRE_FLAG_SEQ: u16 = 0x1000;
const ERSPAN2_LEN: usize = 8;
const ERSPAN3_LEN: usize = 12;
const ERSPAN3_PLATFORM_LEN: usize = 8;
const VXLAN_LEN: usize = 8;
const VXLAN_FLAG_VNI: u8 = 0x08;
const TZSP_LEN: usize = 4;
const TZSP_ENCAP_ETHERNET: u16 = 1;

/// What a tunnel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    Ethernet(&'a [u8]),
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
}

/// A decapsulated payload plus the `Encap` bits the tunnel adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decap<'a> {
    pub inner: Inner<'a>,
    pub encap: u16,
}

/// Zero-copy view of a GRE header (version 0).
#[derive(Debug, Clone, Copy)]
pub struct GreHeader<'a> {
    buffer: &'a [u8],
}

impl<'a> GreHeader<'a> {
    /// Rejects a buffer shorter than the header its flags announce, a routing-present
    /// header and any version but 0 (version 1 is PPTP's enhanced GRE: not a mirror).
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, DecodeError> {
        let h = GreHeader { buffer };
        let flags = be16(buffer, 0).ok_or(DecodeError::Truncated)?;
        if flags & 0x0007 != 0 {
            return Err(DecodeError::NotIpTransport);
        }
        if flags & GRE_FLAG_ROUTING != 0 {
            return Err(DecodeError::Malformed);
        }
        if buffer.len() < h.header_len() {
            return Err(DecodeError::Truncated);
        }
        Ok(h)
    }
    fn flags(&self) -> u16 {
        be16(self.buffer, 0).unwrap_or(0)
    }
    pub fn has_checksum(&self) -> bool {
        self.flags() & GRE_FLAG_CHECKSUM != 0
    }
    pub fn has_key(&self) -> bool {
        self.flags() & GRE_FLAG_KEY != 0
    }
    pub fn has_seq(&self) -> bool {
        self.flags() & GRE_FLAG_SEQ != 0
    }
    pub fn protocol(&self) -> u16 {
        be16(self.buffer, 2).unwrap_or(0)
    }
    /// Optional fields follow in the order checksum(+reserved), key, sequence.
    pub fn key(&self) -> Option<u32> {
        let at = GRE_BASE_LEN + if self.has_checksum() { 4 } else { 0 };
        self.has_key().then(|| be32(self.buffer, at)).flatten()
    }
    pub fn seq(&self) -> Option<u32> {
        let at = GRE_BASE_LEN
            + if self.has_checksum() { 4 } else { 0 }
            + if self.has_key() { 4 } else { 0 };
        self.has_seq().then(|| be32(self.buffer, at)).flatten()
    }
    pub fn header_len(&self) -> usize {
        GRE_BASE_LEN
            + 4 * (usize::from(self.has_checksum())
                + usize::from(self.has_key())
                + usize::from(self.has_seq()))
    }
    pub fn payload(&self) -> &'a [u8] {
        self.buffer.get(self.header_len()..).unwrap_or(&[])
    }
}

/// Decapsulates GRE and, inside it, ERSPAN.
pub fn gre(buf: &[u8]) -> Result<Decap<'_>, DecodeError> {
    let h = GreHeader::new_checked(buf)?;
    let payload = h.payload();
    let gre_only = |inner| {
        Ok(Decap {
            inner,
            encap: Encap::GRE,
        })
    };
    match h.protocol() {
        GRE_PROTO_IPV4 => gre_only(Inner::Ipv4(payload)),
        GRE_PROTO_IPV6 => gre_only(Inner::Ipv6(payload)),
        GRE_PROTO_TEB => gre_only(Inner::Ethernet(payload)),
        // Type I has no ERSPAN header and no GRE sequence number; type II always has both.
        GRE_PROTO_ERSPAN if !h.has_seq() => erspan_inner(Inner::Ethernet(payload)),
        GRE_PROTO_ERSPAN => erspan_inner(erspan2(payload)?),
        GRE_PROTO_ERSPAN3 => erspan_inner(erspan3(payload)?),
        _ => Err(DecodeError::NotIpTransport),
    }
}

fn erspan_inner(inner: Inner<'_>) -> Result<Decap<'_>, DecodeError> {
    Ok(Decap {
        inner,
        encap: Encap::GRE | Encap::ERSPAN,
    })
}

/// ERSPAN type II: version 1 in the top nibble, 8-byte header, then the mirrored frame.
pub fn erspan2(buf: &[u8]) -> Result<Inner<'_>, DecodeError> {
    let first = *buf.first().ok_or(DecodeError::Truncated)?;
    match first >> 4 {
        1 => buf
            .get(ERSPAN2_LEN..)
            .map(Inner::Ethernet)
            .ok_or(DecodeError::Truncated),
        // Some senders put a type III header behind protocol 0x88BE.
        2 => erspan3(buf),
        _ => Err(DecodeError::Malformed),
    }
}

/// ERSPAN type III: version 2, 12-byte header, optional 8-byte platform subheader (O bit,
/// the last bit of the header); frame type 0 is Ethernet, 2 is IP.
pub fn erspan3(buf: &[u8]) -> Result<Inner<'_>, DecodeError> {
    let h = buf.get(..ERSPAN3_LEN).ok_or(DecodeError::Truncated)?;
    if h[0] >> 4 != 2 {
        return Err(DecodeError::Malformed);
    }
    let len = ERSPAN3_LEN
        + if h[11] & 0x01 != 0 {
            ERSPAN3_PLATFORM_LEN
        } else {
            0
        };
    let frame = buf.get(len..).ok_or(DecodeError::Truncated)?;
    match (h[10] >> 2) & 0x1F {
        0 => Ok(Inner::Ethernet(frame)),
        2 => match frame.first().map(|b| b >> 4) {
            Some(4) => Ok(Inner::Ipv4(frame)),
            Some(6) => Ok(Inner::Ipv6(frame)),
            Some(_) => Err(DecodeError::Malformed),
            None => Err(DecodeError::Truncated),
        },
        _ => Err(DecodeError::NotIpTransport),
    }
}

/// VXLAN: 8-byte header with the I flag (VNI valid), then an Ethernet frame.
pub fn vxlan(buf: &[u8]) -> Result<Decap<'_>, DecodeError> {
    let h = buf.get(..VXLAN_LEN).ok_or(DecodeError::Truncated)?;
    if h[0] & VXLAN_FLAG_VNI == 0 {
        return Err(DecodeError::Malformed);
    }
    Ok(Decap {
        inner: Inner::Ethernet(buf.get(VXLAN_LEN..).unwrap_or(&[])),
        encap: Encap::VXLAN,
    })
}

/// TZSP: version 1, type (0 received / 1 for transmit carry a frame), encapsulated
/// protocol, then tagged fields up to the END tag; the frame follows.
pub fn tzsp(buf: &[u8]) -> Result<Decap<'_>, DecodeError> {
    const TAG_PADDING: u8 = 0;
    const TAG_END: u8 = 1;
    let h = buf.get(..TZSP_LEN).ok_or(DecodeError::Truncated)?;
    if h[0] != 1 {
        return Err(DecodeError::Malformed);
    }
    if h[1] > 1 {
        // Keepalives, configuration, port opener: no frame inside.
        return Err(DecodeError::NotIpTransport);
    }
    let proto = u16::from_be_bytes([h[2], h[3]]);
    let mut at = TZSP_LEN;
    loop {
        match *buf.get(at).ok_or(DecodeError::Truncated)? {
            TAG_END => {
                at += 1;
                break;
            }
            TAG_PADDING => at += 1,
            _ => {
                let len = *buf.get(at + 1).ok_or(DecodeError::Truncated)?;
                at += 2 + usize::from(len);
            }
        }
    }
    let frame = buf.get(at..).ok_or(DecodeError::Truncated)?;
    if proto != TZSP_ENCAP_ETHERNET {
        return Err(DecodeError::NotIpTransport);
    }
    Ok(Decap {
        inner: Inner::Ethernet(frame),
        encap: Encap::TZSP,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &[u8] = b"mirrored-frame";

    fn with(head: &[u8]) -> Vec<u8> {
        let mut v = head.to_vec();
        v.extend_from_slice(FRAME);
        v
    }

    #[test]
    fn plain_gre_carries_ipv4() {
        let f = with(&[0x00, 0x00, 0x08, 0x00]);
        let d = gre(&f).unwrap();
        assert_eq!(d.inner, Inner::Ipv4(FRAME));
        assert_eq!(d.encap, Encap::GRE);
    }

    #[test]
    fn gre_checksum_key_and_seq_fields_are_skipped_in_order() {
        // C, K and S set; checksum 0xbeef, key 0x00000064, seq 7; protocol TEB.
        let f = with(&[
            0xb0, 0x00, 0x65, 0x58, 0xbe, 0xef, 0, 0, 0, 0, 0, 0x64, 0, 0, 0, 7,
        ]);
        let h = GreHeader::new_checked(&f).unwrap();
        assert_eq!((h.header_len(), h.key(), h.seq()), (16, Some(100), Some(7)));
        assert_eq!(gre(&f).unwrap().inner, Inner::Ethernet(FRAME));
        assert_eq!(gre(&f[..15]).unwrap_err(), DecodeError::Truncated);
    }

    #[test]
    fn gre_version_1_and_routing_are_refused() {
        assert_eq!(
            gre(&with(&[0x30, 0x01, 0x88, 0x0b])).unwrap_err(),
            DecodeError::NotIpTransport
        );
        assert_eq!(
            gre(&with(&[0x40, 0x00, 0x08, 0x00])).unwrap_err(),
            DecodeError::Malformed
        );
    }

    #[test]
    fn erspan_type_1_has_no_header() {
        let f = with(&[0x00, 0x00, 0x88, 0xbe]);
        let d = gre(&f).unwrap();
        assert_eq!(d.inner, Inner::Ethernet(FRAME));
        assert_eq!(d.encap, Encap::GRE | Encap::ERSPAN);
    }

    #[test]
    fn erspan_type_2_skips_8_byte_header() {
        // Real Cisco ERSPAN II: GRE S-bit, seq 0x1d, then ver 1 / VLAN 0, session 1, index 0.
        let f = with(&[
            0x10, 0x00, 0x88, 0xbe, 0x00, 0x00, 0x00, 0x1d, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x00,
        ]);
        let d = gre(&f).unwrap();
        assert_eq!(d.inner, Inner::Ethernet(FRAME));
        assert!(Encap(d.encap).has(Encap::ERSPAN));
    }

    #[test]
    fn erspan_type_3_with_and_without_platform_subheader() {
        let hdr = [
            0x20, 0x00, 0x00, 0x05, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00,
        ];
        let mut f = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
        f.extend_from_slice(&hdr);
        assert_eq!(gre(&with(&f)).unwrap().inner, Inner::Ethernet(FRAME));
        // O bit set: 8 more bytes of platform-specific info.
        let last = f.len() - 1;
        f[last] = 0x01;
        f.extend_from_slice(&[0x03, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(gre(&with(&f)).unwrap().inner, Inner::Ethernet(FRAME));
        assert_eq!(erspan3(&hdr[..11]), Err(DecodeError::Truncated));
    }

    #[test]
    fn vxlan_requires_the_vni_flag() {
        let f = with(&[0x08, 0, 0, 0, 0, 0x01, 0x2c, 0]);
        let d = vxlan(&f).unwrap();
        assert_eq!((d.inner, d.encap), (Inner::Ethernet(FRAME), Encap::VXLAN));
        assert_eq!(
            vxlan(&with(&[0, 0, 0, 0, 0, 0, 0, 0])),
            Err(DecodeError::Malformed)
        );
        assert_eq!(vxlan(&[0x08, 0, 0]), Err(DecodeError::Truncated));
    }

    #[test]
    fn tzsp_walks_tags_to_end() {
        // Version 1, received, Ethernet; padding, RSSI tag (10, len 1), END.
        let f = with(&[0x01, 0x00, 0x00, 0x01, 0x00, 0x0a, 0x01, 0xc4, 0x01]);
        let d = tzsp(&f).unwrap();
        assert_eq!((d.inner, d.encap), (Inner::Ethernet(FRAME), Encap::TZSP));
        // A tag whose length runs off the end, and no END tag at all.
        assert_eq!(
            tzsp(&[0x01, 0x00, 0x00, 0x01, 0x0a, 0x05, 0x00]),
            Err(DecodeError::Truncated)
        );
        // Keepalive.
        assert_eq!(
            tzsp(&[0x01, 0x04, 0x00, 0x00, 0x01]),
            Err(DecodeError::NotIpTransport)
        );
    }
}
