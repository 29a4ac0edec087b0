//! Remote-mirror encapsulations: GRE (RFC 2784/2890), ERSPAN types I, II and III, VXLAN
//! (RFC 7348) and TZSP. Each function takes the tunnel header and returns what it carries;
//! the decoder then decodes that recursively (with a depth limit). IP-in-IP needs no
//! header of its own: the decoder handles IPv4 protocol 4 / IPv6 protocol 41 directly.
//!
//! smoltcp has none of these headers, so the views are written here in its shape.

use super::{DecodeError, Encap};
use crate::view::read;
use byteorder::{ByteOrder, NetworkEndian};

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
/// TZSP's encapsulated-protocol number of Ethernet.
pub const TZSP_ENCAP_ETHERNET: u16 = 1;

const GRE_FLAG_CHECKSUM: u16 = 0x8000;
/// Source routing (RFC 1701 only): deprecated, its variable routing field is not followed.
const GRE_FLAG_ROUTING: u16 = 0x4000;
const GRE_FLAG_KEY: u16 = 0x2000;
const GRE_FLAG_SEQ: u16 = 0x1000;
const GRE_VERSION_MASK: u16 = 0x0007;
const VXLAN_FLAG_VNI: u8 = 0x08;

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

// ---- GRE (RFC 2784, key and sequence from RFC 2890) ----

mod gre_field {
    use core::ops::Range;
    pub const FLAGS: Range<usize> = 0..2;
    pub const PROTOCOL: Range<usize> = 2..4;
    /// Optional 4-byte words follow in the order checksum(+reserved), key, sequence.
    pub const OPTIONS: usize = 4;
}

/// A GRE header (version 0).
#[derive(Debug, Clone, Copy)]
pub struct GrePacket<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(GrePacket, DecodeError);

