//! RTP and RTCP over connection-oriented transport (RFC 4571 §2): each packet is preceded
//! by a 16-bit length, nothing else. SDP announces such media as `TCP/RTP/AVP`
//! (RFC 4145 / RFC 4571 §3); mirrors also show it unannounced (some SBCs, RTSP-free
//! cameras), which [`looks_like_framed_rtp`] recognises.

use super::{DecodeError, Framing};
use crate::view::read;
use byteorder::{ByteOrder, NetworkEndian};

/// Smallest framed packet worth looking at: an RTCP header is 8 bytes, RTP's 12.
const MIN_PACKET: usize = 8;

mod field {
    use core::ops::Range;
    pub const LENGTH: Range<usize> = 0..2;
    pub const PACKET: usize = 2;
}

/// One framed packet.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(Frame, DecodeError);

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let b = self.buffer.as_ref();
        if b.len() < field::PACKET || b.len() < field::PACKET + usize::from(self.length()) {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }
    pub fn length(&self) -> u16 {
        read::be16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Length prefix plus packet.
    pub fn total_len(&self) -> usize {
        field::PACKET + usize::from(self.length())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    pub fn packet(&self) -> &'a [u8] {
        read::slice(self.buffer.as_ref(), field::PACKET..self.total_len())
    }
}

/// Writes the length prefix of a packet of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRepr {
    pub len: u16,
}

impl FrameRepr {
    pub const fn buffer_len(&self) -> usize {
        field::PACKET + self.len as usize
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, f: &mut Frame<T>) {
        NetworkEndian::write_u16(&mut f.buffer.as_mut()[field::LENGTH], self.len);
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn packet_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[field::PACKET..end]
    }
}

/// RTP or RTCP version 2 in the first byte.
fn version_2(packet: &[u8]) -> bool {
    packet.len() >= MIN_PACKET && read::u8_at(packet, 0) >> 6 == 2
}

/// Framer for `TcpStreams`: one RFC 4571 packet at a time. A length too short for RTP or
/// a packet not version 2 is not a frame boundary: skip a byte and look again (a stream
/// picked up mid-connection finds its boundaries this way).
pub fn frame(b: &[u8]) -> Framing {
    if b.len() < field::PACKET + 1 {
        return Framing::NeedMore;
    }
    let len = usize::from(read::be16(b, field::LENGTH));
    if len < MIN_PACKET || read::u8_at(b, field::PACKET) >> 6 != 2 {
        return Framing::Skip(1);
    }
    if b.len() < field::PACKET + len {
        return Framing::NeedMore;
    }
    Framing::Complete(field::PACKET + len)
}

/// Whether a TCP segment that opens no known stream is RFC 4571 media: it must be whole
/// framed packets back to back, each RTP/RTCP version 2, ending exactly at the segment's
/// end. Text (SIP, HTTP), TLS records and other binary protocols fail on the first prefix
/// or on the tiling.
pub fn looks_like_framed_rtp(segment: &[u8]) -> bool {
    let mut rest = segment;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Ok(f) = Frame::new_checked(rest) else {
            return false;
        };
        if !version_2(f.packet()) {
            return false;
        }
        rest = rest.get(f.total_len()..).unwrap_or(&[]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4571 frame of an RTP packet (PCMA, seq 0x1234, SSRC 0xdeadbeef, 4 bytes).
    const FRAMED: [u8; 18] = [
        0x00, 0x10, 0x80, 0x08, 0x12, 0x34, 0x00, 0x00, 0x03, 0x20, 0xde, 0xad, 0xbe, 0xef, 0xd5,
        0xd5, 0xd5, 0xd5,
    ];

    #[test]
    fn frame_view_reads_length_and_packet_and_repr_writes_it() {
        let f = Frame::new_checked(&FRAMED[..]).unwrap();
        assert_eq!((f.length(), f.total_len()), (16, 18));
        assert_eq!(f.packet(), &FRAMED[2..]);
        let mut out = [0u8; 18];
        let r = FrameRepr { len: 16 };
        let mut w = Frame::new_unchecked(&mut out[..]);
        r.emit(&mut w);
        w.packet_mut().copy_from_slice(&FRAMED[2..]);
        assert_eq!((out, r.buffer_len()), (FRAMED, 18));
        assert_eq!(
            Frame::new_checked(&FRAMED[..17]).unwrap_err(),
            DecodeError::Truncated
        );
    }

    #[test]
    fn framer_delivers_frames_and_skips_to_a_boundary() {
        let mut s = FRAMED.to_vec();
        s.extend_from_slice(&FRAMED);
        assert_eq!(frame(&s), Framing::Complete(18));
        assert_eq!(frame(&s[..10]), Framing::NeedMore);
        // Picked up mid-packet: bytes that are no boundary are skipped.
        assert_eq!(frame(&s[5..]), Framing::Skip(1));
        assert_eq!(frame(b"INVITE sip:a SIP/2.0\r\n"), Framing::Skip(1));
    }

    #[test]
    fn heuristic_wants_whole_version_2_frames_tiling_the_segment() {
        let mut two = FRAMED.to_vec();
        two.extend_from_slice(&FRAMED);
        assert!(looks_like_framed_rtp(&FRAMED));
        assert!(looks_like_framed_rtp(&two));
        assert!(!looks_like_framed_rtp(&two[..30]));
        assert!(!looks_like_framed_rtp(&[]));
        assert!(!looks_like_framed_rtp(b"SIP/2.0 200 OK\r\n"));
        // A TLS application-data record header (0x17 0x03 0x03, length).
        assert!(!looks_like_framed_rtp(&[
            0x17, 0x03, 0x03, 0x00, 0x02, 1, 2
        ]));
        let mut v1 = FRAMED;
        v1[2] = 0x40;
        assert!(!looks_like_framed_rtp(&v1));
    }
}
