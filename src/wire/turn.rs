//! TURN (RFC 8656): how media relayed through a TURN server looks on the client's leg.
//!
//! Two carriers, both on the TURN port (3478, UDP or TCP):
//! * **ChannelData** (§12.4): channel number (0x4000–0x7FFF; RFC 8656 narrowed it to
//!   0x4FFF, RFC 5766 clients use the whole range), length, the application data; over
//!   TCP padded to a multiple of 4 bytes.
//! * **Send / Data indications** (§11): a STUN message (RFC 8489 §5) whose DATA attribute
//!   carries the datagram and whose XOR-PEER-ADDRESS names the peer on the relay's side.
//!
//! smoltcp has neither, so the views are written here in its shape. [`relayed`] is what
//! the tracker calls: the data a datagram (or a framed TCP message) relays, if any.

use super::{DecodeError, Framing};
use crate::view::read;
use byteorder::{ByteOrder, NetworkEndian};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The TURN (and STUN) port, UDP and TCP.
pub const TURN_PORT: u16 = 3478;
/// STUN's magic cookie (RFC 8489 §5): also the XOR key of XOR-PEER-ADDRESS.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Message types (method 0x006 Send / 0x007 Data, class indication).
pub const SEND_INDICATION: u16 = 0x0016;
pub const DATA_INDICATION: u16 = 0x0017;
pub const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
pub const ATTR_DATA: u16 = 0x0013;
const CHANNELS: core::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;
const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

// ---- ChannelData (RFC 8656 §12.4) ----

mod channel_field {
    use core::ops::Range;
    pub const CHANNEL: Range<usize> = 0..2;
    pub const LENGTH: Range<usize> = 2..4;
    pub const DATA: usize = 4;
}

/// A ChannelData message.
#[derive(Debug, Clone, Copy)]
pub struct ChannelData<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(ChannelData, DecodeError);

impl<T: AsRef<[u8]>> ChannelData<T> {
    /// Rejects a channel number outside 0x4000–0x7FFF (the first two bits `01` are what
    /// tell ChannelData from STUN, `00`) and a length running past the buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let b = self.buffer.as_ref();
        if b.len() < channel_field::DATA {
            return Err(DecodeError::Truncated);
        }
        if !CHANNELS.contains(&self.channel()) {
            return Err(DecodeError::Malformed);
        }
        if b.len() < channel_field::DATA + usize::from(self.length()) {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }
    pub fn channel(&self) -> u16 {
        read::be16(self.buffer.as_ref(), channel_field::CHANNEL)
    }
    /// Length of the application data (padding excluded).
    pub fn length(&self) -> u16 {
        read::be16(self.buffer.as_ref(), channel_field::LENGTH)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ChannelData<&'a T> {
    pub fn data(&self) -> &'a [u8] {
        let end = channel_field::DATA + usize::from(self.length());
        read::slice(self.buffer.as_ref(), channel_field::DATA..end)
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> ChannelData<T> {
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = channel_field::DATA + usize::from(self.length());
        &mut self.buffer.as_mut()[channel_field::DATA..end]
    }
}

/// A ChannelData header as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelDataRepr {
    pub channel: u16,
    pub data_len: u16,
}

impl ChannelDataRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ChannelData<T>) -> Self {
        ChannelDataRepr {
            channel: p.channel(),
            data_len: p.length(),
        }
    }
    /// Header and data; over TCP the message is padded to [`Self::padded_len`].
    pub fn buffer_len(&self) -> usize {
        channel_field::DATA + usize::from(self.data_len)
    }
    pub fn padded_len(&self) -> usize {
        self.buffer_len().next_multiple_of(4)
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ChannelData<T>) {
        let b = p.buffer.as_mut();
        NetworkEndian::write_u16(&mut b[channel_field::CHANNEL], self.channel);
        NetworkEndian::write_u16(&mut b[channel_field::LENGTH], self.data_len);
    }
}

// ---- STUN messages (RFC 8489 §5, §14) ----

