//! SIP over a TCP byte stream (RFC 3261 §18.3) and over WebSocket (RFC 7118): where each
//! message ends, and what a cut message carries. The tracker and the report's message log
//! read TCP the same way through these two functions.

use crate::sip::{self, SipFrame};
use crate::track::counters::SipCounts;
use crate::wire::{FrameHint, Framer, Framing, Resuming, websocket};
use core::cell::Cell;

/// Where the next message of a SIP-carrying TCP stream ends: plain SIP framed by
/// Content-Length, a WebSocket frame (first byte has FIN set, which ASCII never has), or the
/// HTTP Upgrade head before the frames, which is skipped. From scratch: `TcpStreams` runs
/// [`framer`], which answers the same without rescanning.
pub fn frame(buf: &[u8]) -> Framing {
    frame_counting(buf, &Cell::new(0))
}

/// [`frame`], counting in `oversize` the SIP messages skipped for being larger than
/// `sip::MAX_MESSAGE` (a cell: the framer runs beside the delivery closure).
pub fn frame_counting(buf: &[u8], oversize: &Cell<u64>) -> Framing {
    frame_resuming(buf, &mut FrameHint::default(), oversize)
}

/// The framer for `TcpStreams`: [`frame_counting`] resumed where the last call on the same
/// head stopped (the hint in the stream's slot), so each byte is examined O(1) times however
/// the stream was cut.
pub fn framer(oversize: &Cell<u64>) -> impl Framer + '_ {
    Resuming(move |buf: &[u8], hint: &mut FrameHint| frame_resuming(buf, hint, oversize))
}

/// `FrameHint::phase` while looking for the end of an HTTP head (SIP's own stages are below).
const HTTP_HEAD: u8 = 0x80;

/// [`frame_counting`] going on from `hint` (this head's state from the previous call).
pub fn frame_resuming(buf: &[u8], hint: &mut FrameHint, oversize: &Cell<u64>) -> Framing {
    if is_websocket_frame(buf) {
        return match websocket::Frame::new_checked(buf) {
            Ok(f) => Framing::Complete(f.total_len()),
            Err(websocket::Error::Truncated) => Framing::NeedMore,
            Err(websocket::Error::Malformed) => Framing::Skip(1),
        };
    }
    if buf.starts_with(b"GET ") || buf.starts_with(b"HTTP/") {
        // No "\r\n\r\n" ended before `at[0]`: look again from 3 bytes before it.
        let from = match hint.phase {
            HTTP_HEAD => (hint.at[0] as usize).min(buf.len()).saturating_sub(3),
            _ => 0,
        };
        let rest = buf.get(from..).unwrap_or_default();
        hint.examined = hint.examined.saturating_add(rest.len() as u32);
        return match websocket::http_head_len(rest) {
            Some(n) => Framing::Skip(from + n),
            None => {
                *hint = FrameHint {
                    phase: HTTP_HEAD,
                    at: [buf.len() as u32, 0, 0, 0],
                    examined: hint.examined,
                };
                Framing::NeedMore
            }
        };
    }
    // The SIP framer's state lives in the hint's words.
    let mut scan = sip::FrameScan {
        phase: hint.phase,
        at: hint.at,
        examined: hint.examined,
    };
    if hint.phase == HTTP_HEAD {
        scan = sip::FrameScan::default();
    }
    let framed = sip::frame_resume(buf, &mut scan);
    *hint = FrameHint {
        phase: scan.phase,
        at: scan.at,
        examined: scan.examined,
    };
    match framed {
        SipFrame::Complete(n) => Framing::Complete(n),
        SipFrame::Incomplete => Framing::NeedMore,
        SipFrame::Invalid(n) => Framing::Skip(n),
        SipFrame::Oversize(n) => {
            oversize.set(oversize.get() + 1);
            Framing::Skip(n)
        }
    }
}

/// Reads one message: strictly when TCP framed it, leniently when its transport bounds it
/// (UDP, WebSocket, SCTP), counting what was forgiven.
/// `sniffed`: the start line [`sip::sniff`] already read from `bytes` (a bounded message).
pub fn parse<'s, 'a>(
    bytes: &'a [u8],
    bounded: bool,
    sniffed: Option<sip::Sniffed<'a>>,
    slot: &'s mut sip::MessageSlot<'a>,
    c: &mut SipCounts,
) -> Option<&'s sip::Message<'a>> {
    if !bounded {
        return slot.parse(bytes).ok();
    }
    let parsed = match sniffed {
        Some(s) => slot.parse_sniffed(bytes, s),
        None => slot.parse_datagram(bytes),
    };
    let (m, d) = parsed.ok()?;
    c.bad_content_length += u64::from(d.bad_content_length);
    c.header_defects += u64::from(d.bad_header_lines > 0 || d.unterminated);
    Some(m)
}