impl<T: AsRef<[u8]>> GrePacket<T> {
    /// Rejects a buffer shorter than the header its flags announce, a routing-present
    /// header and any version but 0 (version 1 is PPTP's enhanced GRE: not a mirror).
    pub fn check_len(&self) -> Result<(), DecodeError> {
        // The flags alone decide refusal, so read them before the full length is known.
        if self.buffer.as_ref().len() < gre_field::FLAGS.end {
            return Err(DecodeError::Truncated);
        }
        let flags = self.flags();
        if flags & GRE_VERSION_MASK != 0 {
            return Err(DecodeError::NotIpTransport);
        }
        if flags & GRE_FLAG_ROUTING != 0 {
            return Err(DecodeError::Malformed);
        }
        if self.buffer.as_ref().len() < self.header_len() {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }
    fn flags(&self) -> u16 {
        read::be16(self.buffer.as_ref(), gre_field::FLAGS)
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
    pub fn version(&self) -> u8 {
        (self.flags() & GRE_VERSION_MASK) as u8
    }
    pub fn protocol(&self) -> u16 {
        read::be16(self.buffer.as_ref(), gre_field::PROTOCOL)
    }
    fn key_at(&self) -> usize {
        gre_field::OPTIONS + if self.has_checksum() { 4 } else { 0 }
    }
    fn seq_at(&self) -> usize {
        self.key_at() + if self.has_key() { 4 } else { 0 }
    }
    pub fn key(&self) -> Option<u32> {
        let at = self.key_at();
        self.has_key()
            .then(|| read::be32(self.buffer.as_ref(), at..at + 4))
    }
    pub fn seq(&self) -> Option<u32> {
        let at = self.seq_at();
        self.has_seq()
            .then(|| read::be32(self.buffer.as_ref(), at..at + 4))
    }
    pub fn header_len(&self) -> usize {
        self.seq_at() + if self.has_seq() { 4 } else { 0 }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> GrePacket<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> GrePacket<T> {
    fn set_flags(&mut self, flags: u16) {
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[gre_field::FLAGS], flags);
    }
    pub fn set_protocol(&mut self, protocol: u16) {
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[gre_field::PROTOCOL], protocol);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// A GRE header as written: version 0, no checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreRepr {
    pub protocol: u16,
    pub key: Option<u32>,
    pub seq: Option<u32>,
}

impl GreRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &GrePacket<T>) -> Self {
        GreRepr {
            protocol: p.protocol(),
            key: p.key(),
            seq: p.seq(),
        }
    }
    pub fn buffer_len(&self) -> usize {
        gre_field::OPTIONS + 4 * (usize::from(self.key.is_some()) + usize::from(self.seq.is_some()))
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    /// Writes the header; the buffer must hold `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut GrePacket<T>) {
        let mut flags = 0;
        if self.key.is_some() {
            flags |= GRE_FLAG_KEY;
        }
        if self.seq.is_some() {
            flags |= GRE_FLAG_SEQ;
        }
        p.set_flags(flags);
        p.set_protocol(self.protocol);
        let b = p.buffer.as_mut();
        let mut at = gre_field::OPTIONS;
        for v in [self.key, self.seq].into_iter().flatten() {
            NetworkEndian::write_u32(&mut b[at..at + 4], v);
            at += 4;
        }
    }
}

/// Decapsulates GRE and, inside it, ERSPAN.
pub fn gre(buf: &[u8]) -> Result<Decap<'_>, DecodeError> {
    let h = GrePacket::new_checked(buf)?;
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

// ---- ERSPAN type II (draft-foschiano-erspan §4.2) ----

mod erspan2_field {
    use core::ops::Range;
    /// Version (4 bits, 1 for type II), VLAN (12 bits).
    pub const VER_VLAN: Range<usize> = 0..2;
    /// COS (3), En (2: how the frame's tags were kept), T (truncated), session id (10).
    pub const COS_EN_T_SESSION: Range<usize> = 2..4;
    /// Reserved (12), index (20).
    pub const RESERVED_INDEX: Range<usize> = 4..8;
    pub const PAYLOAD: usize = 8;
}

/// An ERSPAN type II header.
#[derive(Debug, Clone, Copy)]
pub struct Erspan2Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(Erspan2Packet, min_len erspan2_field::PAYLOAD);

impl<T: AsRef<[u8]>> Erspan2Packet<T> {
    pub fn version(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), erspan2_field::VER_VLAN.start) >> 4
    }
    pub fn vlan(&self) -> u16 {
        read::be16(self.buffer.as_ref(), erspan2_field::VER_VLAN) & 0x0FFF
    }
    fn word1(&self) -> u16 {
        read::be16(self.buffer.as_ref(), erspan2_field::COS_EN_T_SESSION)
    }
    pub fn cos(&self) -> u8 {
        (self.word1() >> 13) as u8
    }
    pub fn encap_type(&self) -> u8 {
        ((self.word1() >> 11) & 0x3) as u8
    }
    pub fn truncated(&self) -> bool {
        self.word1() & 0x0400 != 0
    }
    pub fn session_id(&self) -> u16 {
        self.word1() & 0x03FF
    }
    pub fn index(&self) -> u32 {
        read::be32(self.buffer.as_ref(), erspan2_field::RESERVED_INDEX) & 0x000F_FFFF
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Erspan2Packet<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        self.buffer
            .as_ref()
            .get(erspan2_field::PAYLOAD..)
            .unwrap_or(&[])
    }
}

/// An ERSPAN type II header as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erspan2Repr {
    pub vlan: u16,
    pub cos: u8,
    /// 0 untagged, 1 ISL, 2 802.1Q tag removed, 3 frame kept its tags.
    pub encap_type: u8,
    pub truncated: bool,
    pub session_id: u16,
    pub index: u32,
}

impl Erspan2Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Erspan2Packet<T>) -> Result<Self, DecodeError> {
        if p.version() != 1 {
            return Err(DecodeError::Malformed);
        }
        Ok(Erspan2Repr {
            vlan: p.vlan(),
            cos: p.cos(),
            encap_type: p.encap_type(),
            truncated: p.truncated(),
            session_id: p.session_id(),
            index: p.index(),
        })
    }
    pub const fn buffer_len(&self) -> usize {
        erspan2_field::PAYLOAD
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Erspan2Packet<T>) {
        let b = p.buffer.as_mut();
        NetworkEndian::write_u16(
            &mut b[erspan2_field::VER_VLAN],
            (1 << 12) | (self.vlan & 0x0FFF),
        );
        let w1 = (u16::from(self.cos & 0x7) << 13)
            | (u16::from(self.encap_type & 0x3) << 11)
            | (u16::from(self.truncated) << 10)
            | (self.session_id & 0x03FF);
        NetworkEndian::write_u16(&mut b[erspan2_field::COS_EN_T_SESSION], w1);
        NetworkEndian::write_u32(
            &mut b[erspan2_field::RESERVED_INDEX],
            self.index & 0x000F_FFFF,
        );
    }
}

