//! WebSocket frames (RFC 6455), the transport of SIP over WebSocket (RFC 7118) that WebRTC
//! softphones use. Frames ride in a TCP stream after an HTTP/1.1 Upgrade; client frames are
//! masked, so their payload is unmasked into a caller's fixed buffer (the only copy).
//! Fragmented messages (FIN clear) are not reassembled: SIP endpoints send whole messages.

use crate::view::read;
use byteorder::{ByteOrder, NetworkEndian};

/// Opcodes that carry data.
pub const OPCODE_TEXT: u8 = 1;
pub const OPCODE_BINARY: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header (or the frame) needs.
    Truncated,
    /// Reserved bits set, or a length that cannot be right.
    Malformed,
}

mod field {
    use core::ops::Range;
    /// FIN, RSV1-3, opcode (4).
    pub const FIN_OPCODE: usize = 0;
    /// MASK, payload length (7): 126 and 127 announce a 16- or 64-bit length after it.
    pub const MASK_LEN: usize = 1;
    pub const LEN16: Range<usize> = 2..4;
    pub const LEN64: Range<usize> = 2..10;
    pub const MASK_KEY_LEN: usize = 4;
}

const FLAG_FIN: u8 = 0x80;
const RSV_BITS: u8 = 0x70;
const FLAG_MASK: u8 = 0x80;

/// A view over one whole frame at the start of the buffer (bytes after it are the next
/// frames of the stream).
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(Frame, Error);

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks the header and that the whole frame is present.
    pub fn check_len(&self) -> Result<(), Error> {
        let buf = self.buffer.as_ref();
        let (&b0, &b1) = match (buf.first(), buf.get(field::MASK_LEN)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(Error::Truncated),
        };
        if b0 & RSV_BITS != 0 {
            return Err(Error::Malformed); // RSV bits: no extension is negotiated for SIP
        }
        let ext = match b1 & 0x7f {
            126 => field::LEN16.end,
            127 => field::LEN64.end,
            _ => field::MASK_LEN + 1,
        };
        if buf.len() < ext {
            return Err(Error::Truncated);
        }
        let payload_len =
            usize::try_from(self.payload_len_field()).map_err(|_| Error::Malformed)?;
        let total = self
            .header_len()
            .checked_add(payload_len)
            .ok_or(Error::Malformed)?;
        if buf.len() < total {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn payload_len_field(&self) -> u64 {
        let buf = self.buffer.as_ref();
        match read::u8_at(buf, field::MASK_LEN) & 0x7f {
            126 => u64::from(read::be16(buf, field::LEN16)),
            127 => read::be64(buf, field::LEN64),
            n => u64::from(n),
        }
    }

    /// Header bytes: the two fixed ones, any extended length, the masking key.
    pub fn header_len(&self) -> usize {
        let len = match read::u8_at(self.buffer.as_ref(), field::MASK_LEN) & 0x7f {
            126 => field::LEN16.end,
            127 => field::LEN64.end,
            _ => field::MASK_LEN + 1,
        };
        len + if self.masked() {
            field::MASK_KEY_LEN
        } else {
            0
        }
    }
    /// Payload bytes (checked by `new_checked` to fit in memory and in the buffer).
    pub fn payload_len(&self) -> usize {
        usize::try_from(self.payload_len_field()).unwrap_or(usize::MAX)
    }
    /// Bytes `len` of the header and payload: what to consume from the stream.
    pub fn total_len(&self) -> usize {
        self.header_len() + self.payload_len()
    }
    pub fn fin(&self) -> bool {
        read::u8_at(self.buffer.as_ref(), field::FIN_OPCODE) & FLAG_FIN != 0
    }
    pub fn opcode(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), field::FIN_OPCODE) & 0x0f
    }
    pub fn masked(&self) -> bool {
        read::u8_at(self.buffer.as_ref(), field::MASK_LEN) & FLAG_MASK != 0
    }
    fn mask_key(&self) -> Option<[u8; 4]> {
        if !self.masked() {
            return None;
        }
        let end = self.header_len();
        let mut k = [0u8; 4];
        k.copy_from_slice(read::slice(
            self.buffer.as_ref(),
            end - field::MASK_KEY_LEN..end,
        ));
        Some(k)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The payload as sent (still masked for client frames).
    pub fn raw_payload(&self) -> &'a [u8] {
        read::slice(self.buffer.as_ref(), self.header_len()..self.total_len())
    }

    /// The payload in clear: borrowed when unmasked, else unmasked into `scratch`.
    /// `None` when `scratch` is too small.
    pub fn payload<'b>(&self, scratch: &'b mut [u8]) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        let raw = self.raw_payload();
        let Some(key) = self.mask_key() else {
            return Some(raw);
        };
        let out = scratch.get_mut(..raw.len())?;
        for ((o, r), k) in out.iter_mut().zip(raw).zip(key.iter().cycle()) {
            *o = r ^ k;
        }
        Some(out)
    }
}

