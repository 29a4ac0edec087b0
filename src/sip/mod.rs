//! SIP (RFC 3261) and SDP (RFC 4566) parsing for a passive sensor.
//!
//! Everything here is a zero-copy view over captured bytes: no heap
//! allocation, no panics on hostile input. The tracker above uses
//! [`looks_like_sip`] to sniff any UDP/TCP payload, [`frame_len`] to cut a TCP
//! byte stream into messages, [`Message::parse`] to read one message and
//! [`sdp::parse`] for the offer/answer bodies.
// No panic on packet data by construction: every index, unwrap and expect is a checked
// one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

#[cfg(test)]
mod capture_tests;
mod message;
pub mod sdp;
mod text;

pub use message::{
    Defects, MAX_HEADERS, Message, MessageSlot, NameAddr, SipError, StartLine, parse_uri,
};

use message::parse_start_line;
#[cfg(test)]
use message::scan_headers;

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
    sniff(payload).is_some()
}

/// What [`sniff`] read of a datagram: its start line, kept so that
/// [`Message::parse_sniffed`] does not parse it again.
#[derive(Clone, Copy, Debug)]
pub struct Sniffed<'a> {
    start: StartLine<'a>,
    /// Offset just past the start line's LF.
    after: usize,
}

impl<'a> Sniffed<'a> {
    fn parts(self) -> (StartLine<'a>, usize) {
        (self.start, self.after)
    }
}

/// [`looks_like_sip`], keeping the start line it parsed.
pub fn sniff(payload: &[u8]) -> Option<Sniffed<'_>> {
    let lead = leading_crlf(payload);
    let rest = payload.get(lead..)?;
    // Fast reject for the common case (RTP starts 0x80): a start line begins with a method
    // token or "SIP/2.0", both upper case. Saves scanning every media packet for a newline.
    if !rest.first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    let nl = text::find(rest, b'\n')?;
    let start = parse_start_line(rest.get(..nl)?).ok()?;
    Some(Sniffed {
        start,
        after: lead + nl + 1,
    })
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

/// Where [`frame_resume`] stopped on a stream head, so the next call with more bytes of the
/// same head goes on from there instead of from byte 0: each byte of a stream is examined
/// O(1) times however finely TCP cut it. Plain words so that a reassembler that knows
/// nothing of SIP can keep it in its stream slot; start each new head from `default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameScan {
    /// Stage (low 4 bits) and what Content-Length said so far (high bits).
    pub phase: u8,
    /// `[scan, unit, after_start, value]`: bytes before `scan` are checked; `unit` is where
    /// the header being read starts (the message total once the headers ended);
    /// `after_start` ends the start line; `value` is the Content-Length read.
    pub at: [u32; 4],
    /// Bytes examined on this head by all calls together (the linearity tests read it).
    pub examined: u32,
}

/// Start line not terminated yet: `scan` bytes have no LF and are a plausible prefix.
const STAGE_START: u8 = 0;
/// Looking for the LF ending the first line of the header starting at `unit`.
const STAGE_LINE: u8 = 1;
/// The header at `unit` is valid so far; looking for the LF of its last (folded) line from
/// `scan`, then at the byte after it to know whether the value goes on.
const STAGE_FOLD: u8 = 2;
/// Headers ended; the message is `unit` bytes long.
const STAGE_BODY: u8 = 3;
/// Content-Length: not seen yet / unreadable / read into `value`.
const CL_NONE: u8 = 0;
const CL_BAD: u8 = 1 << 4;
const CL_SET: u8 = 2 << 4;

impl FrameScan {
    fn stage(&self) -> u8 {
        self.phase & 0x0f
    }
    fn cl(&self) -> u8 {
        self.phase & 0xf0
    }
    fn set_stage(&mut self, stage: u8) {
        self.phase = self.cl() | stage;
    }
    fn word(&self, i: usize) -> usize {
        self.at.get(i).map_or(0, |&w| w as usize)
    }
    fn set(&mut self, i: usize, v: usize) {
        if let Some(w) = self.at.get_mut(i) {
            *w = v as u32; // offsets are below the reassembly buffer size (u32 on every board)
        }
    }
    fn look(&mut self, n: usize) {
        self.examined = self.examined.saturating_add(n as u32);
    }
}