/// ERSPAN type II: version 1 in the top nibble, 8-byte header, then the mirrored frame.
pub fn erspan2(buf: &[u8]) -> Result<Inner<'_>, DecodeError> {
    let first = *buf.first().ok_or(DecodeError::Truncated)?;
    match first >> 4 {
        1 => Erspan2Packet::new_checked(buf).map(|h| Inner::Ethernet(h.payload())),
        // Some senders put a type III header behind protocol 0x88BE.
        2 => erspan3(buf),
        _ => Err(DecodeError::Malformed),
    }
}

// ---- ERSPAN type III (draft-foschiano-erspan §4.3) ----

mod erspan3_field {
    use core::ops::Range;
    /// Version (4 bits, 2 for type III), VLAN (12 bits).
    pub const VER_VLAN: Range<usize> = 0..2;
    /// COS (3), BSO (2), T (1), session id (10).
    pub const COS_BSO_T_SESSION: Range<usize> = 2..4;
    pub const TIMESTAMP: Range<usize> = 4..8;
    pub const SGT: Range<usize> = 8..10;
    /// P (1), frame type (5), hardware id (6), D (1), granularity (2), O (1).
    pub const FLAGS: Range<usize> = 10..12;
    pub const PLATFORM: Range<usize> = 12..20;
}

/// An ERSPAN type III header, with its optional 8-byte platform subheader.
#[derive(Debug, Clone, Copy)]
pub struct Erspan3Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(Erspan3Packet, DecodeError);

impl<T: AsRef<[u8]>> Erspan3Packet<T> {
    /// Checks version 2 and that the header (and the subheader the O bit announces) fit.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < erspan3_field::FLAGS.end {
            return Err(DecodeError::Truncated);
        }
        if self.version() != 2 {
            return Err(DecodeError::Malformed);
        }
        if self.buffer.as_ref().len() < self.header_len() {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }
    pub fn version(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), erspan3_field::VER_VLAN.start) >> 4
    }
    pub fn vlan(&self) -> u16 {
        read::be16(self.buffer.as_ref(), erspan3_field::VER_VLAN) & 0x0FFF
    }
    pub fn session_id(&self) -> u16 {
        read::be16(self.buffer.as_ref(), erspan3_field::COS_BSO_T_SESSION) & 0x03FF
    }
    pub fn timestamp(&self) -> u32 {
        read::be32(self.buffer.as_ref(), erspan3_field::TIMESTAMP)
    }
    pub fn sgt(&self) -> u16 {
        read::be16(self.buffer.as_ref(), erspan3_field::SGT)
    }
    fn flags(&self) -> u16 {
        read::be16(self.buffer.as_ref(), erspan3_field::FLAGS)
    }
    /// 0 Ethernet, 2 IP.
    pub fn frame_type(&self) -> u8 {
        ((self.flags() >> 10) & 0x1F) as u8
    }
    /// O bit: the platform-specific subheader follows.
    pub fn has_platform(&self) -> bool {
        self.flags() & 0x0001 != 0
    }
    pub fn header_len(&self) -> usize {
        if self.has_platform() {
            erspan3_field::PLATFORM.end
        } else {
            erspan3_field::PLATFORM.start
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Erspan3Packet<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> Erspan3Packet<T> {
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// An ERSPAN type III header as written (no platform subheader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erspan3Repr {
    pub vlan: u16,
    pub session_id: u16,
    /// Timestamp in units of `granularity` (0: 100 µs).
    pub timestamp: u32,
    pub sgt: u16,
    /// 0 Ethernet, 2 IP.
    pub frame_type: u8,
    pub hw_id: u8,
    pub granularity: u8,
}

impl Erspan3Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Erspan3Packet<T>) -> Self {
        let flags = p.flags();
        Erspan3Repr {
            vlan: p.vlan(),
            session_id: p.session_id(),
            timestamp: p.timestamp(),
            sgt: p.sgt(),
            frame_type: p.frame_type(),
            hw_id: ((flags >> 4) & 0x3F) as u8,
            granularity: ((flags >> 1) & 0x3) as u8,
        }
    }
    pub const fn buffer_len(&self) -> usize {
        erspan3_field::PLATFORM.start
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    /// Writes the 12-byte header with the O bit clear; the buffer must hold `buffer_len()`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Erspan3Packet<T>) {
        let b = p.buffer.as_mut();
        NetworkEndian::write_u16(
            &mut b[erspan3_field::VER_VLAN],
            (2 << 12) | (self.vlan & 0x0FFF),
        );
        NetworkEndian::write_u16(
            &mut b[erspan3_field::COS_BSO_T_SESSION],
            self.session_id & 0x03FF,
        );
        NetworkEndian::write_u32(&mut b[erspan3_field::TIMESTAMP], self.timestamp);
        NetworkEndian::write_u16(&mut b[erspan3_field::SGT], self.sgt);
        let flags = (u16::from(self.frame_type & 0x1F) << 10)
            | (u16::from(self.hw_id & 0x3F) << 4)
            | (u16::from(self.granularity & 0x3) << 1);
        NetworkEndian::write_u16(&mut b[erspan3_field::FLAGS], flags);
    }
}

