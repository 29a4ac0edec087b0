//! Link layer: strip the capture's link header (Ethernet with any stack of 802.1Q/802.1ad
//! tags, Linux cooked SLL/SLL2, BSD NULL/LOOP, raw IP) down to a network-layer payload.
//!
//! smoltcp's `EthernetFrame` gives the Ethernet header; VLAN tags and the cooked headers
//! are views in smoltcp's shape here because smoltcp has none (BSD NULL is one word).

use super::{DecodeError, Encap, LinkType};
use crate::view::read;
use byteorder::{ByteOrder, NetworkEndian};
use smoltcp::wire::EthernetFrame;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// 802.1Q customer tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag (QinQ outer).
pub const ETHERTYPE_QINQ: u16 = 0x88A8;
/// Pre-standard QinQ outer tag still used by some switches.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Tags beyond this many are treated as a malformed frame, not followed forever.
pub const MAX_VLAN_TAGS: usize = 4;

/// Linux SLL v1 header length (packet type, ARPHRD, address length, 8-byte address,
/// protocol).
pub const SLL_HEADER_LEN: usize = sll_field::PROTOCOL.end;
/// Linux SLL v2 header length (protocol, reserved, ifindex, ARPHRD, packet type, address
/// length, 8-byte address).
pub const SLL2_HEADER_LEN: usize = sll2_field::ADDR.end;

/// The network layer found under the link header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
}

/// Result of stripping a link header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRepr<'a> {
    pub network: Network<'a>,
    /// Innermost 802.1Q VLAN id, if any tag was present.
    pub vlan: Option<u16>,
    /// `Encap::VLAN` / `Encap::QINQ` bits.
    pub encap: Encap,
}

// 802.1Q/802.1ad tag after its TPID (the TPID is the ethertype before it).
mod vlan_field {
    use core::ops::Range;
    /// PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// One 802.1Q/802.1ad tag's 4 bytes after the TPID: TCI, inner ethertype.
#[derive(Debug, Clone, Copy)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

// A tag is 4 bytes after its TPID.
super::checked_view!(VlanTag, min_len vlan_field::PAYLOAD);

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// 12-bit VLAN identifier (priority and DEI bits dropped).
    pub fn vid(&self) -> u16 {
        read::be16(self.buffer.as_ref(), vlan_field::TCI) & 0x0FFF
    }
    pub fn priority(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), vlan_field::TCI.start) >> 5
    }
    pub fn ethertype(&self) -> u16 {
        read::be16(self.buffer.as_ref(), vlan_field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        self.buffer
            .as_ref()
            .get(vlan_field::PAYLOAD..)
            .unwrap_or(&[])
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets the VID, keeping priority and DEI.
    pub fn set_vid(&mut self, vid: u16) {
        let tci = &mut self.buffer.as_mut()[vlan_field::TCI];
        let keep = NetworkEndian::read_u16(tci) & 0xF000;
        NetworkEndian::write_u16(tci, keep | (vid & 0x0FFF));
    }
    pub fn set_ethertype(&mut self, ethertype: u16) {
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[vlan_field::ETHERTYPE], ethertype);
    }
}

/// A tag as written: priority 0, DEI clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRepr {
    pub vid: u16,
    /// Ethertype of what follows the tag.
    pub ethertype: u16,
}

impl VlanRepr {
    pub fn parse<T: AsRef<[u8]>>(tag: &VlanTag<T>) -> Self {
        VlanRepr {
            vid: tag.vid(),
            ethertype: tag.ethertype(),
        }
    }
    pub const fn buffer_len(&self) -> usize {
        vlan_field::PAYLOAD
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tag: &mut VlanTag<T>) {
        tag.buffer.as_mut()[vlan_field::TCI].fill(0);
        tag.set_vid(self.vid);
        tag.set_ethertype(self.ethertype);
    }
}

// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`).
mod sll_field {
    use core::ops::Range;
    pub const PACKET_TYPE: Range<usize> = 0..2;
    pub const ARPHRD: Range<usize> = 2..4;
    pub const ADDR_LEN: Range<usize> = 4..6;
    pub const ADDR: Range<usize> = 6..14;
    pub const PROTOCOL: Range<usize> = 14..16;
}

/// Linux cooked capture v1 header.
#[derive(Debug, Clone, Copy)]
pub struct SllPacket<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(SllPacket, min_len SLL_HEADER_LEN);