mod stun_field {
    use core::ops::Range;
    pub const TYPE: Range<usize> = 0..2;
    /// Length of the attributes (the 20-byte header excluded), a multiple of 4.
    pub const LENGTH: Range<usize> = 2..4;
    pub const COOKIE: Range<usize> = 4..8;
    pub const TRANSACTION: Range<usize> = 8..20;
    pub const ATTRIBUTES: usize = 20;
}

/// A STUN message: header checked, attributes walked on demand.
#[derive(Debug, Clone, Copy)]
pub struct StunPacket<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(StunPacket, DecodeError);

impl<T: AsRef<[u8]>> StunPacket<T> {
    /// First two bits zero, the magic cookie, a length that is a multiple of 4 and fits.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let b = self.buffer.as_ref();
        if b.len() < stun_field::ATTRIBUTES {
            return Err(DecodeError::Truncated);
        }
        if read::u8_at(b, 0) & 0xC0 != 0
            || read::be32(b, stun_field::COOKIE) != MAGIC_COOKIE
            || !self.length().is_multiple_of(4)
        {
            return Err(DecodeError::Malformed);
        }
        if b.len() < self.total_len() {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }
    pub fn msg_type(&self) -> u16 {
        read::be16(self.buffer.as_ref(), stun_field::TYPE)
    }
    pub fn length(&self) -> u16 {
        read::be16(self.buffer.as_ref(), stun_field::LENGTH)
    }
    pub fn total_len(&self) -> usize {
        stun_field::ATTRIBUTES + usize::from(self.length())
    }
    pub fn transaction_id(&self) -> [u8; 12] {
        read::slice(self.buffer.as_ref(), stun_field::TRANSACTION)
            .try_into()
            .unwrap_or([0; 12])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> StunPacket<&'a T> {
    /// The value of the first attribute of type `ty` (padding excluded); `None` when absent
    /// or when an attribute runs past the message.
    pub fn attribute(&self, ty: u16) -> Option<&'a [u8]> {
        let b = self.buffer.as_ref();
        let end = self.total_len();
        let mut at = stun_field::ATTRIBUTES;
        while at + 4 <= end {
            let t = read::be16(b, at..at + 2);
            let len = usize::from(read::be16(b, at + 2..at + 4));
            let value = b
                .get(at + 4..at + 4 + len)
                .filter(|_| at + 4 + len <= end)?;
            if t == ty {
                return Some(value);
            }
            at += 4 + len.next_multiple_of(4);
        }
        None
    }

    /// XOR-PEER-ADDRESS decoded (RFC 8489 §14.2: port XOR the cookie's top half, IPv4
    /// XOR the cookie, IPv6 XOR cookie ‖ transaction id).
    pub fn xor_peer_address(&self) -> Option<SocketAddr> {
        let v = self.attribute(ATTR_XOR_PEER_ADDRESS)?;
        let port = NetworkEndian::read_u16(v.get(2..4)?) ^ (MAGIC_COOKIE >> 16) as u16;
        let ip = match *v.get(1)? {
            FAMILY_IPV4 => {
                let x = NetworkEndian::read_u32(v.get(4..8)?) ^ MAGIC_COOKIE;
                IpAddr::V4(Ipv4Addr::from(x))
            }
            FAMILY_IPV6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(v.get(4..20)?);
                let mut key = [0u8; 16];
                key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                key[4..].copy_from_slice(&self.transaction_id());
                for (x, k) in a.iter_mut().zip(key) {
                    *x ^= k;
                }
                IpAddr::V6(Ipv6Addr::from(a))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }
}

/// A Send or Data indication as written: header, XOR-PEER-ADDRESS, DATA (no FINGERPRINT;
/// indications carry no integrity check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndicationRepr {
    /// [`SEND_INDICATION`] (client → server) or [`DATA_INDICATION`] (server → client).
    pub msg_type: u16,
    pub transaction_id: [u8; 12],
    pub peer: SocketAddr,
    pub data_len: u16,
}

