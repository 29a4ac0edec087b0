//! RTP fixed header view (RFC 3550 §5.1), RFC 4733 telephone-event payload, RTCP-mux demux.
// No panic on packet data by construction: every index, unwrap and expect here is a
// checked one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use super::{Error, Result, check_padding, first_octet_v2};
use crate::view::read::{be16, be32, slice, u8_at};
use byteorder::{ByteOrder, NetworkEndian};

mod field {
    use core::ops::Range;
    /// V (2), P, X, CC (4).
    pub const VPXCC: usize = 0;
    /// M, PT (7).
    pub const M_PT: usize = 1;
    pub const SEQUENCE: Range<usize> = 2..4;
    pub const TIMESTAMP: Range<usize> = 4..8;
    pub const SSRC: Range<usize> = 8..12;
    pub const CSRC: usize = 12;
}

/// Fixed header length before any CSRC.
pub const HEADER_LEN: usize = field::CSRC;

const FLAG_PADDING: u8 = 0x20;
const FLAG_EXTENSION: u8 = 0x10;

/// An RTP packet whose header, CSRC list, extension and padding `new_checked` has checked
/// against the buffer length.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The view over a borrowed datagram, as the tracker uses it.
pub type RtpPacket<'a> = Packet<&'a [u8]>;

crate::view::checked_view!(Packet, Error);

impl<T: AsRef<[u8]>> Packet<T> {
    /// What `new_checked` checks (version 2; CSRCs, extension and padding fit in the
    /// buffer): after it, no getter can index out of bounds.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        let b0 = first_octet_v2(buf, HEADER_LEN)?;
        let csrc_end = HEADER_LEN + 4 * usize::from(b0 & 0x0f);
        if buf.len() < csrc_end {
            return Err(Error::Truncated);
        }
        if b0 & FLAG_EXTENSION != 0 && buf.len() < csrc_end + 4 {
            return Err(Error::Truncated);
        }
        let start = self.payload_start();
        if buf.len() < start {
            return Err(Error::Truncated);
        }
        if b0 & FLAG_PADDING != 0 {
            check_padding(*buf.last().ok_or(Error::Truncated)?, buf.len() - start)?;
        }
        Ok(())
    }

    fn b0(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::VPXCC)
    }

    pub fn version(&self) -> u8 {
        self.b0() >> 6
    }
    pub fn padding(&self) -> bool {
        self.b0() & FLAG_PADDING != 0
    }
    pub fn extension(&self) -> bool {
        self.b0() & FLAG_EXTENSION != 0
    }
    pub fn csrc_count(&self) -> u8 {
        self.b0() & 0x0f
    }
    pub fn marker(&self) -> bool {
        u8_at(self.buffer.as_ref(), field::M_PT) & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::M_PT) & 0x7f
    }
    pub fn sequence_number(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQUENCE)
    }
    pub fn timestamp(&self) -> u32 {
        be32(self.buffer.as_ref(), field::TIMESTAMP)
    }
    pub fn ssrc(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SSRC)
    }
    fn csrc_end(&self) -> usize {
        field::CSRC + 4 * usize::from(self.csrc_count())
    }
    /// Start of the payload, after CSRCs and the extension (16-bit profile, 16-bit length
    /// in 32-bit words, §5.3.1).
    fn payload_start(&self) -> usize {
        let at = self.csrc_end();
        if !self.extension() {
            return at;
        }
        let words = be16(self.buffer.as_ref(), at + 2..at + 4);
        at + 4 + 4 * usize::from(words)
    }
    /// Number of padding octets (0 when the P bit is clear).
    pub fn padding_len(&self) -> usize {
        let buf = self.buffer.as_ref();
        match (self.padding(), buf.last()) {
            (true, Some(&n)) => usize::from(n),
            _ => 0,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let buf = slice(self.buffer.as_ref(), field::CSRC..self.csrc_end());
        buf.chunks_exact(4).map(NetworkEndian::read_u32)
    }
    /// Header extension `(profile, data)`, if present.
    pub fn extension_data(&self) -> Option<(u16, &'a [u8])> {
        if !self.extension() {
            return None;
        }
        let at = self.csrc_end();
        let buf = self.buffer.as_ref();
        Some((
            be16(buf, at..at + 2),
            slice(buf, at + 4..self.payload_start()),
        ))
    }
    /// Payload after CSRCs and extension, without padding.
    pub fn payload(&self) -> &'a [u8] {
        let buf = self.buffer.as_ref();
        slice(
            buf,
            self.payload_start()..buf.len().saturating_sub(self.padding_len()),
        )
    }
}