/// ERSPAN type III: version 2, 12-byte header, optional 8-byte platform subheader (O bit,
/// the last bit of the header); frame type 0 is Ethernet, 2 is IP.
pub fn erspan3(buf: &[u8]) -> Result<Inner<'_>, DecodeError> {
    let h = Erspan3Packet::new_checked(buf)?;
    let frame = h.payload();
    match h.frame_type() {
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

// ---- VXLAN (RFC 7348 §5) ----

mod vxlan_field {
    use core::ops::Range;
    pub const FLAGS: usize = 0;
    pub const VNI: Range<usize> = 4..7;
    pub const PAYLOAD: usize = 8;
}

/// A VXLAN header.
#[derive(Debug, Clone, Copy)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(VxlanPacket, min_len vxlan_field::PAYLOAD);

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    pub fn flags(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), vxlan_field::FLAGS)
    }
    /// I flag: the VNI is valid (RFC 7348 requires it).
    pub fn vni_valid(&self) -> bool {
        self.flags() & VXLAN_FLAG_VNI != 0
    }
    pub fn vni(&self) -> u32 {
        NetworkEndian::read_u24(read::slice(self.buffer.as_ref(), vxlan_field::VNI))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VxlanPacket<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        self.buffer
            .as_ref()
            .get(vxlan_field::PAYLOAD..)
            .unwrap_or(&[])
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[vxlan_field::PAYLOAD..]
    }
}

/// A VXLAN header as written: I flag set, reserved bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanRepr {
    /// 24-bit VXLAN network identifier.
    pub vni: u32,
}

impl VxlanRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &VxlanPacket<T>) -> Result<Self, DecodeError> {
        if !p.vni_valid() {
            return Err(DecodeError::Malformed);
        }
        Ok(VxlanRepr { vni: p.vni() })
    }
    pub const fn buffer_len(&self) -> usize {
        vxlan_field::PAYLOAD
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut VxlanPacket<T>) {
        let b = p.buffer.as_mut();
        b[..vxlan_field::PAYLOAD].fill(0);
        b[vxlan_field::FLAGS] = VXLAN_FLAG_VNI;
        NetworkEndian::write_u24(&mut b[vxlan_field::VNI], self.vni & 0x00FF_FFFF);
    }
}

/// VXLAN: 8-byte header with the I flag (VNI valid), then an Ethernet frame.
pub fn vxlan(buf: &[u8]) -> Result<Decap<'_>, DecodeError> {
    let h = VxlanPacket::new_checked(buf)?;
    if !h.vni_valid() {
        return Err(DecodeError::Malformed);
    }
    Ok(Decap {
        inner: Inner::Ethernet(h.payload()),
        encap: Encap::VXLAN,
    })
}

// ---- TZSP (TaZmen Sniffer Protocol) ----

mod tzsp_field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const ENCAP: Range<usize> = 2..4;
    /// Tagged fields up to the END tag; the frame follows.
    pub const TAGS: usize = 4;
}

const TZSP_TAG_PADDING: u8 = 0;
const TZSP_TAG_END: u8 = 1;