impl<T: AsRef<[u8]>> SllPacket<T> {
    /// 0 to us, 1 broadcast, 2 multicast, 3 to someone else, 4 sent by us.
    pub fn packet_type(&self) -> u16 {
        read::be16(self.buffer.as_ref(), sll_field::PACKET_TYPE)
    }
    pub fn arphrd(&self) -> u16 {
        read::be16(self.buffer.as_ref(), sll_field::ARPHRD)
    }
    /// Link-layer source address (the first `addr_len` bytes of 8 count).
    pub fn addr(&self) -> &[u8] {
        let b = read::slice(self.buffer.as_ref(), sll_field::ADDR);
        let n = read::be16(self.buffer.as_ref(), sll_field::ADDR_LEN);
        read::slice(b, 0..usize::from(n).min(b.len()))
    }
    pub fn protocol(&self) -> u16 {
        read::be16(self.buffer.as_ref(), sll_field::PROTOCOL)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> SllPacket<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        self.buffer.as_ref().get(SLL_HEADER_LEN..).unwrap_or(&[])
    }
}

// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`): the protocol comes first.
mod sll2_field {
    use core::ops::Range;
    pub const PROTOCOL: Range<usize> = 0..2;
    pub const RESERVED: Range<usize> = 2..4;
    pub const IFINDEX: Range<usize> = 4..8;
    pub const ARPHRD: Range<usize> = 8..10;
    pub const PACKET_TYPE: usize = 10;
    pub const ADDR_LEN: usize = 11;
    pub const ADDR: Range<usize> = 12..20;
}

/// Linux cooked capture v2 header.
#[derive(Debug, Clone, Copy)]
pub struct Sll2Packet<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(Sll2Packet, min_len SLL2_HEADER_LEN);

impl<T: AsRef<[u8]>> Sll2Packet<T> {
    pub fn protocol(&self) -> u16 {
        read::be16(self.buffer.as_ref(), sll2_field::PROTOCOL)
    }
    pub fn reserved(&self) -> u16 {
        read::be16(self.buffer.as_ref(), sll2_field::RESERVED)
    }
    pub fn ifindex(&self) -> u32 {
        read::be32(self.buffer.as_ref(), sll2_field::IFINDEX)
    }
    pub fn arphrd(&self) -> u16 {
        read::be16(self.buffer.as_ref(), sll2_field::ARPHRD)
    }
    pub fn packet_type(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), sll2_field::PACKET_TYPE)
    }
    /// Link-layer source address (the first `addr_len` bytes of 8 count).
    pub fn addr(&self) -> &[u8] {
        let b = read::slice(self.buffer.as_ref(), sll2_field::ADDR);
        let n = read::u8_at(self.buffer.as_ref(), sll2_field::ADDR_LEN);
        read::slice(b, 0..usize::from(n).min(b.len()))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Sll2Packet<&'a T> {
    pub fn payload(&self) -> &'a [u8] {
        self.buffer.as_ref().get(SLL2_HEADER_LEN..).unwrap_or(&[])
    }
}

/// Strips the link header of `frame` captured with link type `link`.
pub fn strip(link: LinkType, frame: &[u8]) -> Result<LinkRepr<'_>, DecodeError> {
    match link {
        LinkType::Ethernet => ethernet(frame),
        LinkType::LinuxSll => {
            let h = SllPacket::new_checked(frame)?;
            ethertype_payload(h.protocol(), h.payload(), None, Encap::default())
        }
        LinkType::LinuxSll2 => {
            let h = Sll2Packet::new_checked(frame)?;
            ethertype_payload(h.protocol(), h.payload(), None, Encap::default())
        }
        LinkType::RawIp => raw_ip(frame),
        LinkType::Ipv4 => plain(Network::Ipv4(frame)),
        LinkType::Ipv6 => plain(Network::Ipv6(frame)),
        LinkType::Null => {
            let fam = *frame.first_chunk::<4>().ok_or(DecodeError::Truncated)?;
            let rest = frame.get(4..).unwrap_or(&[]);
            // Host byte order of the capturing machine: accept either. AF_INET is 2
            // everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
            let v = u32::from_le_bytes(fam).min(u32::from_be_bytes(fam));
            match v {
                2 => plain(Network::Ipv4(rest)),
                10 | 24 | 28 | 30 => plain(Network::Ipv6(rest)),
                _ => Err(DecodeError::NotIpTransport),
            }
        }
    }
}

fn plain(network: Network<'_>) -> Result<LinkRepr<'_>, DecodeError> {
    Ok(LinkRepr {
        network,
        vlan: None,
        encap: Encap::default(),
    })
}

/// Raw IP: the version nibble decides.
pub fn raw_ip(frame: &[u8]) -> Result<LinkRepr<'_>, DecodeError> {
    match frame.first().map(|b| b >> 4) {
        Some(4) => plain(Network::Ipv4(frame)),
        Some(6) => plain(Network::Ipv6(frame)),
        Some(_) => Err(DecodeError::Malformed),
        None => Err(DecodeError::Truncated),
    }
}