// Writing: the caller sized the buffer for the header (`buffer_len`); a short one is a
// bug in the writer, never packet data.
#[allow(clippy::indexing_slicing)]
impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Version 2, no padding, no extension, no CSRC.
    pub fn set_plain_header(&mut self) {
        self.buffer.as_mut()[field::VPXCC] = 2 << 6;
    }
    pub fn set_marker_and_payload_type(&mut self, marker: bool, pt: u8) {
        self.buffer.as_mut()[field::M_PT] = (u8::from(marker) << 7) | (pt & 0x7f);
    }
    pub fn set_sequence_number(&mut self, v: u16) {
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[field::SEQUENCE], v);
    }
    pub fn set_timestamp(&mut self, v: u32) {
        NetworkEndian::write_u32(&mut self.buffer.as_mut()[field::TIMESTAMP], v);
    }
    pub fn set_ssrc(&mut self, v: u32) {
        NetworkEndian::write_u32(&mut self.buffer.as_mut()[field::SSRC], v);
    }
}

/// A plain RTP header (no CSRC, extension or padding), as the fixture writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpRepr {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Self {
        RtpRepr {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence_number: p.sequence_number(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
        }
    }
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the 12-byte header; the payload after it is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_plain_header();
        p.set_marker_and_payload_type(self.marker, self.payload_type);
        p.set_sequence_number(self.sequence_number);
        p.set_timestamp(self.timestamp);
        p.set_ssrc(self.ssrc);
    }
}

/// RFC 5761 §4: with RTCP multiplexed on the RTP port, a second byte of 192..=223
/// (marker bit + PT 64..=95) is RTCP. Those PTs are reserved in RTP so that the RTCP
/// packet types 192..=223 never collide with RTP payload types. SR/RR/SDES/BYE/APP/
/// RTPFB/PSFB/XR are 200..=207, i.e. PT 72..=79 with the marker set.
pub fn is_rtcp_pt(b1: u8) -> bool {
    (192..=223).contains(&b1)
}

mod event_field {
    use core::ops::Range;
    pub const EVENT: usize = 0;
    /// E (end), R (reserved), volume (6).
    pub const E_R_VOLUME: usize = 1;
    pub const DURATION: Range<usize> = 2..4;
}

/// RFC 4733 §2.3 named-event payload: event, E bit, volume, duration.
#[derive(Debug, Clone, Copy)]
pub struct EventPacket<T: AsRef<[u8]>> {
    buffer: T,
}

/// The view over a borrowed RTP payload.
pub type TelephoneEvent<'a> = EventPacket<&'a [u8]>;

crate::view::checked_view!(EventPacket, Error);

impl<T: AsRef<[u8]>> EventPacket<T> {
    pub const LEN: usize = event_field::DURATION.end;

    /// What `new_checked` checks: the fixed 4-byte event fits.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }
    pub fn event(&self) -> u8 {
        u8_at(self.buffer.as_ref(), event_field::EVENT)
    }
    /// E bit: this is (a retransmission of) the final packet of the event.
    pub fn end(&self) -> bool {
        u8_at(self.buffer.as_ref(), event_field::E_R_VOLUME) & 0x80 != 0
    }
    /// Power level in -dBm0 (0..=63).
    pub fn volume(&self) -> u8 {
        u8_at(self.buffer.as_ref(), event_field::E_R_VOLUME) & 0x3f
    }
    /// Duration so far in timestamp units (§2.5.1.3).
    pub fn duration(&self) -> u16 {
        be16(self.buffer.as_ref(), event_field::DURATION)
    }
    /// DTMF digit for events 0..=15 (RFC 4733 §3.2 table 1), `'?'` otherwise.
    pub fn digit(&self) -> char {
        event_digit(self.event())
    }
}