/// A TZSP header: the fixed 4 bytes are checked; the tag list is walked on demand.
#[derive(Debug, Clone, Copy)]
pub struct TzspPacket<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(TzspPacket, min_len tzsp_field::TAGS);

impl<T: AsRef<[u8]>> TzspPacket<T> {
    pub fn version(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), tzsp_field::VERSION)
    }
    /// 0 received, 1 for transmit (both carry a frame); keepalives and the rest do not.
    pub fn packet_type(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), tzsp_field::TYPE)
    }
    /// Encapsulated protocol (1 = Ethernet).
    pub fn encapsulation(&self) -> u16 {
        read::be16(self.buffer.as_ref(), tzsp_field::ENCAP)
    }
    /// Header length through the END tag; `Truncated` when a tag runs off the end.
    pub fn header_len(&self) -> Result<usize, DecodeError> {
        let buf = self.buffer.as_ref();
        let mut at = tzsp_field::TAGS;
        loop {
            match *buf.get(at).ok_or(DecodeError::Truncated)? {
                TZSP_TAG_END => return Ok(at + 1),
                TZSP_TAG_PADDING => at += 1,
                _ => {
                    let len = *buf.get(at + 1).ok_or(DecodeError::Truncated)?;
                    at += 2 + usize::from(len);
                }
            }
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TzspPacket<&'a T> {
    pub fn payload(&self) -> Result<&'a [u8], DecodeError> {
        let at = self.header_len()?;
        self.buffer.as_ref().get(at..).ok_or(DecodeError::Truncated)
    }
}

/// A TZSP header as written: version 1, no tags but END.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TzspRepr {
    /// 0 received, 1 for transmit.
    pub packet_type: u8,
    /// Encapsulated protocol (1 = Ethernet).
    pub encapsulation: u16,
}