/// A frame header as written: the shortest length encoding, as RFC 6455 §5.2 requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRepr {
    pub fin: bool,
    pub opcode: u8,
    /// Client frames are masked with this key.
    pub mask_key: Option<[u8; 4]>,
    pub payload_len: usize,
}

impl FrameRepr {
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Self {
        FrameRepr {
            fin: f.fin(),
            opcode: f.opcode(),
            mask_key: f.mask_key(),
            payload_len: f.payload_len(),
        }
    }
    /// Header bytes `emit` writes (the payload follows them).
    pub fn header_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => field::MASK_LEN + 1,
            126..=0xffff => field::LEN16.end,
            _ => field::LEN64.end,
        };
        len + self.mask_key.map_or(0, |_| field::MASK_KEY_LEN)
    }
    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    /// Writes the header into the first `header_len()` bytes of the frame's buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        let buf = frame.buffer.as_mut();
        buf[field::FIN_OPCODE] = if self.fin { FLAG_FIN } else { 0 } | (self.opcode & 0x0f);
        let mask = if self.mask_key.is_some() {
            FLAG_MASK
        } else {
            0
        };
        let mut at = field::MASK_LEN + 1;
        match self.payload_len {
            n @ 0..=125 => buf[field::MASK_LEN] = mask | n as u8,
            n @ 126..=0xffff => {
                buf[field::MASK_LEN] = mask | 126;
                NetworkEndian::write_u16(&mut buf[field::LEN16], n as u16);
                at = field::LEN16.end;
            }
            n => {
                buf[field::MASK_LEN] = mask | 127;
                NetworkEndian::write_u64(&mut buf[field::LEN64], n as u64);
                at = field::LEN64.end;
            }
        }
        if let Some(k) = self.mask_key {
            buf[at..at + field::MASK_KEY_LEN].copy_from_slice(&k);
        }
    }
}

/// Whether a TCP payload opens a WebSocket connection (the HTTP Upgrade request or its
/// 101 answer): the only non-SIP start a SIP stream may have.
pub fn is_upgrade(payload: &[u8]) -> bool {
    (payload.starts_with(b"GET ") || payload.starts_with(b"HTTP/1.1 101"))
        && payload
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"websocket"))
}