/// An Ethernet frame (also the inner frame of GRE TEB, ERSPAN, VXLAN and TZSP).
pub fn ethernet(frame: &[u8]) -> Result<LinkRepr<'_>, DecodeError> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DecodeError::Truncated)?;
    let ethertype: u16 = eth.ethertype().into();
    ethertype_payload(ethertype, eth.payload(), None, Encap::default())
}

/// Follows VLAN tags from `ethertype` + `payload` to IPv4/IPv6.
fn ethertype_payload(
    mut ethertype: u16,
    mut payload: &[u8],
    mut vlan: Option<u16>,
    mut encap: Encap,
) -> Result<LinkRepr<'_>, DecodeError> {
    let mut tags = 0;
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => {
                return Ok(LinkRepr {
                    network: Network::Ipv4(payload),
                    vlan,
                    encap,
                });
            }
            ETHERTYPE_IPV6 => {
                return Ok(LinkRepr {
                    network: Network::Ipv6(payload),
                    vlan,
                    encap,
                });
            }
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(DecodeError::Malformed);
                }
                let tag = VlanTag::new_checked(payload)?;
                encap.0 |= Encap::VLAN;
                if tags > 1 || ethertype != ETHERTYPE_VLAN {
                    encap.0 |= Encap::QINQ;
                }
                // The innermost tag wins: it names the customer VLAN the call is on.
                vlan = Some(tag.vid());
                ethertype = tag.ethertype();
                payload = tag.payload();
            }
            _ => return Err(DecodeError::NotIpTransport),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ethernet II header from a real capture (dst 00:0c:29:.., src 00:50:56:..) carrying
    // IPv4, followed by the first bytes of an IPv4 header.
    const ETH_IPV4: [u8; 18] = [
        0x00, 0x0c, 0x29, 0x3e, 0x5b, 0x1a, 0x00, 0x50, 0x56, 0xc0, 0x00, 0x08, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x30,
    ];

    #[test]
    fn ethernet_ipv4_yields_payload_after_14_bytes() {
        let r = strip(LinkType::Ethernet, &ETH_IPV4).unwrap();
        assert_eq!(r.network, Network::Ipv4(&ETH_IPV4[14..]));
        assert_eq!(r.vlan, None);
        assert_eq!(r.encap, Encap::default());
    }

    #[test]
    fn truncated_ethernet_is_rejected() {
        assert_eq!(
            strip(LinkType::Ethernet, &ETH_IPV4[..13]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn single_vlan_tag_gives_vid_and_vlan_bit() {
        // TPID 0x8100, PCP 5, VID 100 (0xA064), then IPv6.
        let mut f = ETH_IPV4[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0xA0, 0x64, 0x86, 0xdd, 0x60, 0, 0, 0]);
        let r = strip(LinkType::Ethernet, &f).unwrap();
        assert_eq!(r.vlan, Some(100));
        assert!(r.encap.has(Encap::VLAN) && !r.encap.has(Encap::QINQ));
        assert_eq!(r.network, Network::Ipv6(&[0x60, 0, 0, 0]));
    }

    #[test]
    fn qinq_reports_inner_vid_and_qinq_bit() {
        // 802.1ad S-tag VID 10, then 802.1Q C-tag VID 20, then IPv4.
        let mut f = ETH_IPV4[..12].to_vec();
        f.extend_from_slice(&[
            0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00, 0x45,
        ]);
        let r = strip(LinkType::Ethernet, &f).unwrap();
        assert_eq!(r.vlan, Some(20));
        assert!(r.encap.has(Encap::VLAN) && r.encap.has(Encap::QINQ));
        assert_eq!(r.network, Network::Ipv4(&[0x45]));
    }

    #[test]
    fn endless_vlan_stack_is_malformed_and_cut_tag_truncated() {
        let mut f = ETH_IPV4[..12].to_vec();
        for _ in 0..6 {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        assert_eq!(strip(LinkType::Ethernet, &f), Err(DecodeError::Malformed));
        let mut g = ETH_IPV4[..12].to_vec();
        g.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert_eq!(strip(LinkType::Ethernet, &g), Err(DecodeError::Truncated));
    }

    #[test]
    fn arp_is_not_ours() {
        let mut f = ETH_IPV4[..12].to_vec();
        f.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Err(DecodeError::NotIpTransport)
        );
    }

    #[test]
    fn linux_sll_v1_header_is_16_bytes() {
        // Real SLL header: outgoing (4), ARPHRD_ETHER (1), addr len 6, MAC + 2 pad, IPv6.
        let f = [
            0x00, 0x04, 0x00, 0x01, 0x00, 0x06, 0x00, 0x50, 0x56, 0xa1, 0x2b, 0x3c, 0x00, 0x00,
            0x86, 0xdd, 0x60,
        ];
        let r = strip(LinkType::LinuxSll, &f).unwrap();
        assert_eq!(r.network, Network::Ipv6(&[0x60]));
    }

    #[test]
    fn linux_sll_v2_header_is_20_bytes() {
        // Protocol IPv4, reserved, ifindex 2, ARPHRD_ETHER, PACKET_HOST, addr len 6, MAC.
        let f = [
            0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x06, 0x52, 0x54,
            0x00, 0x12, 0x34, 0x56, 0x00, 0x00, 0x45,
        ];
        let r = strip(LinkType::LinuxSll2, &f).unwrap();
        assert_eq!(r.network, Network::Ipv4(&[0x45]));
        assert_eq!(
            strip(LinkType::LinuxSll2, &f[..19]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn bsd_null_accepts_both_byte_orders() {
        // macOS loopback capture: AF_INET6 = 30 little-endian.
        let v6 = [30, 0, 0, 0, 0x60];
        assert_eq!(
            strip(LinkType::Null, &v6).unwrap().network,
            Network::Ipv6(&[0x60])
        );
        // OpenBSD DLT_LOOP: AF_INET = 2 big-endian.
        let v4 = [0, 0, 0, 2, 0x45];
        assert_eq!(
            strip(LinkType::Null, &v4).unwrap().network,
            Network::Ipv4(&[0x45])
        );
        assert_eq!(
            strip(LinkType::Null, &[0, 0, 0, 7]),
            Err(DecodeError::NotIpTransport)
        );
    }

    #[test]
    fn raw_ip_picks_version_from_first_nibble() {
        assert_eq!(
            strip(LinkType::RawIp, &[0x45, 0]).unwrap().network,
            Network::Ipv4(&[0x45, 0])
        );
        assert_eq!(
            strip(LinkType::RawIp, &[0x60]).unwrap().network,
            Network::Ipv6(&[0x60])
        );
        assert_eq!(strip(LinkType::RawIp, &[0x10]), Err(DecodeError::Malformed));
        assert_eq!(strip(LinkType::RawIp, &[]), Err(DecodeError::Truncated));
    }

    /// Frame 83 of ndpi_rtp_vlan_opus_h263.pcapng: TPID 0x8100, then this tag (PCP 0,
    /// VID 1508) carrying IPv4.
    const REAL_TAG: [u8; 4] = [0x05, 0xe4, 0x08, 0x00];

    #[test]
    fn real_vlan_tag_parses_and_emits_the_same_bytes() {
        let t = VlanTag::new_checked(&REAL_TAG[..]).unwrap();
        assert_eq!(
            (t.vid(), t.priority(), t.ethertype()),
            (1508, 0, ETHERTYPE_IPV4)
        );
        assert!(t.payload().is_empty());
        let repr = VlanRepr::parse(&t);
        let mut out = [0xffu8; 4];
        repr.emit(&mut VlanTag::new_unchecked(&mut out[..]));
        assert_eq!(out, REAL_TAG);
        assert_eq!(
            VlanTag::new_checked(&REAL_TAG[..3]).unwrap_err(),
            DecodeError::Truncated
        );
    }

    #[test]
    fn real_sll_header_gives_its_fields() {
        // Frame 1 of ipv6_fragmented_sip_prack_update.pcap: to us, ARPHRD_ETHER, 6-byte
        // MAC 00:50:56:8b:53:1c (two bytes of slack after it), IPv6.
        let f = [
            0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x50, 0x56, 0x8b, 0x53, 0x1c, 0x55, 0x54,
            0x86, 0xdd, 0x60,
        ];
        let h = SllPacket::new_checked(&f[..]).unwrap();
        assert_eq!((h.packet_type(), h.arphrd()), (0, 1));
        assert_eq!(h.addr(), &[0x00, 0x50, 0x56, 0x8b, 0x53, 0x1c]);
        assert_eq!(h.protocol(), ETHERTYPE_IPV6);
        assert_eq!(h.payload(), &[0x60]);
        assert_eq!(
            SllPacket::new_checked(&f[..15]).unwrap_err(),
            DecodeError::Truncated
        );
    }

    #[test]
    fn sll2_header_gives_its_fields() {
        let f = [
            0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x06, 0x52, 0x54,
            0x00, 0x12, 0x34, 0x56, 0x00, 0x00, 0x45,
        ];
        let h = Sll2Packet::new_checked(&f[..]).unwrap();
        assert_eq!(
            (h.protocol(), h.reserved(), h.ifindex()),
            (ETHERTYPE_IPV4, 0, 2)
        );
        assert_eq!((h.arphrd(), h.packet_type()), (1, 0));
        assert_eq!(h.addr(), &[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(h.payload(), &[0x45]);
    }
}