impl TzspRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &TzspPacket<T>) -> Result<Self, DecodeError> {
        if p.version() != 1 {
            return Err(DecodeError::Malformed);
        }
        Ok(TzspRepr {
            packet_type: p.packet_type(),
            encapsulation: p.encapsulation(),
        })
    }
    pub const fn buffer_len(&self) -> usize {
        tzsp_field::TAGS + 1
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut TzspPacket<T>) {
        let b = p.buffer.as_mut();
        b[tzsp_field::VERSION] = 1;
        b[tzsp_field::TYPE] = self.packet_type;
        NetworkEndian::write_u16(&mut b[tzsp_field::ENCAP], self.encapsulation);
        b[tzsp_field::TAGS] = TZSP_TAG_END;
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TzspPacket<T> {
    /// The frame after the END tag (`Truncated` when the tags run off the end).
    pub fn payload_mut(&mut self) -> Result<&mut [u8], DecodeError> {
        let at = self.header_len()?;
        self.buffer
            .as_mut()
            .get_mut(at..)
            .ok_or(DecodeError::Truncated)
    }
}

/// TZSP: version 1, type (0 received / 1 for transmit carry a frame), encapsulated
/// protocol, then tagged fields up to the END tag; the frame follows.
pub fn tzsp(buf: &[u8]) -> Result<Decap<'_>, DecodeError> {
    let h = TzspPacket::new_checked(buf)?;
    if h.version() != 1 {
        return Err(DecodeError::Malformed);
    }
    if h.packet_type() > 1 {
        // Keepalives, configuration, port opener: no frame inside.
        return Err(DecodeError::NotIpTransport);
    }
    let frame = h.payload()?;
    if h.encapsulation() != TZSP_ENCAP_ETHERNET {
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
        let h = GrePacket::new_checked(&f).unwrap();
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

    /// GRE header of frame 1 of erspan_sip_multicall_hold.pcapng: K bit, TEB, key 0.
    const REAL_GRE_KEY: [u8; 8] = [0x20, 0x00, 0x65, 0x58, 0x00, 0x00, 0x00, 0x00];
    /// Real Cisco ERSPAN II: GRE with S bit, seq 0x1d; ver 1 / VLAN 0, session 1, index 0.
    const REAL_ERSPAN2: [u8; 16] = [
        0x10, 0x00, 0x88, 0xbe, 0x00, 0x00, 0x00, 0x1d, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00,
    ];

    #[test]
    fn real_gre_key_header_parses_and_emits_the_same_bytes() {
        let h = GrePacket::new_checked(&REAL_GRE_KEY[..]).unwrap();
        assert_eq!(h.version(), 0);
        assert_eq!(
            (h.protocol(), h.key(), h.seq()),
            (GRE_PROTO_TEB, Some(0), None)
        );
        assert_eq!(h.header_len(), 8);
        let repr = GreRepr::parse(&h);
        assert_eq!(repr.buffer_len(), 8);
        let mut out = [0xffu8; 8];
        repr.emit(&mut GrePacket::new_unchecked(&mut out[..]));
        assert_eq!(out, REAL_GRE_KEY);
    }

    #[test]
    fn real_erspan2_parses_and_emits_the_same_bytes() {
        let g = GrePacket::new_checked(&REAL_ERSPAN2[..]).unwrap();
        let gre = GreRepr::parse(&g);
        assert_eq!(
            gre,
            GreRepr {
                protocol: GRE_PROTO_ERSPAN,
                key: None,
                seq: Some(0x1d)
            }
        );
        let e = Erspan2Packet::new_checked(g.payload()).unwrap();
        assert_eq!(
            (e.version(), e.vlan(), e.session_id(), e.index()),
            (1, 0, 1, 0)
        );
        let erspan = Erspan2Repr::parse(&e).unwrap();
        let mut out = [0xffu8; 16];
        let mut p = GrePacket::new_unchecked(&mut out[..]);
        gre.emit(&mut p);
        erspan.emit(&mut Erspan2Packet::new_unchecked(p.payload_mut()));
        assert_eq!(out, REAL_ERSPAN2);
    }

    #[test]
    fn erspan2_repr_writes_every_field_where_the_view_reads_it() {
        let r = Erspan2Repr {
            vlan: 0x0abc,
            cos: 5,
            encap_type: 3,
            truncated: true,
            session_id: 0x3ff,
            index: 0x000f_1234,
        };
        let mut b = [0u8; 8];
        r.emit(&mut Erspan2Packet::new_unchecked(&mut b[..]));
        let p = Erspan2Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Erspan2Repr::parse(&p), Ok(r));
        assert_eq!(p.cos(), 5);
        assert!(p.truncated());
        b[0] = 0x20;
        let p = Erspan2Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Erspan2Repr::parse(&p), Err(DecodeError::Malformed));
    }

    #[test]
    fn erspan3_view_reads_session_frame_type_and_subheader() {
        let b = [
            0x20, 0x64, 0x00, 0x05, 0x12, 0x34, 0x56, 0x78, 0x00, 0x07, 0x08, 0x01, 1, 2, 3, 4, 5,
            6, 7, 8, 0x45,
        ];
        let h = Erspan3Packet::new_checked(&b[..]).unwrap();
        assert_eq!((h.version(), h.vlan(), h.session_id()), (2, 100, 5));
        assert_eq!((h.timestamp(), h.sgt()), (0x1234_5678, 7));
        assert_eq!((h.frame_type(), h.has_platform()), (2, true));
        assert_eq!(h.payload(), &[0x45]);
        assert_eq!(erspan3(&b), Ok(Inner::Ipv4(&[0x45])));
        assert_eq!(
            Erspan3Packet::new_checked(&b[..19]).unwrap_err(),
            DecodeError::Truncated
        );
    }

    #[test]
    fn vxlan_view_reads_the_24_bit_vni() {
        let b = [0x08, 0, 0, 0, 0x00, 0x01, 0x2c, 0, 0xaa];
        let h = VxlanPacket::new_checked(&b[..]).unwrap();
        assert!(h.vni_valid());
        assert_eq!((h.flags(), h.vni()), (0x08, 300));
        assert_eq!(h.payload(), &[0xaa]);
    }

    #[test]
    fn tzsp_view_reads_type_encapsulation_and_header_length() {
        let b = [0x01, 0x01, 0x00, 0x01, 0x00, 0x0a, 0x01, 0xc4, 0x01, 0xaa];
        let h = TzspPacket::new_checked(&b[..]).unwrap();
        assert_eq!((h.version(), h.packet_type(), h.encapsulation()), (1, 1, 1));
        assert_eq!(h.header_len(), Ok(9));
        assert_eq!(h.payload(), Ok(&[0xaa][..]));
        assert_eq!(
            TzspPacket::new_checked(&b[..3]).unwrap_err(),
            DecodeError::Truncated
        );
    }

    #[test]
    fn erspan3_repr_emits_what_the_view_reads() {
        let r = Erspan3Repr {
            vlan: 100,
            session_id: 5,
            timestamp: 0x1234_5678,
            sgt: 7,
            frame_type: 0,
            hw_id: 0x2a,
            granularity: 3,
        };
        let mut b = [0xffu8; 12];
        r.emit(&mut Erspan3Packet::new_unchecked(&mut b[..]));
        // ver 2 / VLAN 100, session 5, timestamp, SGT 7, FT 0 / HW 0x2a / Gra 3 / O 0.
        assert_eq!(
            b,
            [
                0x20, 0x64, 0x00, 0x05, 0x12, 0x34, 0x56, 0x78, 0x00, 0x07, 0x02, 0xa6
            ]
        );
        let h = Erspan3Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Erspan3Repr::parse(&h), r);
        assert!(!h.has_platform());
    }

    #[test]
    fn vxlan_repr_emits_the_rfc_7348_header() {
        let mut b = [0xffu8; 9];
        VxlanRepr { vni: 300 }.emit(&mut VxlanPacket::new_unchecked(&mut b[..]));
        assert_eq!(b, [0x08, 0, 0, 0, 0x00, 0x01, 0x2c, 0, 0xff]);
        let h = VxlanPacket::new_checked(&b[..]).unwrap();
        assert_eq!(VxlanRepr::parse(&h), Ok(VxlanRepr { vni: 300 }));
    }

    #[test]
    fn tzsp_repr_emits_version_type_encapsulation_and_end() {
        let r = TzspRepr {
            packet_type: 0,
            encapsulation: TZSP_ENCAP_ETHERNET,
        };
        let mut b = [0xaau8; 6];
        r.emit(&mut TzspPacket::new_unchecked(&mut b[..]));
        assert_eq!(b, [0x01, 0x00, 0x00, 0x01, 0x01, 0xaa]);
        let mut h = TzspPacket::new_checked(&mut b[..]).unwrap();
        assert_eq!(TzspRepr::parse(&h), Ok(r));
        assert_eq!(h.payload_mut().unwrap(), &[0xaa]);
    }

    /// Every prefix of every header above with each byte in turn set to 0x00 and 0xff:
    /// a view that `new_checked` accepts never panics in a getter.
    #[test]
    fn corrupted_and_cut_headers_never_panic_in_getters() {
        let mut e3 = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
        e3.extend_from_slice(&[0x20, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0x08, 0x01, 0, 0, 0, 0]);
        let tz = [0x01, 0x00, 0x00, 0x01, 0x00, 0x0a, 0x01, 0xc4, 0x01, 0xaa];
        let vx = [0x08, 0, 0, 0, 0, 0x01, 0x2c, 0, 0xaa];
        for base in [
            &REAL_GRE_KEY[..],
            &REAL_ERSPAN2[..],
            &e3[..],
            &tz[..],
            &vx[..],
        ] {
            for n in 0..=base.len() {
                for at in 0..n.max(1) {
                    for v in [0x00, 0xff] {
                        let mut b = base[..n].to_vec();
                        if let Some(x) = b.get_mut(at) {
                            *x = v;
                        }
                        let _ = (gre(&b), vxlan(&b), tzsp(&b), erspan2(&b), erspan3(&b));
                        if let Ok(h) = GrePacket::new_checked(&b[..]) {
                            let _ = (GreRepr::parse(&h), h.payload(), h.version());
                        }
                        if let Ok(h) = Erspan2Packet::new_checked(&b[..]) {
                            let _ = (Erspan2Repr::parse(&h), h.payload());
                        }
                        if let Ok(h) = Erspan3Packet::new_checked(&b[..]) {
                            let _ = (h.vlan(), h.session_id(), h.timestamp(), h.sgt());
                            let _ = (h.frame_type(), h.payload());
                        }
                        if let Ok(h) = VxlanPacket::new_checked(&b[..]) {
                            let _ = (h.vni(), h.payload());
                        }
                        if let Ok(h) = TzspPacket::new_checked(&b[..]) {
                            let _ = (h.encapsulation(), h.payload());
                        }
                    }
                }
            }
        }
    }
}