const SCAN: usize = 0;
const UNIT: usize = 1;
const AFTER_START: usize = 2;
const VALUE: usize = 3;

/// Frames SIP over a stream transport (RFC 3261 §18.3): headers up to the
/// blank line, then exactly Content-Length body bytes. A missing
/// Content-Length is taken as 0 (it is mandatory on TCP).
pub fn frame_len(buf: &[u8]) -> SipFrame {
    frame_resume(buf, &mut FrameScan::default())
}

/// [`frame_len`] resumed: `scan` is what the previous call on this same head (a prefix of
/// `buf`) left, `default()` for a new head. Answers exactly as [`frame_len`] on `buf`; after
/// anything but `Incomplete` the head moves and the next call starts from `default()`.
pub fn frame_resume(buf: &[u8], scan: &mut FrameScan) -> SipFrame {
    if scan.word(SCAN) > buf.len() || scan.stage() > STAGE_BODY {
        // Not this head's state (the caller moved the head without resetting it).
        *scan = FrameScan::default();
    }
    if scan.stage() == STAGE_START {
        let from = scan.word(SCAN);
        if from == 0 {
            let lead = leading_crlf(buf);
            if lead > 0 {
                // Keep-alive "\r\n\r\n" pings (RFC 5626) or stray blank lines.
                scan.look(lead);
                return SipFrame::Invalid(lead);
            }
            if buf.is_empty() {
                return SipFrame::Incomplete;
            }
        }
        let rest = buf.get(from..).unwrap_or_default();
        let Some(i) = text::find(rest, b'\n') else {
            scan.look(rest.len());
            return if buf.len() <= MAX_START_LINE && plausible_start_from(buf, from) {
                scan.set(SCAN, buf.len());
                SipFrame::Incomplete
            } else {
                scan.look(buf.len());
                SipFrame::Invalid(resync(buf))
            };
        };
        let nl = from + i;
        scan.look(i + 1 + nl);
        let first = buf.get(..nl).unwrap_or_default();
        if parse_start_line(first).is_err() {
            scan.look(buf.len());
            return SipFrame::Invalid(resync(buf));
        }
        *scan = FrameScan {
            phase: STAGE_LINE,
            at: [0; 4],
            examined: scan.examined,
        };
        for w in [SCAN, UNIT, AFTER_START] {
            scan.set(w, nl + 1);
        }
    }
    let after_start = scan.word(AFTER_START);
    loop {
        let from = scan.word(SCAN);
        match scan.stage() {
            STAGE_LINE => {
                let unit = scan.word(UNIT);
                let Some(nl) = find_lf(buf, from, scan) else {
                    return truncated(buf, after_start);
                };
                let line = buf.get(unit..nl).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    return body(buf, nl + 1, after_start, scan);
                }
                // Checked as soon as the line ends, as `scan_headers` does.
                let Some(colon) = text::find(line, b':') else {
                    return SipFrame::Invalid(after_start);
                };
                scan.look(colon);
                let name = text::trim(line.get(..colon).unwrap_or_default());
                if name.is_empty() || !name.iter().all(|&b| text::is_token(b)) {
                    return SipFrame::Invalid(after_start);
                }
                scan.set_stage(STAGE_FOLD);
                scan.set(SCAN, nl);
            }
            STAGE_FOLD => {
                let Some(nl) = find_lf(buf, from, scan) else {
                    return truncated(buf, after_start);
                };
                match buf.get(nl + 1) {
                    // The next byte says whether the value goes on: wait for it, and look
                    // again from this LF (one byte) next time.
                    None => {
                        scan.set(SCAN, nl);
                        return truncated(buf, after_start);
                    }
                    // RFC 3261 §7.3.1: a line starting with SP/HT continues the value.
                    Some(b' ' | b'\t') => scan.set(SCAN, nl + 1),
                    Some(_) => {
                        header_done(buf, nl + 1, scan);
                        scan.set_stage(STAGE_LINE);
                        scan.set(SCAN, nl + 1);
                        scan.set(UNIT, nl + 1);
                    }
                }
            }
            _ => {
                let total = scan.word(UNIT);
                return if total <= buf.len() {
                    SipFrame::Complete(total)
                } else {
                    SipFrame::Incomplete
                };
            }
        }
    }
}