/// Length of an HTTP head (through the blank line) at the start of `buf`, if complete.
pub fn http_head_len(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A client text frame carrying "OPTIONS", masked with key 37 fa 21 3d (RFC 6455 §5.7
    // style), and the server's unmasked answer.
    fn masked_options() -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![0x81, 0x80 | 7];
        f.extend_from_slice(&key);
        f.extend(b"OPTIONS".iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[test]
    fn masked_client_frame_is_unmasked_into_the_scratch_buffer() {
        let f = masked_options();
        let frame = Frame::new_checked(&f).unwrap();
        assert!(frame.fin() && frame.masked());
        assert_eq!(frame.opcode(), OPCODE_TEXT);
        assert_eq!(frame.total_len(), 13);
        let mut scratch = [0u8; 16];
        assert_eq!(frame.payload(&mut scratch).unwrap(), b"OPTIONS");
        let mut tiny = [0u8; 3];
        assert!(frame.payload(&mut tiny).is_none());
    }

    #[test]
    fn unmasked_frame_with_16_bit_length_borrows_its_payload() {
        let mut f = vec![0x81, 126, 0x01, 0x00];
        f.extend(std::iter::repeat_n(b'a', 256));
        let frame = Frame::new_checked(&f).unwrap();
        assert_eq!(frame.total_len(), 260);
        let mut scratch = [0u8; 0];
        assert_eq!(frame.payload(&mut scratch).unwrap().len(), 256);
    }

    #[test]
    fn truncated_and_reserved_bit_frames_are_rejected() {
        let f = masked_options();
        for n in 0..f.len() {
            assert_eq!(
                Frame::new_checked(&f[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
        }
        assert_eq!(
            Frame::new_checked(&[0xc1, 0x00]).unwrap_err(),
            Error::Malformed
        );
        let huge = [0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(Frame::new_checked(&huge).is_err());
    }

    #[test]
    fn upgrade_request_and_answer_are_recognised() {
        assert!(is_upgrade(
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
        ));
        assert!(is_upgrade(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\r\n"
        ));
        assert!(!is_upgrade(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(
            http_head_len(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"),
            Some(24)
        );
        assert_eq!(http_head_len(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    /// Frame 15 of sip_websocket.pcap: a client's masked text frame (16-bit length 453,
    /// key 63 8e 0c d1) carrying an ACK.
    const REAL_ACK: &str = "81fe01c5638e0cd122cd47f110e77ceb48bf3ee355bd3fe951b938e323ea69a74ee365ba06a078bf00fe22a506f678bf0cf922b20ce32c822ade23e34dbe01db35e76deb43dd45814cbc22e14cd95f8243bf66be0db660ba09be35a253a065bf15ef60b807b56ea302e06fb95ef435b924ba6e9a54b63be253bb35dc69c36da94ec863a314ef7eb510b42ce6538306850cb42ced10e77ceb48bf3ee355bd3fe951b938e323ea69a74ee365ba06a078bf00fe22a506f678bf0cf922b20ce332ea17ef6bec06ed6fb450ba3eb705b935e055b768b500bd3de351ef68e25ab63fb000b66ee74def3fb05083069711e161eb43b27fb813b43de355b939e857bf3ee55ad159b20ff634a251bf4fba5bbc478529fa679720bf60a501cb6eb22bc947bb3bc27ea219bc6eb529d85b963bce68b415a361b808eb22a50ded7cff17eb74a50de17bff00e161ef58fa6db65eb67cb00efb67a010e169dc69cd6dbd0fa3459559ae67be15e864be13fa7fb904e039e812b93de310fc01db20dd69a059ae3ee353b82c9020c501db30fb7ca10cfc78b407b42cbe16fa6ebe16e068dc69db7fb411a34db606e078eb43dd45814de47ffe53a03de04dbb01db20e162a506e078fc2feb62b617e636f1538306dc69";

    #[test]
    fn real_masked_ack_frame_parses_and_unmasks() {
        let f: Vec<u8> = (0..REAL_ACK.len() / 2)
            .map(|i| u8::from_str_radix(&REAL_ACK[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let frame = Frame::new_checked(&f[..]).unwrap();
        assert!(frame.fin() && frame.masked());
        assert_eq!(frame.opcode(), OPCODE_TEXT);
        assert_eq!((frame.header_len(), frame.payload_len()), (8, 453));
        assert_eq!(frame.total_len(), f.len());
        let mut scratch = [0u8; 512];
        let text = frame.payload(&mut scratch).unwrap();
        assert!(text.starts_with(b"ACK sip:+12263382742@dev-mike.tncp.textnow.com SIP/2.0\r\n"));
        assert_eq!(
            Frame::new_checked(&f[..f.len() - 1]).unwrap_err(),
            Error::Truncated
        );
        let repr = FrameRepr::parse(&frame);
        assert_eq!(repr.mask_key, Some([0x63, 0x8e, 0x0c, 0xd1]));
        let mut head = [0u8; 8];
        assert_eq!(repr.header_len(), 8);
        repr.emit(&mut Frame::new_unchecked(&mut head[..]));
        assert_eq!(head, f[..8]);
    }

    #[test]
    fn frame_repr_picks_the_shortest_length_encoding() {
        for (len, head) in [(125usize, 2usize), (126, 4), (65_535, 4), (65_536, 10)] {
            let r = FrameRepr {
                fin: true,
                opcode: OPCODE_BINARY,
                mask_key: None,
                payload_len: len,
            };
            let mut f = vec![0u8; r.header_len() + len];
            r.emit(&mut Frame::new_unchecked(&mut f[..]));
            let frame = Frame::new_checked(&f[..]).unwrap();
            assert_eq!((r.header_len(), FrameRepr::parse(&frame)), (head, r));
        }
    }
}