/// RFC 4733 §3.2: 0-9, *, #, A-D.
pub fn event_digit(event: u8) -> char {
    match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + (event - 12)),
        _ => '?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First packet of sipp_g711a_rtp_only.pcap (UDP payload, first 16 payload bytes kept).
    const PCMA: [u8; 28] = [
        0x80, 0x88, 0xe6, 0xfd, 0x00, 0x00, 0x00, 0xf0, 0xde, 0xe0, 0xee, 0x8f, 0xd5, 0xd5, 0xd5,
        0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5, 0xd5,
    ];
    /// Frame 8 of sipp_dtmf_2833_1.pcap: digit 1, end bit, duration 2240.
    const DTMF_END: [u8; 16] = [
        0x80, 0x65, 0x1f, 0x37, 0x00, 0x00, 0x33, 0xe0, 0x0e, 0x05, 0x38, 0x4e, 0x01, 0x8a, 0x08,
        0xc0,
    ];

    #[test]
    fn parses_pcma_header_fields() {
        let p = RtpPacket::new_checked(&PCMA).unwrap();
        assert_eq!(p.version(), 2);
        assert!(p.marker());
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.sequence_number(), 0xe6fd);
        assert_eq!(p.timestamp(), 240);
        assert_eq!(p.ssrc(), 0xdee0_ee8f);
        assert_eq!(p.csrc_count(), 0);
        assert!(!p.padding() && !p.extension());
        assert_eq!(p.payload().len(), 16);
        assert_eq!(p.csrcs().count(), 0);
    }

    #[test]
    fn parses_telephone_event_end_packet() {
        let p = RtpPacket::new_checked(&DTMF_END).unwrap();
        assert_eq!(p.payload_type(), 101);
        assert_eq!(p.sequence_number(), 7991);
        let ev = TelephoneEvent::new_checked(p.payload()).unwrap();
        assert_eq!(ev.event(), 1);
        assert_eq!(ev.digit(), '1');
        assert!(ev.end());
        assert_eq!(ev.volume(), 10);
        assert_eq!(ev.duration(), 2240);
    }

    #[test]
    fn rejects_wrong_version_and_short_header() {
        let mut b = PCMA;
        b[0] = 0x40;
        assert_eq!(RtpPacket::new_checked(&b).unwrap_err(), Error::BadVersion);
        assert_eq!(
            RtpPacket::new_checked(&PCMA[..11]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(RtpPacket::new_checked(&[]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn rejects_truncated_csrc_list_and_extension() {
        let mut b = PCMA;
        b[0] = 0x80 | 5; // 5 CSRCs = 20 bytes, only 16 present
        assert_eq!(RtpPacket::new_checked(&b).unwrap_err(), Error::Truncated);
        let mut b = PCMA;
        b[0] = 0x90; // extension header length 0xd5d5 words
        assert_eq!(RtpPacket::new_checked(&b).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn reads_csrcs_extension_and_strips_padding() {
        let b: [u8; 32] = [
            0xb1, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, // V=2 P X CC=1
            0xaa, 0xbb, 0xcc, 0xdd, // CSRC
            0xbe, 0xde, 0x00, 0x01, 0x10, 0x20, 0x30, 0x40, // one-word extension
            0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x03, // payload + 3 padding
        ];
        let p = RtpPacket::new_checked(&b).unwrap();
        assert_eq!(p.csrcs().collect::<heapless::Vec<u32, 1>>()[0], 0xaabb_ccdd);
        let (profile, ext) = p.extension_data().unwrap();
        assert_eq!(profile, 0xbede);
        assert_eq!(ext, &[0x10, 0x20, 0x30, 0x40]);
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5]);
        assert_eq!(p.padding_len(), 3);
    }

    #[test]
    fn rejects_padding_longer_than_payload() {
        let mut b = PCMA;
        b[0] = 0xa0;
        b[27] = 17; // 16 payload bytes only
        assert_eq!(RtpPacket::new_checked(&b).unwrap_err(), Error::Malformed);
        b[27] = 0;
        assert_eq!(RtpPacket::new_checked(&b).unwrap_err(), Error::Malformed);
        b[27] = 16;
        assert_eq!(RtpPacket::new_checked(&b).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn rtcp_mux_demux_by_second_byte() {
        assert!(is_rtcp_pt(200) && is_rtcp_pt(201) && is_rtcp_pt(207));
        assert!(!is_rtcp_pt(0x88) && !is_rtcp_pt(8) && !is_rtcp_pt(101) && !is_rtcp_pt(0xe5));
    }

    #[test]
    fn maps_event_codes_to_digits() {
        let d: heapless::String<20> = (0..=16).map(event_digit).collect();
        assert_eq!(d.as_str(), "0123456789*#ABCD?");
    }

    #[test]
    fn real_pcma_header_emits_the_same_bytes() {
        let p = RtpPacket::new_checked(&PCMA).unwrap();
        let repr = RtpRepr::parse(&p);
        assert_eq!(
            repr,
            RtpRepr {
                marker: true,
                payload_type: 8,
                sequence_number: 0xe6fd,
                timestamp: 240,
                ssrc: 0xdee0_ee8f,
            }
        );
        let mut out = [0u8; HEADER_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, PCMA[..HEADER_LEN]);
    }

    /// Every prefix of real packets with each byte in turn set to 0x00 and 0xff: a view
    /// that `new_checked` accepts never panics in a getter.
    #[test]
    fn corrupted_and_cut_packets_never_panic_in_getters() {
        let ext: [u8; 32] = [
            0xb1, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xbe, 0xde,
            0x00, 0x01, 0x10, 0x20, 0x30, 0x40, 0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x03,
        ];
        for base in [&PCMA[..], &DTMF_END[..], &ext[..]] {
            for n in 0..=base.len() {
                for at in 0..n.max(1) {
                    for v in [0x00, 0xff] {
                        let mut b = base[..n].to_vec();
                        if let Some(x) = b.get_mut(at) {
                            *x = v;
                        }
                        if let Ok(p) = RtpPacket::new_checked(&b) {
                            let _ = (RtpRepr::parse(&p), p.csrcs().count(), p.extension_data());
                            let _ = (p.payload(), p.padding_len());
                        }
                    }
                }
            }
        }
    }
}