/// The next LF at or after `from`; else records that `buf` has none past `from`.
fn find_lf(buf: &[u8], from: usize, scan: &mut FrameScan) -> Option<usize> {
    let rest = buf.get(from..).unwrap_or_default();
    match text::find(rest, b'\n') {
        Some(i) => {
            scan.look(i + 1);
            Some(from + i)
        }
        None => {
            scan.look(rest.len());
            scan.set(SCAN, buf.len());
            None
        }
    }
}

/// The header `[unit, end)` is whole: note the first Content-Length.
fn header_done(buf: &[u8], end: usize, scan: &mut FrameScan) {
    let unit = scan.word(UNIT);
    scan.look(end - unit);
    if scan.cl() != CL_NONE {
        return;
    }
    let header = buf.get(unit..end).unwrap_or_default();
    let Some(colon) = text::find(header, b':') else {
        return;
    };
    if !message::is_content_length(text::trim(header.get(..colon).unwrap_or_default())) {
        return;
    }
    match text::parse_u32(text::trim(header.get(colon + 1..).unwrap_or_default())) {
        Some(v) => {
            scan.phase = CL_SET | scan.stage();
            scan.set(VALUE, v as usize);
        }
        None => scan.phase = CL_BAD | scan.stage(),
    }
}

/// The header section ends at `body_start`: the message's total, or why there is none.
fn body(buf: &[u8], body_start: usize, after_start: usize, scan: &mut FrameScan) -> SipFrame {
    let cl = match scan.cl() {
        CL_NONE => 0,
        CL_SET => scan.word(VALUE),
        // Unreadable length: we cannot find the message end, so drop
        // the start line and let resync find the next message.
        _ => return SipFrame::Invalid(after_start),
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
        scan.set_stage(STAGE_BODY);
        scan.set(UNIT, total);
        scan.set(SCAN, body_start);
        SipFrame::Incomplete
    }
}