impl IndicationRepr {
    fn peer_attr_len(&self) -> usize {
        match self.peer {
            SocketAddr::V4(_) => 8,
            SocketAddr::V6(_) => 20,
        }
    }
    pub fn buffer_len(&self) -> usize {
        stun_field::ATTRIBUTES
            + 4
            + self.peer_attr_len()
            + 4
            + usize::from(self.data_len).next_multiple_of(4)
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    /// Writes everything but the data, zeroing its padding; `data_mut` then takes the data.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut StunPacket<T>) {
        let len = self.buffer_len();
        let b = &mut p.buffer.as_mut()[..len];
        b.fill(0);
        NetworkEndian::write_u16(&mut b[stun_field::TYPE], self.msg_type);
        NetworkEndian::write_u16(
            &mut b[stun_field::LENGTH],
            (len - stun_field::ATTRIBUTES) as u16,
        );
        NetworkEndian::write_u32(&mut b[stun_field::COOKIE], MAGIC_COOKIE);
        b[stun_field::TRANSACTION].copy_from_slice(&self.transaction_id);
        let mut at = stun_field::ATTRIBUTES;
        NetworkEndian::write_u16(&mut b[at..at + 2], ATTR_XOR_PEER_ADDRESS);
        NetworkEndian::write_u16(&mut b[at + 2..at + 4], self.peer_attr_len() as u16);
        let v = &mut b[at + 4..at + 4 + self.peer_attr_len()];
        NetworkEndian::write_u16(&mut v[2..4], self.peer.port() ^ (MAGIC_COOKIE >> 16) as u16);
        match self.peer.ip() {
            IpAddr::V4(a) => {
                v[1] = FAMILY_IPV4;
                NetworkEndian::write_u32(&mut v[4..8], u32::from(a) ^ MAGIC_COOKIE);
            }
            IpAddr::V6(a) => {
                v[1] = FAMILY_IPV6;
                let mut key = [0u8; 16];
                key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                key[4..].copy_from_slice(&self.transaction_id);
                for ((x, o), k) in v[4..20].iter_mut().zip(a.octets()).zip(key) {
                    *x = o ^ k;
                }
            }
        }
        at += 4 + self.peer_attr_len();
        NetworkEndian::write_u16(&mut b[at..at + 2], ATTR_DATA);
        NetworkEndian::write_u16(&mut b[at + 2..at + 4], self.data_len);
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> StunPacket<T> {
    /// The DATA attribute's value as written by [`IndicationRepr::emit`].
    pub fn data_mut(&mut self, repr: &IndicationRepr) -> &mut [u8] {
        let at = stun_field::ATTRIBUTES + 4 + repr.peer_attr_len() + 4;
        &mut self.buffer.as_mut()[at..at + usize::from(repr.data_len)]
    }
}

// ---- What the tracker asks ----

/// Data relayed by a TURN message, with what the message says about its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed<'a> {
    Channel {
        channel: u16,
        data: &'a [u8],
    },
    /// Send (client → peer) or Data (peer → client) indication; `peer` from
    /// XOR-PEER-ADDRESS when present.
    Indication {
        msg_type: u16,
        peer: Option<SocketAddr>,
        data: &'a [u8],
    },
}

impl<'a> Relayed<'a> {
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Relayed::Channel { data, .. } | Relayed::Indication { data, .. } => data,
        }
    }
}

/// Either end on the TURN port.
pub fn on_turn_port(src_port: u16, dst_port: u16) -> bool {
    src_port == TURN_PORT || dst_port == TURN_PORT
}

/// The data a TURN datagram (or one TCP-framed TURN message) relays: ChannelData, or a
/// Send/Data indication with a DATA attribute. `None` for every other STUN message
/// (binding, allocate, refresh, ChannelBind...) and for what is not TURN at all.
pub fn relayed(buf: &[u8]) -> Option<Relayed<'_>> {
    match buf.first()? >> 6 {
        0b01 => {
            let c = ChannelData::new_checked(buf).ok()?;
            Some(Relayed::Channel {
                channel: c.channel(),
                data: c.data(),
            })
        }
        0b00 => {
            let s = StunPacket::new_checked(buf).ok()?;
            let msg_type = s.msg_type();
            if msg_type != SEND_INDICATION && msg_type != DATA_INDICATION {
                return None;
            }
            Some(Relayed::Indication {
                msg_type,
                peer: s.xor_peer_address(),
                data: s.attribute(ATTR_DATA)?,
            })
        }
        _ => None,
    }
}

