//! SIP (RFC 3261) and SDP (RFC 4566) parsing for a passive sensor.
//!
//! Everything here is a zero-copy view over captured bytes: no heap
//! allocation, no panics on hostile input. The tracker above uses
//! [`looks_like_sip`] to sniff any UDP/TCP payload, [`frame_len`] to cut a TCP
//! byte stream into messages, [`Message::parse`] to read one message and
//! [`sdp::parse`] for the offer/answer bodies.

#[cfg(test)]
mod capture_tests;
mod message;
pub mod sdp;
mod text;

pub use message::{Defects, MAX_HEADERS, Message, NameAddr, SipError, StartLine, parse_uri};

use message::{parse_start_line, scan_headers};

/// SIP request methods the tracker cares about; anything else is `Other`
/// (the raw token stays available in [`StartLine::Request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Prack,
    Update,
    Info,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other,
}

impl Method {
    /// Methods are case-sensitive (RFC 3261 §7.1), so `invite` is `Other`.
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"INFO" => Method::Info,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            _ => Method::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other => "OTHER",
        }
    }
}

/// Longest start line we wait for on TCP before declaring the stream garbage.
const MAX_START_LINE: usize = 1024;
/// Largest message [`frame_len`] will ever ask the caller to buffer; a
/// Content-Length pushing past it is treated as garbage so a corrupt stream
/// cannot make the sensor wait forever.
pub const MAX_MESSAGE: usize = 65_536;

/// Cheap content sniff, independent of port: the first line (after optional
/// keep-alive CRLFs) is `METHOD uri SIP/2.0` or `SIP/2.0 NNN reason`.
pub fn looks_like_sip(payload: &[u8]) -> bool {
    let lead = leading_crlf(payload);
    let rest = payload.get(lead..).unwrap_or_default();
    // Fast reject for the common case (RTP starts 0x80): a start line begins with a method
    // token or "SIP/2.0", both upper case. Saves scanning every media packet for a newline.
    if !rest.first().is_some_and(u8::is_ascii_uppercase) {
        return false;
    }
    let Some(nl) = text::find(rest, b'\n') else {
        return false;
    };
    rest.get(..nl)
        .is_some_and(|line| parse_start_line(line).is_ok())
}

/// Result of [`frame_len`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipFrame {
    /// The first `n` bytes are one whole message (headers and body).
    Complete(usize),
    /// A message has started but more bytes are needed.
    Incomplete,
    /// Skip `n` bytes (keep-alives or garbage) and call again.
    Invalid(usize),
    /// The message at the head is larger than [`MAX_MESSAGE`]: skip `n` bytes (all of it
    /// when it is all buffered, else its start line: the rest resynchronises at the next
    /// start line) and count it.
    Oversize(usize),
}

/// Frames SIP over a stream transport (RFC 3261 §18.3): headers up to the
/// blank line, then exactly Content-Length body bytes. A missing
/// Content-Length is taken as 0 (it is mandatory on TCP).
pub fn frame_len(buf: &[u8]) -> SipFrame {
    let lead = leading_crlf(buf);
    if lead > 0 {
        // Keep-alive "\r\n\r\n" pings (RFC 5626) or stray blank lines.
        return SipFrame::Invalid(lead);
    }
    if buf.is_empty() {
        return SipFrame::Incomplete;
    }
    let Some(nl) = text::find(buf, b'\n') else {
        return if buf.len() <= MAX_START_LINE && plausible_start_prefix(buf) {
            SipFrame::Incomplete
        } else {
            SipFrame::Invalid(resync(buf))
        };
    };
    let first = buf.get(..nl).unwrap_or_default();
    if parse_start_line(first).is_err() {
        return SipFrame::Invalid(resync(buf));
    }
    let after_start = nl + 1;
    let mut content_length: Option<Option<usize>> = None;
    let scanned = scan_headers(buf, after_start, |name, value| {
        if content_length.is_none() && message::is_content_length(name) {
            content_length = Some(text::parse_u32(value).map(|v| v as usize));
        }
    });
    match scanned {
        Ok(body_start) => {
            let cl = match content_length {
                None => 0,
                Some(Some(cl)) => cl,
                // Unreadable length: we cannot find the message end, so drop
                // the start line and let resync find the next message.
                Some(None) => return SipFrame::Invalid(after_start),
            };
            let total = body_start.saturating_add(cl);
            if total > MAX_MESSAGE {
                SipFrame::Oversize(if total <= buf.len() {
                    total
                } else {
                    after_start
                })
            } else if total <= buf.len() {
                SipFrame::Complete(total)
            } else {
                SipFrame::Incomplete
            }
        }
        Err(SipError::Truncated) if buf.len() < MAX_MESSAGE => SipFrame::Incomplete,
        // A header section alone past the limit.
        Err(SipError::Truncated) => SipFrame::Oversize(after_start),
        Err(_) => SipFrame::Invalid(after_start),
    }
}