/// Headers not ended yet: wait, unless the header section alone is past the limit.
fn truncated(buf: &[u8], after_start: usize) -> SipFrame {
    if buf.len() < MAX_MESSAGE {
        SipFrame::Incomplete
    } else {
        SipFrame::Oversize(after_start)
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

/// [`plausible_start_prefix`] of `buf` when `buf[..from]` was one already (with no LF).
fn plausible_start_from(buf: &[u8], from: usize) -> bool {
    if from == 0 {
        return plausible_start_prefix(buf);
    }
    // A CR that ended the checked prefix is no longer the last byte.
    if buf.get(from - 1) == Some(&b'\r') && buf.len() > from {
        return false;
    }
    let rest = buf.get(from..).unwrap_or_default();
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    rest.iter().all(|&b| (0x20..0x7f).contains(&b))
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

    /// The framer before resumption (rescans from byte 0): the reference the resumed one
    /// must answer exactly like.
    fn frame_len_rescan(buf: &[u8]) -> SipFrame {
        let lead = leading_crlf(buf);
        if lead > 0 {
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
        if parse_start_line(&buf[..nl]).is_err() {
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
            Err(SipError::Truncated) => SipFrame::Oversize(after_start),
            Err(_) => SipFrame::Invalid(after_start),
        }
    }

    /// Feeds `stream` `step` bytes at a time as a reassembler does (frame after each append,
    /// drop what was framed, fresh state for each new head), checking every answer against
    /// the rescanning framer. Returns the answers and the bytes examined.
    fn feed(stream: &[u8], step: usize) -> (Vec<SipFrame>, u64) {
        let (mut head, mut answers, mut examined) = (Vec::new(), Vec::new(), 0u64);
        let mut scan = FrameScan::default();
        for part in stream.chunks(step) {
            head.extend_from_slice(part);
            loop {
                let before = scan.examined;
                let got = frame_resume(&head, &mut scan);
                examined += u64::from(scan.examined - before);
                assert_eq!(got, frame_len_rescan(&head), "head {:?}", lossy(&head));
                let n = match got {
                    SipFrame::Incomplete => break,
                    SipFrame::Complete(n) | SipFrame::Invalid(n) | SipFrame::Oversize(n) => n,
                };
                answers.push(got);
                head.drain(..n.min(head.len()));
                scan = FrameScan::default();
                if head.is_empty() {
                    break;
                }
            }
        }
        (answers, examined)
    }

    fn lossy(b: &[u8]) -> String {
        String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned()
    }

    /// An INVITE of `len` bytes (give or take one header line) made of 100-byte headers.
    fn padded(len: usize, body: usize) -> Vec<u8> {
        let mut m =
            b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\nCall-ID: pad@h\r\nCSeq: 1 INVITE\r\n".to_vec();
        let tail = format!("Content-Length: {body}\r\n\r\n");
        while m.len() + tail.len() + body + 100 <= len {
            m.extend_from_slice(b"X-Pad: ");
            m.resize(m.len() + 91, b'p');
            m.extend_from_slice(b"\r\n");
        }
        m.extend_from_slice(tail.as_bytes());
        m.resize(m.len() + body, b'b');
        m
    }

    #[test]
    fn resumed_framing_answers_as_a_rescan_for_every_cut() {
        let mut streams: Vec<Vec<u8>> = vec![
            [OPTIONS, INFO, b"\r\n\r\n", OPTIONS].concat(),
            // Folded Content-Length: the value goes on past the first line's LF.
            b"BYE sip:a@b SIP/2.0\r\nContent-Length:\r\n 5\r\n\r\nhelloACK sip:a@b SIP/2.0\r\n\r\n"
                .to_vec(),
            b"BYE sip:a@b SIP/2.0\r\nl: 3\r\n\t7\r\n\r\nINFO".to_vec(),
            b"BYE sip:a@b SIP/2.0\r\nContent-Length: many\r\n\r\n".to_vec(),
            b"BYE sip:a@b SIP/2.0\r\nl: 2\r\nContent-Length: 9\r\n\r\nokOPTIONS".to_vec(),
            b"BYE sip:a@b SIP/2.0\r\nl: 9999999\r\n\r\nxx".to_vec(),
            b"BYE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n".to_vec(),
            b"BYE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n".to_vec(),
            b"tail of a lost body\r\nmore junk\r\nACK sip:a@b SIP/2.0\r\n\r\n".to_vec(),
            b"INVITE sip:a@b SIP/2.0\rX\r\nACK sip:a@b SIP/2.0\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nSIP/2.0 200 OK\r\nl: 0\r\n\r\n".to_vec(),
            b"SIP/2.0 180 Ringing\nVia: x\n\nSIP/2.0 200 OK\nVia: y\n \n\n".to_vec(),
            vec![0x16, 3, 1, 0, 5, 0x80, b'\n', b'A'],
            [&b"INVITE sip:"[..], &[b'a'; 1100], b" SIP/2.0\r\n\r\n"].concat(),
            padded(3000, 700),
        ];
        streams.push(streams.concat());
        for stream in &streams {
            for step in [1, 2, 3, 7, 64, stream.len()] {
                feed(stream, step);
            }
        }
    }

    #[test]
    fn a_header_section_past_the_limit_is_oversize_at_the_same_byte() {
        // 70 KB of headers and no end: the rescanning framer answers Oversize once the
        // buffer reaches the limit; the resumed one too, without rescanning.
        let mut m = padded(70_000, 0);
        m.truncate(m.len() - 24); // drop Content-Length and the blank line
        let (answers, examined) = feed(&m, 4096);
        assert_eq!(answers.first(), Some(&SipFrame::Oversize(33)));
        assert!(examined < 3 * m.len() as u64, "{examined}");
    }

    #[test]
    fn a_message_cut_into_one_byte_segments_is_examined_a_few_times_per_byte() {
        // 16 and 64 KiB of headers, and one with a large body: rescanning from byte 0 after
        // each byte would look at ~n²/2 bytes (2·10⁹ for 64 KiB).
        for m in [
            padded(16 * 1024, 0),
            padded(MAX_MESSAGE, 0),
            padded(MAX_MESSAGE, 60_000),
        ] {
            assert!(m.len() <= MAX_MESSAGE && m.len() > MAX_MESSAGE / 5);
            let mut scan = FrameScan::default();
            for n in 1..m.len() {
                assert_eq!(frame_resume(&m[..n], &mut scan), SipFrame::Incomplete);
            }
            assert_eq!(frame_resume(&m, &mut scan), SipFrame::Complete(m.len()));
            let n = m.len() as u64;
            assert!(
                u64::from(scan.examined) < 4 * n,
                "{} for {n}",
                scan.examined
            );
        }
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