/// Framer of TURN over TCP (RFC 8656 §12.5): STUN messages are framed by their length,
/// ChannelData by its length padded to 4; anything else is skipped a byte at a time
/// until a plausible header (mid-stream starts resynchronise).
pub fn frame_tcp(b: &[u8]) -> Framing {
    let Some(&first) = b.first() else {
        return Framing::NeedMore;
    };
    if b.len() < 4 {
        return Framing::NeedMore;
    }
    let len = usize::from(read::be16(b, 2..4));
    let total = match first >> 6 {
        0b01 => (channel_field::DATA + len).next_multiple_of(4),
        0b00 if b.len() < 8 => return Framing::NeedMore,
        0b00 if read::be32(b, 4..8) == MAGIC_COOKIE && len.is_multiple_of(4) => {
            stun_field::ATTRIBUTES + len
        }
        _ => return Framing::Skip(1),
    };
    if b.len() >= total {
        Framing::Complete(total)
    } else {
        Framing::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTP (PCMU, seq 1, ts 160, SSRC 0x11223344) with 4 bytes of payload.
    const RTP: [u8; 16] = [
        0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x11, 0x22, 0x33, 0x44, 0xff, 0xff, 0xff,
        0xff,
    ];

    /// ChannelData on channel 0x4001 carrying `RTP`, as a client sends it over UDP.
    const CHANNEL_DATA: [u8; 20] = [
        0x40, 0x01, 0x00, 0x10, 0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x11, 0x22, 0x33,
        0x44, 0xff, 0xff, 0xff, 0xff,
    ];

    /// Data indication from 192.0.2.1:32853 carrying `RTP` (the XOR-PEER-ADDRESS of
    /// RFC 5769 §2.2's test vector, port 0xa147 ^ 0x2112, address 0xe112a643 ^ cookie).
    const DATA_IND: [u8; 48] = [
        0x00, 0x17, 0x00, 0x20, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, // header, transaction id
        0x00, 0x12, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, // peer
        0x00, 0x13, 0x00, 0x10, 0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x11, 0x22, 0x33,
        0x44, // DATA, first 12 bytes
    ];

    fn data_ind() -> Vec<u8> {
        let mut v = DATA_IND.to_vec();
        v.extend_from_slice(&[0xff; 4]);
        v
    }

    #[test]
    fn channel_data_view_reads_channel_length_and_data() {
        let c = ChannelData::new_checked(&CHANNEL_DATA[..]).unwrap();
        assert_eq!((c.channel(), c.length()), (0x4001, 16));
        assert_eq!(c.data(), &RTP);
        assert_eq!(
            relayed(&CHANNEL_DATA),
            Some(Relayed::Channel {
                channel: 0x4001,
                data: &RTP
            })
        );
        assert_eq!(
            ChannelData::new_checked(&CHANNEL_DATA[..19]).unwrap_err(),
            DecodeError::Truncated
        );
        let mut low = CHANNEL_DATA;
        low[0] = 0x3f;
        assert_eq!(
            ChannelData::new_checked(&low[..]).unwrap_err(),
            DecodeError::Malformed
        );
    }

    #[test]
    fn channel_data_repr_emits_the_same_bytes_and_pads_over_tcp() {
        let r = ChannelDataRepr::parse(&ChannelData::new_checked(&CHANNEL_DATA[..]).unwrap());
        let mut out = [0u8; 20];
        let mut p = ChannelData::new_unchecked(&mut out[..]);
        r.emit(&mut p);
        p.data_mut().copy_from_slice(&RTP);
        assert_eq!(out, CHANNEL_DATA);
        let odd = ChannelDataRepr {
            channel: 0x7fff,
            data_len: 13,
        };
        assert_eq!((odd.buffer_len(), odd.padded_len()), (17, 20));
    }

    #[test]
    fn data_indication_gives_peer_and_data() {
        let b = data_ind();
        let s = StunPacket::new_checked(&b[..]).unwrap();
        assert_eq!((s.msg_type(), s.total_len()), (DATA_INDICATION, 52));
        let peer: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        assert_eq!(s.xor_peer_address(), Some(peer));
        assert_eq!(
            relayed(&b),
            Some(Relayed::Indication {
                msg_type: DATA_INDICATION,
                peer: Some(peer),
                data: &RTP
            })
        );
    }

    #[test]
    fn indication_repr_emits_the_same_bytes_v4_and_round_trips_v6() {
        let b = data_ind();
        let s = StunPacket::new_checked(&b[..]).unwrap();
        let r = IndicationRepr {
            msg_type: DATA_INDICATION,
            transaction_id: s.transaction_id(),
            peer: s.xor_peer_address().unwrap(),
            data_len: 16,
        };
        let mut out = vec![0xaa; r.buffer_len()];
        let mut p = StunPacket::new_unchecked(&mut out[..]);
        r.emit(&mut p);
        p.data_mut(&r).copy_from_slice(&RTP);
        assert_eq!(out, b);
        // IPv6 peer (RFC 5769 §2.3's address), odd data length: padded, still parsed.
        let r6 = IndicationRepr {
            msg_type: SEND_INDICATION,
            peer: "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap(),
            data_len: 13,
            ..r
        };
        let mut out = vec![0xaa; r6.buffer_len()];
        let mut p = StunPacket::new_unchecked(&mut out[..]);
        r6.emit(&mut p);
        p.data_mut(&r6).copy_from_slice(&RTP[..13]);
        let Some(Relayed::Indication {
            msg_type,
            peer,
            data,
        }) = relayed(&out)
        else {
            panic!("not an indication: {out:02x?}");
        };
        assert_eq!(
            (msg_type, peer, data),
            (SEND_INDICATION, Some(r6.peer), &RTP[..13])
        );
    }

    #[test]
    fn other_stun_messages_and_non_turn_relay_nothing() {
        // RFC 5769 §2.1 binding request header (attributes cut): not an indication.
        let mut binding = [0u8; 20];
        binding[..8].copy_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(relayed(&binding), None);
        // RTP itself (first bits 10) and a wrong cookie.
        assert_eq!(relayed(&RTP), None);
        let mut bad = data_ind();
        bad[4] = 0;
        assert_eq!(relayed(&bad), None);
        // An indication without DATA.
        let mut nodata = data_ind();
        nodata[3] = 0x0c;
        assert_eq!(relayed(&nodata[..32]), None);
    }

    #[test]
    fn tcp_framer_frames_padded_channel_data_and_stun() {
        let mut stream = Vec::new();
        let odd = ChannelDataRepr {
            channel: 0x4002,
            data_len: 13,
        };
        let mut m = vec![0u8; odd.padded_len()];
        odd.emit(&mut ChannelData::new_unchecked(&mut m[..]));
        stream.extend_from_slice(&m);
        stream.extend_from_slice(&data_ind());
        assert_eq!(frame_tcp(&stream), Framing::Complete(20));
        assert_eq!(frame_tcp(&stream[20..]), Framing::Complete(52));
        assert_eq!(frame_tcp(&stream[20..60]), Framing::NeedMore);
        assert_eq!(frame_tcp(&stream[..3]), Framing::NeedMore);
        assert_eq!(frame_tcp(&RTP), Framing::Skip(1));
    }

    #[test]
    fn cut_and_corrupted_messages_never_panic() {
        for base in [&CHANNEL_DATA[..], &data_ind()[..]] {
            for n in 0..=base.len() {
                for at in 0..n.max(1) {
                    for v in [0x00, 0x7f, 0xff] {
                        let mut b = base[..n].to_vec();
                        if let Some(x) = b.get_mut(at) {
                            *x = v;
                        }
                        let _ = (relayed(&b), frame_tcp(&b));
                        if let Ok(s) = StunPacket::new_checked(&b[..]) {
                            let _ = (s.xor_peer_address(), s.attribute(ATTR_DATA));
                        }
                    }
                }
            }
        }
    }
}