/// What one message cut by [`frame`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// SIP text straight on TCP.
    Sip(&'a [u8]),
    /// A WebSocket data frame's payload, unmasked; `None` when it does not fit the scratch.
    WebSocket(Option<&'a [u8]>),
    /// A WebSocket control frame (ping, pong, close) or a frame that does not parse.
    Other,
}

/// Opens one message cut by [`frame`]; `scratch` holds a masked frame's payload.
pub fn open<'a>(msg: &'a [u8], scratch: &'a mut [u8]) -> Message<'a> {
    if !is_websocket_frame(msg) {
        return Message::Sip(msg);
    }
    let Ok(f) = websocket::Frame::new_checked(msg) else {
        return Message::Other;
    };
    if !matches!(
        f.opcode(),
        websocket::OPCODE_TEXT | websocket::OPCODE_BINARY
    ) {
        return Message::Other;
    }
    Message::WebSocket(f.payload(scratch))
}

/// SIP text starts with ASCII; a WebSocket frame's first byte has FIN set.
fn is_websocket_frame(buf: &[u8]) -> bool {
    buf.first().is_some_and(|b| b & 0x80 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn plain_sip_is_framed_by_content_length_and_opened_as_sip() {
        let mut buf = OPTIONS.to_vec();
        buf.extend_from_slice(b"INVITE");
        assert_eq!(frame(&buf), Framing::Complete(OPTIONS.len()));
        assert_eq!(frame(&OPTIONS[..20]), Framing::NeedMore);
        assert_eq!(open(OPTIONS, &mut [0; 64]), Message::Sip(OPTIONS));
    }

    #[test]
    fn the_websocket_upgrade_head_is_skipped() {
        let head = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(frame(head), Framing::Skip(head.len()));
        assert_eq!(frame(&head[..10]), Framing::NeedMore);
    }

    #[test]
    fn a_masked_websocket_text_frame_opens_to_its_sip_payload() {
        // FIN + text, masked, 4-byte payload "SIP/" under key 01 02 03 04.
        let key = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | 4];
        f.extend_from_slice(&key);
        f.extend(b"SIP/".iter().zip(key).map(|(b, k)| b ^ k));
        assert_eq!(frame(&f), Framing::Complete(f.len()));
        assert_eq!(frame(&f[..3]), Framing::NeedMore);
        let mut scratch = [0; 16];
        assert_eq!(open(&f, &mut scratch), Message::WebSocket(Some(b"SIP/")));
    }

    #[test]
    fn a_websocket_ping_opens_to_nothing() {
        assert_eq!(open(&[0x89, 0x00], &mut [0; 4]), Message::Other);
    }

    /// A stream of SIP over TCP with everything the framer resumes across: long headers, a
    /// folded Content-Length, a body, keep-alives, garbage, a WebSocket upgrade head.
    fn mixed_stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(b"INVITE sip:bob@b SIP/2.0\r\nCall-ID: m1\r\n");
        for i in 0..150 {
            s.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "p".repeat(90)).as_bytes());
        }
        s.extend_from_slice(b"Content-Length:\r\n 4\r\n\r\nv=0\n\r\n\r\n");
        s.extend_from_slice(b"junk line\r\n");
        s.extend_from_slice(OPTIONS);
        s.extend_from_slice(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        s.extend_from_slice(&[0x81, 3, b'S', b'I', b'P']);
        s.extend_from_slice(OPTIONS);
        s
    }

    /// Runs `stream` through a `TcpStreams` in `step`-byte segments with the resuming framer:
    /// the messages and skipped bytes, and the bytes the framer examined in all.
    fn reassemble(stream: &[u8], step: usize, resume: bool) -> (Vec<Vec<u8>>, u64, u64) {
        use crate::wire::{FlowKey, TcpFlags, TcpStreams};
        use embassy_time::{Duration, Instant};
        let mut t = TcpStreams::new(2, 64 * 1024, Duration::from_secs(60));
        let key = FlowKey {
            src: "10.0.0.1:40000".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
        };
        let ack = TcpFlags {
            syn: false,
            fin: false,
            rst: false,
        };
        let (mut out, mut examined, oversize) = (Vec::new(), 0u64, Cell::new(0));
        for (i, part) in stream.chunks(step).enumerate() {
            let seq = (i * step) as u32;
            let counted = Resuming(|b: &[u8], h: &mut FrameHint| {
                let before = h.examined;
                let f = frame_resuming(b, h, &oversize);
                examined += u64::from(h.examined.saturating_sub(before));
                f
            });
            let now = Instant::from_secs(1);
            if resume {
                t.segment(now, key, seq, ack, part, counted, |m| out.push(m.to_vec()));
            } else {
                t.segment(now, key, seq, ack, part, frame, |m| out.push(m.to_vec()));
            }
        }
        (out, t.counters().garbage_bytes, examined)
    }

    #[test]
    fn resumed_tcp_framing_delivers_what_framing_from_scratch_does() {
        let s = mixed_stream();
        let (whole, garbage, _) = reassemble(&s, s.len(), false);
        assert_eq!(whole.len(), 4, "INVITE, OPTIONS, WebSocket frame, OPTIONS");
        for step in [1, 2, 5, 100, s.len()] {
            assert_eq!(reassemble(&s, step, true).0, whole, "step {step}");
            assert_eq!(reassemble(&s, step, true).1, garbage, "step {step}");
        }
    }

    #[test]
    fn one_byte_segments_are_framed_in_linear_work() {
        // Every byte through the tracker's framer a few times, not once per later segment
        // (~n²/2, 10⁸ bytes here, when it rescanned the head from byte 0).
        let s = mixed_stream();
        let (out, _, examined) = reassemble(&s, 1, true);
        assert_eq!(out.len(), 4);
        assert!(examined < 4 * s.len() as u64, "{examined} for {}", s.len());
    }

    #[test]
    fn a_message_over_the_limit_is_skipped_and_counted() {
        let big = crate::sip::MAX_MESSAGE + 10;
        let mut m =
            format!("INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: {big}\r\n\r\n")
                .into_bytes();
        let start_line = m.iter().position(|&b| b == b'\n').unwrap() + 1;
        let n = Cell::new(0);
        assert_eq!(frame_counting(&m, &n), Framing::Skip(start_line));
        m.resize(m.len() + big, b'x');
        assert_eq!(frame_counting(&m, &n), Framing::Skip(m.len()));
        assert_eq!(n.get(), 2);
    }
}
