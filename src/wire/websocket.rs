//! WebSocket frames (RFC 6455), the transport of SIP over WebSocket (RFC 7118) that WebRTC
//! softphones use. Frames ride in a TCP stream after an HTTP/1.1 Upgrade; client frames are
//! masked, so their payload is unmasked into a caller's fixed buffer (the only copy).
//! Fragmented messages (FIN clear) are not reassembled: SIP endpoints send whole messages.

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

/// A view over one whole frame at the start of `buf`.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    buf: &'a [u8],
    header_len: usize,
    payload_len: usize,
}

impl<'a> Frame<'a> {
    /// Checks the header and that the whole frame is present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Frame<'a>, Error> {
        let (&b0, &b1) = match (buf.first(), buf.get(1)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(Error::Truncated),
        };
        if b0 & 0x70 != 0 {
            return Err(Error::Malformed); // RSV bits: no extension is negotiated for SIP
        }
        let (len, mut header_len): (u64, usize) = match b1 & 0x7f {
            126 => {
                let mut a = [0u8; 2];
                a.copy_from_slice(buf.get(2..4).ok_or(Error::Truncated)?);
                (u64::from(u16::from_be_bytes(a)), 4)
            }
            127 => {
                let b = buf.get(2..10).ok_or(Error::Truncated)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 10)
            }
            n => (u64::from(n), 2),
        };
        if b1 & 0x80 != 0 {
            header_len += 4;
        }
        let payload_len = usize::try_from(len).map_err(|_| Error::Malformed)?;
        let total = header_len
            .checked_add(payload_len)
            .ok_or(Error::Malformed)?;
        if buf.len() < total {
            return Err(Error::Truncated);
        }
        Ok(Frame {
            buf: buf.get(..total).ok_or(Error::Truncated)?,
            header_len,
            payload_len,
        })
    }

    /// Bytes `len` of the header and payload: what to consume from the stream.
    pub fn total_len(&self) -> usize {
        self.header_len + self.payload_len
    }
    pub fn fin(&self) -> bool {
        self.buf.first().is_some_and(|b| b & 0x80 != 0)
    }
    pub fn opcode(&self) -> u8 {
        self.buf.first().map_or(0, |b| b & 0x0f)
    }
    pub fn masked(&self) -> bool {
        self.buf.get(1).is_some_and(|b| b & 0x80 != 0)
    }
    fn mask_key(&self) -> Option<[u8; 4]> {
        if !self.masked() {
            return None;
        }
        let mut k = [0u8; 4];
        k.copy_from_slice(
            self.buf
                .get(self.header_len.checked_sub(4)?..self.header_len)?,
        );
        Some(k)
    }
    /// The payload as sent (still masked for client frames).
    pub fn raw_payload(&self) -> &'a [u8] {
        self.buf.get(self.header_len..).unwrap_or_default()
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
        for (i, (o, r)) in out.iter_mut().zip(raw).enumerate() {
            *o = r ^ key[i % 4];
        }
        Some(out)
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
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
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
}