/// TLS record header sniff (RFC 8446 §5.1): content type 20..=23
/// (change_cipher_spec, alert, handshake, application_data), legacy version
/// 3.x, length within the 2^14 + 2048 ciphertext limit.
pub fn looks_like_tls(payload: &[u8]) -> bool {
    match payload {
        [ct, 3, minor, hi, lo, ..] => {
            (0x14..=0x17).contains(ct)
                && *minor <= 4
                && u16::from_be_bytes([*hi, *lo]) <= (1 << 14) + 2048
        }
        _ => false,
    }
}

fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Could this unterminated first line still become a SIP start line?
fn plausible_start_prefix(s: &[u8]) -> bool {
    let s = s.strip_suffix(b"\r").unwrap_or(s);
    match s.first() {
        Some(&b) if text::is_token(b) => s.iter().all(|&b| (0x20..0x7f).contains(&b)),
        _ => false,
    }
}

/// Where to restart after garbage at the front of `buf`: the next line that
/// is (or may become) a start line, else past the last complete line. Always
/// returns at least 1 so the caller makes progress.
fn resync(buf: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(nl) = buf.get(pos..).and_then(|s| text::find(s, b'\n')) {
        pos += nl + 1;
        let rest = buf.get(pos..).unwrap_or_default();
        match text::find(rest, b'\n') {
            Some(end) => {
                if rest.get(..end).is_some_and(|l| parse_start_line(l).is_ok()) {
                    return pos;
                }
            }
            None => {
                // Keep a plausible unterminated tail; drop an implausible one.
                return if plausible_start_prefix(rest) && rest.len() <= MAX_START_LINE {
                    pos.max(1)
                } else {
                    buf.len().max(1)
                };
            }
        }
    }
    buf.len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:alice@10.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bK776\r\n\
Call-ID: ka1@10.0.0.2\r\n\
CSeq: 7 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

    const INFO: &[u8] = b"INFO sip:bob@10.0.0.3 SIP/2.0\r\n\
Call-ID: x@y\r\n\
CSeq: 8 INFO\r\n\
Content-Type: application/dtmf-relay\r\n\
Content-Length: 24\r\n\r\n\
Signal=5\r\nDuration=160\r\n";

    #[test]
    fn method_round_trips_and_is_case_sensitive() {
        for m in [
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Register,
            Method::Options,
            Method::Prack,
            Method::Update,
            Method::Info,
            Method::Subscribe,
            Method::Notify,
            Method::Refer,
            Method::Message,
            Method::Publish,
        ] {
            assert_eq!(Method::from_bytes(m.as_str().as_bytes()), m);
        }
        assert_eq!(Method::from_bytes(b"invite"), Method::Other);
        assert_eq!(Method::from_bytes(b"FOO"), Method::Other);
    }

    #[test]
    fn sniff_accepts_requests_and_responses() {
        assert!(looks_like_sip(OPTIONS));
        assert!(looks_like_sip(b"SIP/2.0 180 Ringing\r\nVia: x\r\n\r\n"));
        assert!(looks_like_sip(b"\r\nBYE sips:bob@b.example SIP/2.0\r\n"));
        assert!(looks_like_sip(b"INVITE tel:+15551234 SIP/2.0\n"));
    }

    #[test]
    fn sniff_rejects_other_protocols() {
        assert!(!looks_like_sip(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!looks_like_sip(b"HTTP/1.1 200 OK\r\n"));
        assert!(!looks_like_sip(&[0x80, 0x08, 0x12, 0x34, 0, 0, 0, 0xa0]));
        assert!(!looks_like_sip(b"SIP/2.0 99 Low\r\n"));
        assert!(!looks_like_sip(b""));
        assert!(!looks_like_sip(b"INVITE sip:a@b SIP/2.0"));
    }

    #[test]
    fn frame_splits_back_to_back_messages() {
        let mut stream = [0u8; 512];
        let n1 = OPTIONS.len();
        let n2 = INFO.len();
        stream[..n1].copy_from_slice(OPTIONS);
        stream[n1..n1 + n2].copy_from_slice(INFO);
        let s = &stream[..n1 + n2];
        assert_eq!(frame_len(s), SipFrame::Complete(n1));
        assert_eq!(frame_len(&s[n1..]), SipFrame::Complete(n2));
    }

    #[test]
    fn frame_waits_for_headers_and_body() {
        for cut in 1..INFO.len() {
            assert_eq!(frame_len(&INFO[..cut]), SipFrame::Incomplete, "cut {cut}");
        }
        assert_eq!(frame_len(INFO), SipFrame::Complete(INFO.len()));
    }

    #[test]
    fn frame_skips_keepalives() {
        assert_eq!(frame_len(b"\r\n\r\nOPTIONS"), SipFrame::Invalid(4));
        assert_eq!(frame_len(b"\r\n"), SipFrame::Invalid(2));
        assert_eq!(frame_len(b""), SipFrame::Incomplete);
    }

    #[test]
    fn frame_resyncs_on_garbage_before_a_message() {
        let mut stream = [0u8; 256];
        let junk = b"tail of a lost body\r\nmore junk\r\n";
        stream[..junk.len()].copy_from_slice(junk);
        stream[junk.len()..junk.len() + OPTIONS.len()].copy_from_slice(OPTIONS);
        let s = &stream[..junk.len() + OPTIONS.len()];
        assert_eq!(frame_len(s), SipFrame::Invalid(junk.len()));
        assert_eq!(
            frame_len(&s[junk.len()..]),
            SipFrame::Complete(OPTIONS.len())
        );
        // Binary garbage without any newline is dropped whole.
        assert_eq!(frame_len(&[0x16, 3, 1, 0, 5]), SipFrame::Invalid(5));
    }

    #[test]
    fn frame_rejects_unreadable_or_huge_content_length() {
        let bad = b"BYE sip:a@b SIP/2.0\r\nContent-Length: many\r\n\r\n";
        assert_eq!(frame_len(bad), SipFrame::Invalid(21));
        // Readable but past the limit: an oversize message, counted, its start line skipped.
        let huge = b"BYE sip:a@b SIP/2.0\r\nl: 9999999\r\n\r\n";
        assert_eq!(frame_len(huge), SipFrame::Oversize(21));
    }

    #[test]
    fn frame_without_content_length_has_empty_body() {
        let m = b"ACK sip:a@b SIP/2.0\r\nCall-ID: q\r\n\r\nINVITE";
        assert_eq!(frame_len(m), SipFrame::Complete(m.len() - 6));
    }

    #[test]
    fn tls_sniff() {
        // ClientHello record header, TLS 1.0 legacy version.
        assert!(looks_like_tls(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        // Application data, TLS 1.2.
        assert!(looks_like_tls(&[0x17, 0x03, 0x03, 0x00, 0x40]));
        assert!(!looks_like_tls(b"INVITE sip:a@b SIP/2.0"));
        assert!(!looks_like_tls(&[0x17, 0x03, 0x03, 0xff]));
        assert!(!looks_like_tls(&[0x18, 0x03, 0x03, 0x00, 0x40]));
        assert!(!looks_like_tls(&[0x17, 0x03, 0x03, 0xff, 0xff]));
    }
}
