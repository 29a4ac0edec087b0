//! RTP fixed header view (RFC 3550 §5.1), RFC 4733 telephone-event payload, RTCP-mux demux.

use super::{Error, Result};
use super::{be16, be32};

/// Fixed header length before any CSRC.
pub const HEADER_LEN: usize = 12;

/// A zero-copy view of an RTP packet whose header, CSRC list, extension and padding have
/// been checked against the buffer length.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    /// Start of the payload (after CSRCs and extension).
    payload_start: usize,
    /// End of the payload (buffer length minus padding).
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Checks version 2 and that CSRCs, extension and padding fit in `buf`.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        let b0 = *buf.first().ok_or(Error::Truncated)?;
        if b0 >> 6 != 2 {
            return Err(Error::BadVersion);
        }
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let mut start = HEADER_LEN + 4 * usize::from(b0 & 0x0f);
        if buf.len() < start {
            return Err(Error::Truncated);
        }
        if b0 & 0x10 != 0 {
            // Extension header: 16-bit profile, 16-bit length in 32-bit words (§5.3.1).
            if buf.len() < start + 4 {
                return Err(Error::Truncated);
            }
            start += 4 + 4 * usize::from(be16(buf, start + 2));
            if buf.len() < start {
                return Err(Error::Truncated);
            }
        }
        let mut end = buf.len();
        if b0 & 0x20 != 0 {
            // The last octet counts the padding, itself included (§5.1), so it is never 0.
            let pad = usize::from(*buf.last().ok_or(Error::Truncated)?);
            if pad == 0 || pad > end - start {
                return Err(Error::Malformed);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            buf,
            payload_start: start,
            payload_end: end,
        })
    }

    fn b0(&self) -> u8 {
        self.buf.first().copied().unwrap_or(0)
    }
    fn b1(&self) -> u8 {
        self.buf.get(1).copied().unwrap_or(0)
    }

    pub fn version(&self) -> u8 {
        self.b0() >> 6
    }
    pub fn padding(&self) -> bool {
        self.b0() & 0x20 != 0
    }
    pub fn extension(&self) -> bool {
        self.b0() & 0x10 != 0
    }
    pub fn csrc_count(&self) -> u8 {
        self.b0() & 0x0f
    }
    pub fn marker(&self) -> bool {
        self.b1() & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.b1() & 0x7f
    }
    pub fn sequence_number(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }
    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let buf = self.buf;
        (0..usize::from(self.csrc_count())).map(move |i| be32(buf, HEADER_LEN + 4 * i))
    }
    /// Header extension `(profile, data)`, if present.
    pub fn extension_data(&self) -> Option<(u16, &'a [u8])> {
        if !self.extension() {
            return None;
        }
        let at = HEADER_LEN + 4 * usize::from(self.csrc_count());
        Some((
            be16(self.buf, at),
            self.buf.get(at + 4..self.payload_start)?,
        ))
    }
    /// Payload after CSRCs and extension, without padding.
    pub fn payload(&self) -> &'a [u8] {
        self.buf
            .get(self.payload_start..self.payload_end)
            .unwrap_or(&[])
    }
    /// Number of padding octets (0 when the P bit is clear).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }
}

/// RFC 5761 §4: with RTCP multiplexed on the RTP port, a second byte of 192..=223
/// (marker bit + PT 64..=95) is RTCP. Those PTs are reserved in RTP so that the RTCP
/// packet types 192..=223 never collide with RTP payload types. SR/RR/SDES/BYE/APP/
/// RTPFB/PSFB/XR are 200..=207, i.e. PT 72..=79 with the marker set.
pub fn is_rtcp_pt(b1: u8) -> bool {
    (192..=223).contains(&b1)
}

/// RFC 4733 §2.3 named-event payload: event, E bit, volume, duration.
#[derive(Debug, Clone, Copy)]
pub struct TelephoneEvent<'a> {
    buf: &'a [u8],
}

impl<'a> TelephoneEvent<'a> {
    pub const LEN: usize = 4;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        Ok(TelephoneEvent { buf })
    }
    pub fn event(&self) -> u8 {
        self.buf.first().copied().unwrap_or(0)
    }
    /// E bit: this is (a retransmission of) the final packet of the event.
    pub fn end(&self) -> bool {
        self.buf.get(1).copied().unwrap_or(0) & 0x80 != 0
    }
    /// Power level in -dBm0 (0..=63).
    pub fn volume(&self) -> u8 {
        self.buf.get(1).copied().unwrap_or(0) & 0x3f
    }
    /// Duration so far in timestamp units (§2.5.1.3).
    pub fn duration(&self) -> u16 {
        be16(self.buf, 2)
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
}
