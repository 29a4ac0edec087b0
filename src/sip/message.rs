//! One SIP message: start line, header index, body.

use super::Method;
use super::text::{
    SplitUnquoted, find, find_sub, is_lws, is_token, param, parse_u32, starts_with_ci, trim,
    unquote,
};
use core::cell::OnceCell;

/// Header lines indexed per message. Further headers are still syntax-checked
/// and Content-Length is still honoured, but they are not searchable (see
/// [`Message::headers_truncated`]): a sensor is better served by a partly
/// indexed message than by dropping a call because of a bloated proxy hop.
pub const MAX_HEADERS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipError {
    /// No end of header section, or Content-Length beyond the end of data.
    Truncated,
    BadStartLine,
    /// A header line without a `:` or with a non-token name.
    BadHeader,
    /// Not returned by [`Message::parse`] (excess headers are ignored); kept
    /// for callers that want to report [`Message::headers_truncated`].
    TooManyHeaders,
    BadContentLength,
}

impl core::fmt::Display for SipError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SipError::Truncated => "truncated SIP message",
            SipError::BadStartLine => "bad SIP start line",
            SipError::BadHeader => "bad SIP header line",
            SipError::TooManyHeaders => "too many SIP headers",
            SipError::BadContentLength => "bad SIP Content-Length",
        })
    }
}

impl core::error::Error for SipError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request {
        method: Method,
        method_raw: &'a [u8],
        uri: &'a [u8],
    },
    Response {
        code: u16,
        reason: &'a [u8],
    },
}

/// `name-addr` / `addr-spec` as in From, To, Contact (RFC 3261 §20.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name without surrounding quotes (escapes kept raw).
    pub display: Option<&'a [u8]>,
    /// The URI without `<>`.
    pub uri: &'a [u8],
    /// User part, without password or user parameters; the number for `tel:`.
    pub user: Option<&'a [u8]>,
    /// Host without port; IPv6 references without brackets; empty for `tel:`.
    pub host: &'a [u8],
    pub tag: Option<&'a [u8]>,
}

#[derive(Clone, Copy, Debug)]
struct Header<'a> {
    name: &'a [u8],
    value: &'a [u8],
}

/// What [`Message::parse_datagram`] forgave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Content-Length missing with a body, non-numeric, or past the datagram's end.
    pub bad_content_length: bool,
    /// Header lines without a `:` or with a non-token name, skipped.
    pub bad_header_lines: u32,
    /// No blank line before the datagram's end: no body.
    pub unterminated: bool,
}

/// RFC 3261 §7.5: CRLFs before the start line are ignored.
fn start_line(buf: &[u8]) -> Result<(StartLine<'_>, usize), SipError> {
    let lead = buf.iter().take_while(|b| super::text::is_lws(**b)).count();
    let (line, after) = line_at(buf, lead).ok_or(SipError::Truncated)?;
    Ok((parse_start_line(line)?, after))
}

/// A parsed view over one whole SIP message.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    start: StartLine<'a>,
    headers: heapless::Vec<Header<'a>, MAX_HEADERS>,
    /// For each of [`KNOWN`], 1 + the index of its first header line (0: absent).
    first: [u8; KNOWN.len()],
    headers_truncated: bool,
    content_length: Option<usize>,
    body: &'a [u8],
    /// Parsed once on first use: the call table, the retransmission fingerprint and the
    /// mirror's transaction key each read these from every message.
    parsed: Parsed<'a>,
}

#[derive(Clone, Debug, Default)]
struct Parsed<'a> {
    cseq: OnceCell<Option<(u32, Method)>>,
    from: OnceCell<Option<NameAddr<'a>>>,
    to: OnceCell<Option<NameAddr<'a>>>,
    via_branch: OnceCell<Option<&'a [u8]>>,
}

/// The headers the tracker reads from every message (several times: call table,
/// retransmission fingerprint, mirror transactions), indexed while the header lines are
/// scanned so a lookup is an array read, not a case-insensitive pass over every line.
const KNOWN: [&[u8]; 10] = [
    b"via",
    b"from",
    b"to",
    b"call-id",
    b"cseq",
    b"contact",
    b"content-type",
    b"reason",
    b"user-agent",
    b"content-length",
];
const VIA: usize = 0;
const FROM: usize = 1;
const TO: usize = 2;
const CALL_ID: usize = 3;
const CSEQ: usize = 4;
const CONTACT: usize = 5;
const CONTENT_TYPE: usize = 6;
const REASON: usize = 7;
const USER_AGENT: usize = 8;
const CONTENT_LENGTH: usize = 9;

/// The index in [`KNOWN`] of header `name` (compact forms accepted).
fn known(name: &[u8]) -> Option<usize> {
    let name = canonical(name);
    KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name))
}

/// Appends a header line, noting it in `first` if it is the first of a known name.
fn push_header<'a>(
    headers: &mut heapless::Vec<Header<'a>, MAX_HEADERS>,
    first: &mut [u8; KNOWN.len()],
    name: &'a [u8],
    value: &'a [u8],
) -> bool {
    let at = headers.len();
    if headers.push(Header { name, value }).is_err() {
        return false;
    }
    if let Some(slot) = known(name).and_then(|k| first.get_mut(k))
        && *slot == 0
    {
        // MAX_HEADERS < 255: the index always fits.
        *slot = u8::try_from(at + 1).unwrap_or(0);
    }
    true
}

/// Storage a message is parsed into where it is used. A [`Message`] carries its header
/// index (`MAX_HEADERS` lines, ~2 KiB): returned by value it was copied three times on
/// its way into the tracker, 2,200 of the 13,800 instructions an INVITE cost. The
/// message is only reachable through what a parse returned, so a failed or unparsed
/// slot is never read.
pub struct MessageSlot<'a>(Message<'a>);

impl Default for MessageSlot<'_> {
    fn default() -> Self {
        MessageSlot(Message::blank())
    }
}

impl<'a> MessageSlot<'a> {
    /// [`Message::parse`] in place.
    pub fn parse(&mut self, buf: &'a [u8]) -> Result<&Message<'a>, SipError> {
        self.0.fill_strict(buf)?;
        Ok(&self.0)
    }

    /// [`Message::parse_datagram`] in place.
    pub fn parse_datagram(&mut self, buf: &'a [u8]) -> Result<(&Message<'a>, Defects), SipError> {
        let (start, after) = start_line(buf)?;
        let d = self.0.fill_datagram(buf, start, after)?;
        Ok((&self.0, d))
    }

    /// [`Message::parse_sniffed`] in place.
    pub fn parse_sniffed(
        &mut self,
        buf: &'a [u8],
        sniffed: super::Sniffed<'a>,
    ) -> Result<(&Message<'a>, Defects), SipError> {
        let (start, after) = sniffed.parts();
        let d = self.0.fill_datagram(buf, start, after)?;
        Ok((&self.0, d))
    }
}

impl<'a> Message<'a> {
    /// Parses one whole message strictly: what `frame_len` delimited on TCP. The body is
    /// Content-Length bytes (trailing bytes ignored), or the rest of the buffer when the
    /// header is absent.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, SipError> {
        let mut m = Message::blank();
        m.fill_strict(buf)?;
        Ok(m)
    }

    /// A message with no start line, headers or body: storage for the `fill_*` methods,
    /// never handed out (see [`MessageSlot`]).
    fn blank() -> Self {
        Message {
            start: StartLine::Response {
                code: 0,
                reason: b"",
            },
            headers: heapless::Vec::new(),
            first: [0; KNOWN.len()],
            headers_truncated: false,
            content_length: None,
            body: b"",
            parsed: Parsed::default(),
        }
    }

    /// Empties the header index and the lazily parsed fields before a fill.
    fn reset(&mut self, start: StartLine<'a>) {
        self.start = start;
        self.headers.clear();
        self.first = [0; KNOWN.len()];
        self.headers_truncated = false;
        self.parsed = Parsed::default();
    }

    /// [`parse`](Self::parse) into `self`.
    fn fill_strict(&mut self, buf: &'a [u8]) -> Result<(), SipError> {
        let (start, after) = start_line(buf)?;
        self.reset(start);
        let (headers, first, truncated) = (
            &mut self.headers,
            &mut self.first,
            &mut self.headers_truncated,
        );
        let mut cl_raw: Option<&'a [u8]> = None;
        let body_start = scan_headers(buf, after, |name, value| {
            // The first Content-Length is read from the index (`first`), beyond it only
            // when the index is full: one name lookup a line, not two.
            if !push_header(headers, first, name, value) {
                *truncated = true;
                if cl_raw.is_none() && is_content_length(name) {
                    cl_raw = Some(value);
                }
            }
        })?;
        let cl_raw = self.known_header(CONTENT_LENGTH).or(cl_raw);
        let rest = buf.get(body_start..).unwrap_or_default();
        self.content_length = match cl_raw {
            Some(v) => Some(parse_u32(v).ok_or(SipError::BadContentLength)? as usize),
            None => None,
        };
        self.body = match self.content_length {
            Some(n) => rest.get(..n).ok_or(SipError::Truncated)?,
            None => rest,
        };
        Ok(())
    }

    /// Parses a message whose transport bounds it (a UDP datagram, a WebSocket or SCTP
    /// message: RFC 3261 §18.3): a missing (with a body), non-numeric or too-large
    /// Content-Length takes the body to the end of the datagram; header lines that do not
    /// parse are skipped, an unterminated header section ends at the datagram's end. The
    /// message is kept as long as its start line, Call-ID and CSeq read; the defects are
    /// returned for counting.
    pub fn parse_datagram(buf: &'a [u8]) -> Result<(Message<'a>, Defects), SipError> {
        let (start, after) = start_line(buf)?;
        Self::datagram_after(buf, start, after)
    }

    /// [`parse_datagram`](Self::parse_datagram) of the datagram `sniffed` came from
    /// ([`super::sniff`]), without parsing its start line again. `sniff` accepts only
    /// what `parse_datagram` reads as the same start line (it skips CR/LF before a
    /// start line that begins upper case, where `parse_datagram` skips any LWS).
    pub fn parse_sniffed(
        buf: &'a [u8],
        sniffed: super::Sniffed<'a>,
    ) -> Result<(Message<'a>, Defects), SipError> {
        let (start, after) = sniffed.parts();
        Self::datagram_after(buf, start, after)
    }

    fn datagram_after(
        buf: &'a [u8],
        start: StartLine<'a>,
        after: usize,
    ) -> Result<(Message<'a>, Defects), SipError> {
        let mut m = Message::blank();
        let d = m.fill_datagram(buf, start, after)?;
        Ok((m, d))
    }

    /// [`parse_datagram`](Self::parse_datagram) into `self`, the start line read.
    fn fill_datagram(
        &mut self,
        buf: &'a [u8],
        start: StartLine<'a>,
        after: usize,
    ) -> Result<Defects, SipError> {
        self.reset(start);
        let (headers, first, truncated) = (
            &mut self.headers,
            &mut self.first,
            &mut self.headers_truncated,
        );
        let mut cl_raw: Option<&'a [u8]> = None;
        let mut d = Defects::default();
        let body_start = scan_headers_lenient(buf, after, &mut d, |name, value| {
            // The first Content-Length is read from the index (`first`), beyond it only
            // when the index is full: one name lookup a line, not two.
            if !push_header(headers, first, name, value) {
                *truncated = true;
                if cl_raw.is_none() && is_content_length(name) {
                    cl_raw = Some(value);
                }
            }
        });
        let cl_raw = self.known_header(CONTENT_LENGTH).or(cl_raw);
        let rest = buf.get(body_start..).unwrap_or_default();
        self.content_length = cl_raw.and_then(parse_u32).map(|n| n as usize);
        self.body = match self.content_length.and_then(|n| rest.get(..n)) {
            Some(b) => b,
            None => {
                d.bad_content_length = cl_raw.is_some() || !rest.is_empty();
                rest
            }
        };
        if (d.bad_header_lines > 0 || d.unterminated)
            && (self.call_id().is_none() || self.cseq().is_none())
        {
            return Err(SipError::BadHeader);
        }
        Ok(d)
    }

    pub fn start(&self) -> StartLine<'a> {
        self.start
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<Method> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Request-URI of a request.
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// True when more than [`MAX_HEADERS`] header lines were present and the
    /// excess is not searchable.
    pub fn headers_truncated(&self) -> bool {
        self.headers_truncated
    }

    /// All indexed `(name, value)` pairs in wire order; values trimmed, folded
    /// lines keep their inner CRLF+whitespace.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.headers.iter().map(|h| (h.name, h.value))
    }

    /// First value of header `name` (case-insensitive, compact forms accepted
    /// both in the message and in `name`), trimmed, whole line.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        if let Some(k) = known(name.as_bytes()) {
            return self.known_header(k);
        }
        let want = canonical(name.as_bytes());
        self.headers
            .iter()
            .find(|h| canonical(h.name).eq_ignore_ascii_case(want))
            .map(|h| h.value)
    }

    /// First value of the [`KNOWN`] header `k`.
    fn known_header(&self, k: usize) -> Option<&'a [u8]> {
        let i = usize::from(*self.first.get(k)?).checked_sub(1)?;
        self.headers.get(i).map(|h| h.value)
    }

    /// Every value of header `name`: repeated header lines and comma-separated
    /// values, commas inside quotes or `<>` respected. Only meaningful for
    /// headers whose grammar is a comma list (Via, Contact, Route, Allow...),
    /// not for Date or the authentication headers.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.values(canonical(name.as_bytes()))
    }

    /// [`header_values`](Self::header_values) of a canonical name.
    fn values<'s>(&'s self, want: &'s [u8]) -> impl Iterator<Item = &'a [u8]> + 's {
        // A known header's lines start at its first; none before it can match.
        let from = match known(want) {
            Some(k) => match self.first.get(k).map(|&f| usize::from(f)) {
                Some(f) if f > 0 => f - 1,
                _ => self.headers.len(),
            },
            None => 0,
        };
        self.headers
            .get(from..)
            .unwrap_or_default()
            .iter()
            .filter(move |h| canonical(h.name).eq_ignore_ascii_case(want))
            .flat_map(|h| SplitUnquoted::new(h.value, b','))
    }

    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.known_header(CALL_ID).filter(|v| !v.is_empty())
    }

    /// `CSeq: 4711 INVITE` → `(4711, Invite)`.
    pub fn cseq(&self) -> Option<(u32, Method)> {
        *self.parsed.cseq.get_or_init(|| self.parse_cseq())
    }

    fn parse_cseq(&self) -> Option<(u32, Method)> {
        let v = self.known_header(CSEQ)?;
        let mut parts = v
            .split(|b| super::text::is_lws(*b))
            .filter(|p| !p.is_empty());
        let num = parse_u32(parts.next()?)?;
        let method = Method::from_bytes(parts.next()?);
        Some((num, method))
    }

    pub fn from(&self) -> Option<NameAddr<'a>> {
        *self
            .parsed
            .from
            .get_or_init(|| NameAddr::parse(self.known_header(FROM)?))
    }

    pub fn to(&self) -> Option<NameAddr<'a>> {
        *self
            .parsed
            .to
            .get_or_init(|| NameAddr::parse(self.known_header(TO)?))
    }

    /// First Contact (a Contact line may list several).
    pub fn contact(&self) -> Option<NameAddr<'a>> {
        NameAddr::parse(self.values(KNOWN[CONTACT]).next()?)
    }

    /// `branch` parameter of the top-most Via.
    pub fn via_branch(&self) -> Option<&'a [u8]> {
        *self.parsed.via_branch.get_or_init(|| {
            let via = self.values(KNOWN[VIA]).next()?;
            let params = via.get(find(via, b';')?..)?;
            param(params, "branch").filter(|b| !b.is_empty())
        })
    }

    /// Reason header (RFC 3326), raw first value, e.g. `Q.850;cause=16;text="x"`.
    pub fn reason(&self) -> Option<&'a [u8]> {
        self.known_header(REASON)
    }

    /// The `text` parameter of the Reason header, without quotes.
    pub fn reason_text(&self) -> Option<&'a [u8]> {
        let r = self.header_values("reason").next()?;
        let params = r.get(find(r, b';')?..)?;
        param(params, "text").map(unquote)
    }

    pub fn user_agent(&self) -> Option<&'a [u8]> {
        self.known_header(USER_AGENT)
    }

    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.known_header(CONTENT_TYPE)
    }

    /// Content-Length as sent, if present.
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }

    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The message carries an SDP body (directly or as a multipart part).
    pub fn has_sdp(&self) -> bool {
        self.sdp_body().is_some()
    }

    /// The SDP bytes: the whole body for `application/sdp`, or the first
    /// `application/sdp` part of a `multipart/*` body (e.g. SIP-I with ISUP).
    pub fn sdp_body(&self) -> Option<&'a [u8]> {
        let ct = self.content_type()?;
        let body = if mime_is(ct, b"application/sdp") {
            self.body
        } else if starts_with_ci(trim(ct), b"multipart/") {
            let ct_params = ct.get(find(ct, b';')?..)?;
            let boundary = unquote(param(ct_params, "boundary")?);
            multipart_find(self.body, boundary, b"application/sdp")?
        } else {
            return None;
        };
        (!trim(body).is_empty()).then_some(body)
    }
}

impl<'a> NameAddr<'a> {
    /// Parses `"Display" <uri>;params`, `Display <uri>`, `<uri>` or a bare
    /// `uri;params` (where every `;param` belongs to the header, not the URI).
    pub fn parse(v: &'a [u8]) -> Option<NameAddr<'a>> {
        let v = trim(v);
        let (display, rest) = if v.first() == Some(&b'"') {
            let close = closing_quote(v)?;
            let d = v.get(1..close)?;
            (Some(d), v.get(close + 1..)?)
        } else {
            (None, v)
        };
        let (display, uri, params) = match find(rest, b'<') {
            Some(lt) => {
                let gt = lt + find(rest.get(lt..)?, b'>')?;
                let display = match display {
                    Some(d) => Some(d),
                    None => Some(trim(rest.get(..lt)?)).filter(|d| !d.is_empty()),
                };
                (display, trim(rest.get(lt + 1..gt)?), rest.get(gt + 1..)?)
            }
            None if display.is_none() => match find(rest, b';') {
                Some(semi) => (None, trim(rest.get(..semi)?), rest.get(semi..)?),
                None => (None, rest, &[][..]),
            },
            // A quoted display name must be followed by <uri>.
            None => return None,
        };
        if uri.is_empty() {
            return None;
        }
        let (user, host) = parse_uri(uri);
        Some(NameAddr {
            display,
            uri,
            user,
            host,
            tag: param(params, "tag").filter(|t| !t.is_empty()),
        })
    }
}

/// Splits a SIP/SIPS/TEL URI into `(user, host)`. `sip:123;phone-context=x@h`
/// gives user `123`; `tel:+123;npdi` gives user `+123` and an empty host;
/// `sip:[::1]:5060` gives host `::1`. Unknown schemes yield `(None, rest)`.
pub fn parse_uri(uri: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let uri = trim(uri);
    let Some(colon) = find(uri, b':') else {
        return (None, uri);
    };
    let scheme = uri.get(..colon).unwrap_or_default();
    let rest = uri.get(colon + 1..).unwrap_or_default();
    if scheme.eq_ignore_ascii_case(b"tel") {
        let end = rest
            .iter()
            .position(|&b| b == b';' || b == b'?')
            .unwrap_or(rest.len());
        let number = rest.get(..end).unwrap_or_default();
        return ((!number.is_empty()).then_some(number), &[][..]);
    }
    if !(scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips")) {
        return (None, rest);
    }
    // One pass up to the userinfo's `@` (URI headers, `?...`, may hold an escaped `@` but
    // never the userinfo one), noting where a user would end; then one over the host.
    // Before, three searches ran over the whole URI and two more over its parts (the test
    // `uris_split_as_searched_part_by_part` holds the two equal).
    let mut user_end = None;
    let mut stop = rest.len();
    let mut at = false;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'?' => {
                stop = i;
                break;
            }
            b'@' => {
                (stop, at) = (i, true);
                break;
            }
            b':' | b';' if user_end.is_none() => user_end = Some(i),
            _ => {}
        }
    }
    let (user, hostport) = if at {
        let user = rest.get(..user_end.unwrap_or(stop)).unwrap_or_default();
        let after = rest.get(stop + 1..).unwrap_or_default();
        let q = find(after, b'?').unwrap_or(after.len());
        (
            (!user.is_empty()).then_some(user),
            after.get(..q).unwrap_or_default(),
        )
    } else {
        (None, rest.get(..stop).unwrap_or_default())
    };
    let host = if hostport.first() == Some(&b'[') {
        let close = find(hostport, b']').unwrap_or(hostport.len());
        hostport.get(1..close).unwrap_or_default()
    } else if !at {
        // Without userinfo, the host ends where a user would have.
        hostport.get(..user_end.unwrap_or(stop)).unwrap_or_default()
    } else {
        let end = hostport
            .iter()
            .position(|&b| b == b':' || b == b';')
            .unwrap_or(hostport.len());
        hostport.get(..end).unwrap_or_default()
    };
    (user, host)
}

/// Index of the quote closing the quoted string that starts at `s[0]`.
fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate().skip(1) {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return Some(i);
        }
    }
    None
}

/// `Content-Type` value has media type `want`, ignoring parameters.
fn mime_is(ct: &[u8], want: &[u8]) -> bool {
    let base = ct
        .get(..find(ct, b';').unwrap_or(ct.len()))
        .unwrap_or_default();
    trim(base).eq_ignore_ascii_case(want)
}

/// Content of the first body part of type `want` in a MIME multipart body
/// (RFC 2046 §5.1.1). The CRLF before each delimiter belongs to it.
fn multipart_find<'a>(body: &'a [u8], boundary: &[u8], want: &[u8]) -> Option<&'a [u8]> {
    if boundary.is_empty() {
        return None;
    }
    let mut pos = 0;
    let mut part_start: Option<usize> = None;
    loop {
        let rest = body.get(pos..)?;
        let i = find_sub(rest, b"--")?;
        let at = pos + i;
        let is_delim = (at == 0 || body.get(at - 1) == Some(&b'\n'))
            && body.get(at + 2..)?.starts_with(boundary);
        if !is_delim {
            pos = at + 2;
            continue;
        }
        if let Some(ps) = part_start {
            let mut end = at;
            if end > ps && body.get(end - 1) == Some(&b'\n') {
                end -= 1;
            }
            if end > ps && body.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
            let part = body.get(ps..end)?;
            if let Some(content) = part_content(part, want) {
                return Some(content);
            }
        }
        let after = at + 2 + boundary.len();
        if body.get(after..)?.starts_with(b"--") {
            return None; // close-delimiter
        }
        let nl = find(body.get(after..)?, b'\n')?;
        part_start = Some(after + nl + 1);
        pos = after + nl + 1;
    }
}

fn part_content<'a>(part: &'a [u8], want: &[u8]) -> Option<&'a [u8]> {
    let mut ct: Option<&[u8]> = None;
    // A part starting with a blank line has no headers (type text/plain).
    let body_start = if part.starts_with(b"\r\n") {
        2
    } else if part.starts_with(b"\n") {
        1
    } else {
        scan_headers(part, 0, |name, value| {
            if ct.is_none() && canonical(name).eq_ignore_ascii_case(b"content-type") {
                ct = Some(value);
            }
        })
        .ok()?
    };
    if mime_is(ct?, want) {
        part.get(body_start..)
    } else {
        None
    }
}

/// RFC 3261 §7.3.3 and later RFCs' compact header forms → full name.
fn canonical(name: &[u8]) -> &[u8] {
    let [c] = name else { return name };
    match c.to_ascii_lowercase() {
        b'a' => b"accept-contact",
        b'b' => b"referred-by",
        b'c' => b"content-type",
        b'd' => b"request-disposition",
        b'e' => b"content-encoding",
        b'f' => b"from",
        b'i' => b"call-id",
        b'j' => b"reject-contact",
        b'k' => b"supported",
        b'l' => b"content-length",
        b'm' => b"contact",
        b'n' => b"identity-info",
        b'o' => b"event",
        b'r' => b"refer-to",
        b's' => b"subject",
        b't' => b"to",
        b'u' => b"allow-events",
        b'v' => b"via",
        b'x' => b"session-expires",
        b'y' => b"identity",
        _ => name,
    }
}

pub(super) fn is_content_length(name: &[u8]) -> bool {
    canonical(name).eq_ignore_ascii_case(b"content-length")
}

/// Line starting at `pos`, without its LF or CRLF, and the offset after it.
/// `None` when no LF terminates it.
fn line_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let nl = find(rest, b'\n')?;
    let line = rest.get(..nl)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, pos + nl + 1))
}

/// `Request-Line` or `Status-Line` (without line terminator).
pub(super) fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, SipError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // What `line.splitn(3, ' ')` gave, and the same errors: the first space by `memchr`,
    // then a status code by position, or a request's URI in one pass that both ends and
    // checks it (split, then checked, each URI was read twice byte by byte: 160
    // instructions an INVITE). The test `start_lines_parse_as_split_on_spaces` holds the
    // two equal.
    let sp = find(line, b' ').ok_or(SipError::BadStartLine)?;
    let first = line.get(..sp).unwrap_or_default();
    let rest = line.get(sp + 1..).unwrap_or_default();
    if starts_with_ci(first, b"SIP/") {
        // A status code is three digits, then a space or the end.
        let code = rest.get(..3).ok_or(SipError::BadStartLine)?;
        let third = match rest.get(3) {
            Some(b' ') => rest.get(4..).unwrap_or_default(),
            Some(_) => return Err(SipError::BadStartLine),
            None => &[][..],
        };
        if !first.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(SipError::BadStartLine);
        }
        let code = parse_u32(code).ok_or(SipError::BadStartLine)?;
        if !(100..=699).contains(&code) {
            return Err(SipError::BadStartLine);
        }
        return Ok(StartLine::Response {
            code: code as u16,
            reason: trim(third),
        });
    }
    if first.is_empty() || !first.iter().all(|&b| is_token(b)) {
        return Err(SipError::BadStartLine);
    }
    // The URI ends at its first byte that may not be in one; only a space may end it.
    let end = rest
        .iter()
        .position(|&b| !(b.is_ascii_graphic() || b >= 0x80))
        .unwrap_or(rest.len());
    let uri = rest.get(..end).unwrap_or_default();
    let third = match rest.get(end) {
        Some(b' ') => rest.get(end + 1..).unwrap_or_default(),
        Some(_) => return Err(SipError::BadStartLine),
        None => &[][..],
    };
    if uri.is_empty() || !trim(third).eq_ignore_ascii_case(b"SIP/2.0") {
        return Err(SipError::BadStartLine);
    }
    Ok(StartLine::Request {
        method: Method::from_bytes(first),
        method_raw: first,
        uri,
    })
}

/// Walks the header lines from `pos`, unfolding continuation lines, calling
/// `f(name, value)` for each. Returns the offset just past the blank line.
pub(super) fn scan_headers<'a>(
    buf: &'a [u8],
    mut pos: usize,
    mut f: impl FnMut(&'a [u8], &'a [u8]),
) -> Result<usize, SipError> {
    loop {
        let (line, mut next) = line_at(buf, pos).ok_or(SipError::Truncated)?;
        if line.is_empty() {
            return Ok(next);
        }
        let colon = find(line, b':').ok_or(SipError::BadHeader)?;
        let name = trim(line.get(..colon).unwrap_or_default());
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(SipError::BadHeader);
        }
        let value_start = pos + colon + 1;
        let mut value_end = next;
        // RFC 3261 §7.3.1: a line starting with SP/HT continues the value.
        while matches!(buf.get(next), Some(b' ' | b'\t')) {
            let (_, after) = line_at(buf, next).ok_or(SipError::Truncated)?;
            value_end = after;
            next = after;
        }
        let value = trim(buf.get(value_start..value_end).unwrap_or_default());
        f(name, value);
        pos = next;
    }
}

/// [`scan_headers`] for a bounded message: bad lines are skipped and counted, the end of
/// `buf` ends an unterminated header section. Returns where the body starts.
fn scan_headers_lenient<'a>(
    buf: &'a [u8],
    mut pos: usize,
    d: &mut Defects,
    mut f: impl FnMut(&'a [u8], &'a [u8]),
) -> usize {
    loop {
        let Some((line, mut next)) = line_at(buf, pos) else {
            // A last line without its newline is still a header; then no body.
            let tail = buf.get(pos..).unwrap_or_default();
            d.unterminated = true;
            if let Some((name, value)) = header_line(tail) {
                f(name, value);
            }
            return buf.len();
        };
        if line.is_empty() {
            return next;
        }
        let mut value_end = next;
        while matches!(buf.get(next), Some(b' ' | b'\t')) {
            match line_at(buf, next) {
                Some((_, after)) => {
                    value_end = after;
                    next = after;
                }
                None => {
                    value_end = buf.len();
                    next = buf.len();
                }
            }
        }
        let whole = buf.get(pos..value_end).unwrap_or_default();
        match header_line(whole) {
            Some((name, value)) => f(name, value),
            None => d.bad_header_lines += 1,
        }
        pos = next;
    }
}

/// `name: value` of one (possibly folded) header line, if it is one: the name is what
/// precedes the first `:`, trimmed, and must be a non-empty token.
fn header_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    // One pass over the name (LWS, token bytes, LWS, then the colon) instead of a search
    // for the colon and a second pass checking the name: any other byte before the first
    // colon would be inside the trimmed name and fail the token check, so both agree
    // (the test `header_lines_split_as_at_the_first_colon` holds them equal).
    let from = line.iter().position(|&b| !is_lws(b))?;
    let at = line.get(from..)?;
    let n = at.iter().position(|&b| !is_token(b)).unwrap_or(at.len());
    let rest = at.get(n..)?;
    let ws = rest.iter().position(|&b| !is_lws(b))?;
    if n == 0 || rest.get(ws) != Some(&b':') {
        return None;
    }
    Some((at.get(..n)?, trim(rest.get(ws + 1..).unwrap_or_default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIPp-style INVITE over IPv6 with an SDP offer.
    const INVITE: &[u8] = b"INVITE sip:08001234567@[2001:db8::42]:25060 SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::15]:15060;branch=z9hG4bK-3974-1-0;rport\r\n\
From: \"sipp\" <sip:sipp@[2001:db8::15]:15060>;tag=3974SIPpTag001\r\n\
To: mcr <sip:mcr@[2001:db8::35]:5062>\r\n\
Call-ID: 1-3974@2001:db8::15\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@[2001:db8::15]:15060\r\n\
Max-Forwards: 70\r\n\
User-Agent: SIPp/3.6.1\r\n\
Supported: 100rel,precondition\r\n\
Route:  <sip:[2001:db8::35]:5062;lr>,<sip:0800@[2001:db8::42]:25060;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   118\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP6 2001:db8::15\r\n\
s=-\r\n\
c=IN IP6 2001:db8::15\r\n\
t=0 0\r\n\
m=audio 15062 RTP/AVP 0 101\r\n";

    #[test]
    fn parses_invite_accessors() {
        let m = Message::parse(INVITE).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.status(), None);
        assert_eq!(
            m.request_uri(),
            Some(&b"sip:08001234567@[2001:db8::42]:25060"[..])
        );
        assert_eq!(m.call_id(), Some(&b"1-3974@2001:db8::15"[..]));
        assert_eq!(m.cseq(), Some((1, Method::Invite)));
        assert_eq!(m.via_branch(), Some(&b"z9hG4bK-3974-1-0"[..]));
        assert_eq!(m.user_agent(), Some(&b"SIPp/3.6.1"[..]));
        assert_eq!(m.content_length(), Some(118));
        assert_eq!(m.body().len(), 118);
        assert!(m.body().starts_with(b"v=0\r\n"));
        assert!(m.has_sdp());
        assert_eq!(m.sdp_body(), Some(m.body()));

        let from = m.from().unwrap();
        assert_eq!(from.display, Some(&b"sipp"[..]));
        assert_eq!(from.uri, b"sip:sipp@[2001:db8::15]:15060");
        assert_eq!(from.user, Some(&b"sipp"[..]));
        assert_eq!(from.host, b"2001:db8::15");
        assert_eq!(from.tag, Some(&b"3974SIPpTag001"[..]));

        let to = m.to().unwrap();
        assert_eq!(to.display, Some(&b"mcr"[..]));
        assert_eq!(to.tag, None);

        let contact = m.contact().unwrap();
        assert_eq!(contact.display, None);
        assert_eq!(contact.user, Some(&b"sipp"[..]));
        assert_eq!(contact.host, b"2001:db8::15");

        let routes: heapless::Vec<&[u8], 4> = m.header_values("route").collect();
        assert_eq!(
            routes.as_slice(),
            &[
                &b"<sip:[2001:db8::35]:5062;lr>"[..],
                &b"<sip:0800@[2001:db8::42]:25060;lr>"[..]
            ]
        );
    }

    #[test]
    fn indexed_headers_answer_with_their_first_line_and_every_line_in_order() {
        let msg = b"INVITE sip:bob@192.0.2.4 SIP/2.0\r\n\
X-Extra: 1\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKtop, SIP/2.0/UDP b;branch=z9hG4bKb\r\n\
v: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKlow\r\n\
Call-ID: first@x\r\n\
i: second@x\r\n\
CSeq: 1 INVITE\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.via_branch(), Some(&b"z9hG4bKtop"[..]));
        let vias: Vec<_> = m.header_values("VIA").collect();
        assert_eq!(vias.len(), 3);
        assert!(vias[2].ends_with(b"z9hG4bKlow"));
        assert_eq!(m.call_id(), Some(&b"first@x"[..]));
        assert_eq!(m.header("x-extra"), Some(&b"1"[..]));
        assert_eq!(m.header("user-agent"), None);
        assert_eq!(m.header_values("contact").count(), 0);
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(known(name), Some(i));
            assert_eq!(known(&name.to_ascii_uppercase()), Some(i));
        }
        for (compact, i) in [
            ("v", VIA),
            ("F", FROM),
            ("t", TO),
            ("i", CALL_ID),
            ("m", CONTACT),
        ] {
            assert_eq!(known(compact.as_bytes()), Some(i), "{compact}");
        }
        assert_eq!(known(b"c"), Some(CONTENT_TYPE));
        assert_eq!(known(b"L"), Some(CONTENT_LENGTH));
        for other in [
            "x",
            "tO-",
            "cseq2",
            "callid!",
            "contacts",
            "user-agen",
            "content-lengthh",
            "fron",
            "reasom",
            "content-typf",
        ] {
            assert_eq!(known(other.as_bytes()), None, "{other}");
        }
    }

    /// The URI splitter before it was fused: each part searched on its own.
    fn parse_uri_searched(uri: &[u8]) -> (Option<&[u8]>, &[u8]) {
        let uri = trim(uri);
        let Some(colon) = find(uri, b':') else {
            return (None, uri);
        };
        let scheme = uri.get(..colon).unwrap_or_default();
        let rest = uri.get(colon + 1..).unwrap_or_default();
        if scheme.eq_ignore_ascii_case(b"tel") {
            let end = rest
                .iter()
                .position(|&b| b == b';' || b == b'?')
                .unwrap_or(rest.len());
            let number = rest.get(..end).unwrap_or_default();
            return ((!number.is_empty()).then_some(number), &[][..]);
        }
        if !(scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips")) {
            return (None, rest);
        }
        let before_q = rest
            .get(..find(rest, b'?').unwrap_or(rest.len()))
            .unwrap_or_default();
        let (user, hostport) = match find(before_q, b'@') {
            Some(at) => {
                let userinfo = before_q.get(..at).unwrap_or_default();
                let end = userinfo
                    .iter()
                    .position(|&b| b == b':' || b == b';')
                    .unwrap_or(userinfo.len());
                let user = userinfo.get(..end).unwrap_or_default();
                (
                    (!user.is_empty()).then_some(user),
                    before_q.get(at + 1..).unwrap_or_default(),
                )
            }
            None => (None, before_q),
        };
        let host = if hostport.first() == Some(&b'[') {
            let close = find(hostport, b']').unwrap_or(hostport.len());
            hostport.get(1..close).unwrap_or_default()
        } else {
            let end = hostport
                .iter()
                .position(|&b| b == b':' || b == b';')
                .unwrap_or(hostport.len());
            hostport.get(..end).unwrap_or_default()
        };
        (user, host)
    }

    #[test]
    fn uris_split_as_searched_part_by_part() {
        // After `sip:`, every string of up to 6 bytes over the bytes that matter; then
        // real URIs with one byte replaced by each of them.
        let uris = strings_over(
            b"a:;@?[]",
            6,
            b"sip:",
            &[
                b"sip:alice@example.com:5060;transport=udp",
                b"sips:bob:secret@[2001:db8::1]:5061",
                b"sip:123;phone-context=x@h?subject=a%40b",
                b"sip:[::1]:5060;lr",
                b"tel:+123;npdi",
                b" sip:host?x=@y",
            ],
        );
        let mut users = 0;
        for uri in &uris {
            let (fused, searched) = (parse_uri(uri), parse_uri_searched(uri));
            assert_eq!(fused, searched, "{:?}", String::from_utf8_lossy(uri));
            users += usize::from(fused.0.is_some());
        }
        assert!(users > 1000, "{users} URIs with a user");
    }

    /// The header-line splitter before it was fused: the first colon by search, then the
    /// trimmed name checked.
    fn header_line_find(line: &[u8]) -> Option<(&[u8], &[u8])> {
        let colon = find(line, b':')?;
        let name = trim(line.get(..colon).unwrap_or_default());
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return None;
        }
        Some((name, trim(line.get(colon + 1..).unwrap_or_default())))
    }

    #[test]
    fn header_lines_split_as_at_the_first_colon() {
        // Every string of up to 6 bytes over the bytes that matter, then real lines with
        // one byte replaced by each of them.
        let lines = strings_over(
            b"a: \t\r\n;\x80",
            6,
            b"",
            &[
                b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
                b"  Call-ID :x@y ",
                b"f:<sip:a@b>;tag=1",
                b"X-Odd-Name\t: v:w",
                b"Subject: a\r\n continued",
            ],
        );
        let mut headers = 0;
        for line in &lines {
            let (fused, found) = (header_line(line), header_line_find(line));
            assert_eq!(fused, found, "{:?}", String::from_utf8_lossy(line));
            headers += usize::from(fused.is_some());
        }
        assert!(headers > 1000, "{headers} header lines among the lines");
    }

    #[test]
    fn the_first_content_length_is_the_one_read() {
        let msg = b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\
l: 2\r\nContent-Length: 4\r\n\r\nokXX";
        assert_eq!(Message::parse(msg).unwrap().body(), b"ok");
        let (m, _) = Message::parse_datagram(msg).unwrap();
        assert_eq!((m.content_length(), m.body()), (Some(2), &b"ok"[..]));
    }

    /// The start-line parser before it was fused: `splitn` on spaces, then checks.
    fn parse_start_line_split(line: &[u8]) -> Result<StartLine<'_>, SipError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut parts = line.splitn(3, |&b| b == b' ');
        let first = parts.next().ok_or(SipError::BadStartLine)?;
        let second = parts.next().ok_or(SipError::BadStartLine)?;
        let third = parts.next().unwrap_or_default();
        if starts_with_ci(first, b"SIP/") {
            if !first.eq_ignore_ascii_case(b"SIP/2.0") || second.len() != 3 {
                return Err(SipError::BadStartLine);
            }
            let code = parse_u32(second).ok_or(SipError::BadStartLine)?;
            if !(100..=699).contains(&code) {
                return Err(SipError::BadStartLine);
            }
            return Ok(StartLine::Response {
                code: code as u16,
                reason: trim(third),
            });
        }
        if first.is_empty() || !first.iter().all(|&b| is_token(b)) {
            return Err(SipError::BadStartLine);
        }
        let uri_ok =
            !second.is_empty() && second.iter().all(|b| b.is_ascii_graphic() || *b >= 0x80);
        if !uri_ok || !trim(third).eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(SipError::BadStartLine);
        }
        Ok(StartLine::Request {
            method: Method::from_bytes(first),
            method_raw: first,
            uri: second,
        })
    }

    /// Every string of 1 to `max` bytes over `alphabet` (each after `prefix`), the empty
    /// one (just `prefix`), then each of `real` and its copies with one byte replaced by
    /// each of `alphabet`: the inputs the differential tests below run both parsers on.
    fn strings_over(alphabet: &[u8], max: u32, prefix: &[u8], real: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = vec![prefix.to_vec()];
        for len in 1..=max {
            for n in 0..alphabet.len().pow(len) {
                let (mut v, mut n) = (prefix.to_vec(), n);
                for _ in 0..len {
                    v.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                out.push(v);
            }
        }
        for r in real {
            out.push(r.to_vec());
            for at in 0..r.len() {
                for &b in alphabet {
                    let mut v = r.to_vec();
                    v[at] = b;
                    out.push(v);
                }
            }
        }
        out
    }

    #[test]
    fn start_lines_parse_as_split_on_spaces() {
        // Every string of up to 5 bytes over the bytes that matter, then real lines with
        // one byte replaced by each of them.
        let lines = strings_over(
            b" Sa\t\r\x7f\x80/2",
            5,
            b"",
            &[
                b"INVITE sip:bob@example.com SIP/2.0",
                b"ACK sip:x@[2001:db8::1]:5060 sip/2.0 \r",
                b"SIP/2.0 200 OK",
                b"SIP/2.0 486 Busy Here, really",
                b"sip/2.0 180",
                b"OPTIONS  sip:h SIP/2.0",
            ],
        );
        let mut requests = 0;
        for line in &lines {
            let (fused, split) = (parse_start_line(line), parse_start_line_split(line));
            assert_eq!(fused, split, "{:?}", String::from_utf8_lossy(line));
            requests += usize::from(matches!(fused, Ok(StartLine::Request { .. })));
        }
        assert!(requests > 50, "{requests} requests among the lines");
    }

    #[test]
    fn compact_forms_and_case_insensitive_names() {
        let msg = b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n\
v: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds7\r\n\
f: Alice <sip:alice@example.com>;tag=1928301774\r\n\
t: <sip:bob@example.com>;tag=a6c85cf\r\n\
i: a84b4c76e66710@pc33.example.com\r\n\
CSEQ: 231 BYE\r\n\
m: <sip:alice@pc33.example.com>\r\n\
l: 0\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@pc33.example.com"[..]));
        assert_eq!(m.header("I"), m.call_id());
        assert_eq!(m.header("CALL-ID"), m.call_id());
        assert_eq!(m.cseq(), Some((231, Method::Bye)));
        assert_eq!(m.via_branch(), Some(&b"z9hG4bKnashds7"[..]));
        assert_eq!(m.from().unwrap().tag, Some(&b"1928301774"[..]));
        assert_eq!(m.to().unwrap().tag, Some(&b"a6c85cf"[..]));
        assert_eq!(m.contact().unwrap().host, b"pc33.example.com");
        assert_eq!(m.content_length(), Some(0));
        assert!(m.body().is_empty());
        assert!(!m.has_sdp());
    }

    #[test]
    fn compact_content_headers_carry_sdp() {
        let msg = b"SIP/2.0 200 OK\r\n\
i: abc\r\n\
c: application/SDP\r\n\
l: 12\r\n\r\n\
v=0\r\nm=x\r\n\r\ntrailing junk";
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.body(), b"v=0\r\nm=x\r\n\r\n");
        assert_eq!(m.sdp_body(), Some(&b"v=0\r\nm=x\r\n\r\n"[..]));
    }

    #[test]
    fn multiple_via_values_and_lines() {
        let msg = b"SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP [2001:db8::35]:5062;branch=z9hG4bK-top;received=2001:db8::1,\
SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-second\r\n\
Via: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK-third\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.status(), Some(180));
        assert_eq!(
            m.start(),
            StartLine::Response {
                code: 180,
                reason: b"Ringing"
            }
        );
        assert_eq!(m.header_values("via").count(), 3);
        assert_eq!(m.header_values("v").count(), 3);
        assert_eq!(m.via_branch(), Some(&b"z9hG4bK-top"[..]));
        let last = m.header_values("Via").last().unwrap();
        assert_eq!(last, b"SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK-third");
    }

    #[test]
    fn folded_header_lines_are_joined() {
        let msg = b"OPTIONS sip:carol@chicago.com SIP/2.0\r\n\
Subject: I know you're there,\r\n\
\x20     pick up the phone\r\n\
\tand talk to me!\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com\r\n\
\x20;branch=z9hG4bKhjhs8ass877\r\n\
Call-ID: folded@x\r\n\
Content-Length: 0\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        let subj = m.header("s").unwrap();
        assert!(subj.starts_with(b"I know you're there,"));
        assert!(subj.ends_with(b"and talk to me!"));
        assert_eq!(m.via_branch(), Some(&b"z9hG4bKhjhs8ass877"[..]));
        assert_eq!(m.call_id(), Some(&b"folded@x"[..]));
    }

    #[test]
    fn bare_lf_line_endings() {
        let msg = b"ACK sip:bob@10.1.1.1 SIP/2.0\n\
Via: SIP/2.0/UDP 10.1.1.2;branch=z9hG4bK1\n\
Call-ID: lf@10.1.1.2\n\
CSeq: 1 ACK\n\
Content-Length: 0\n\n";
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.method(), Some(Method::Ack));
        assert_eq!(m.call_id(), Some(&b"lf@10.1.1.2"[..]));
        assert_eq!(m.cseq(), Some((1, Method::Ack)));
    }

    #[test]
    fn leading_crlf_and_whitespace_are_tolerated() {
        let msg = b"\r\n\r\nSIP/2.0 486 Busy Here\r\n\
Call-ID :   spaced  \r\n\
CSeq:\t2   INVITE\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.status(), Some(486));
        assert_eq!(m.call_id(), Some(&b"spaced"[..]));
        assert_eq!(m.cseq(), Some((2, Method::Invite)));
        assert_eq!(m.content_length(), None);
    }

    #[test]
    fn reason_header_and_text() {
        let msg = b"BYE sip:a@b SIP/2.0\r\n\
Call-ID: r@x\r\n\
Reason: Q.850 ;cause=16 ;text=\"Normal call clearing; ok\"\r\n\
Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        assert_eq!(
            m.reason(),
            Some(&b"Q.850 ;cause=16 ;text=\"Normal call clearing; ok\""[..])
        );
        assert_eq!(m.reason_text(), Some(&b"Normal call clearing; ok"[..]));
        assert_eq!(m.header_values("reason").count(), 2);
    }

    #[test]
    fn content_length_bounds_the_body() {
        let short = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nhello";
        assert_eq!(Message::parse(short).unwrap_err(), SipError::Truncated);
        let exact = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nhello, more";
        assert_eq!(Message::parse(exact).unwrap().body(), b"hello");
        let absent = b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: q\r\n\r\nhello";
        assert_eq!(Message::parse(absent).unwrap().body(), b"hello");
        let bad = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(Message::parse(bad).unwrap_err(), SipError::BadContentLength);
    }

    #[test]
    fn malformed_messages_are_rejected() {
        let cases: [(&[u8], SipError); 7] = [
            (b"", SipError::Truncated),
            (
                b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n",
                SipError::Truncated,
            ),
            (b"INVITE sip:a@b HTTP/1.1\r\n\r\n", SipError::BadStartLine),
            (b"INVITE SIP/2.0\r\n\r\n", SipError::BadStartLine),
            (b"SIP/2.0 20 OK\r\n\r\n", SipError::BadStartLine),
            (
                b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n",
                SipError::BadHeader,
            ),
            (
                b"SIP/2.0 200 OK\r\n folded first\r\n\r\n",
                SipError::BadHeader,
            ),
        ];
        for (msg, err) in cases {
            assert_eq!(Message::parse(msg).unwrap_err(), err, "{msg:?}");
        }
    }

    #[test]
    fn excess_headers_are_ignored_but_content_length_is_honoured() {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        let mut put = |s: &[u8]| {
            buf[n..n + s.len()].copy_from_slice(s);
            n += s.len();
        };
        put(b"NOTIFY sip:a@b SIP/2.0\r\n");
        for _ in 0..MAX_HEADERS {
            put(b"X-Pad: padding\r\n");
        }
        put(b"Call-ID: late\r\nContent-Length: 2\r\n\r\nokXX");
        let m = Message::parse(&buf[..n]).unwrap();
        assert!(m.headers_truncated());
        assert_eq!(m.headers().count(), MAX_HEADERS);
        assert_eq!(m.call_id(), None);
        assert_eq!(m.body(), b"ok");
    }

    #[test]
    fn name_addr_forms() {
        let na = NameAddr::parse(b"\"Smith, \\\"J\\\" <x>\" <sips:j.smith@example.com:5061;transport=tls>;tag=xy;expires=60").unwrap();
        assert_eq!(na.display, Some(&b"Smith, \\\"J\\\" <x>"[..]));
        assert_eq!(na.uri, b"sips:j.smith@example.com:5061;transport=tls");
        assert_eq!(na.user, Some(&b"j.smith"[..]));
        assert_eq!(na.host, b"example.com");
        assert_eq!(na.tag, Some(&b"xy"[..]));

        let tel = NameAddr::parse(b"<tel:+15551234567;phone-context=+1>;tag=9").unwrap();
        assert_eq!(tel.user, Some(&b"+15551234567"[..]));
        assert_eq!(tel.host, b"");
        assert_eq!(tel.tag, Some(&b"9"[..]));

        let pc =
            NameAddr::parse(b"Bob Smith <sip:123;phone-context=x@h.example;user=phone>").unwrap();
        assert_eq!(pc.display, Some(&b"Bob Smith"[..]));
        assert_eq!(pc.user, Some(&b"123"[..]));
        assert_eq!(pc.host, b"h.example");

        let bare = NameAddr::parse(b"sip:+49301234:secret@10.0.0.1:5060;tag=abc").unwrap();
        assert_eq!(bare.uri, b"sip:+49301234:secret@10.0.0.1:5060");
        assert_eq!(bare.user, Some(&b"+49301234"[..]));
        assert_eq!(bare.host, b"10.0.0.1");
        assert_eq!(bare.tag, Some(&b"abc"[..]));

        let hostonly = NameAddr::parse(b"<sip:proxy.example.net;lr>").unwrap();
        assert_eq!(hostonly.user, None);
        assert_eq!(hostonly.host, b"proxy.example.net");

        let nospace = NameAddr::parse(b"\"uas\"<sip:0800@example.org>").unwrap();
        assert_eq!(nospace.display, Some(&b"uas"[..]));
        assert_eq!(nospace.user, Some(&b"0800"[..]));

        assert_eq!(NameAddr::parse(b""), None);
        assert_eq!(NameAddr::parse(b"\"unterminated <sip:a@b>"), None);
        assert_eq!(NameAddr::parse(b"<sip:a@b"), None);
    }

    #[test]
    fn header_values_respect_quotes_and_angle_brackets() {
        let msg = b"REGISTER sip:registrar.example.com SIP/2.0\r\n\
Contact: \"Smith, J\" <sip:a@b;x=1,2>;q=0.7, <sip:c@d>\r\n\
Contact: *\r\n\r\n";
        let m = Message::parse(msg).unwrap();
        let mut it = m.header_values("m");
        assert_eq!(it.next(), Some(&b"\"Smith, J\" <sip:a@b;x=1,2>;q=0.7"[..]));
        assert_eq!(it.next(), Some(&b"<sip:c@d>"[..]));
        assert_eq!(it.next(), Some(&b"*"[..]));
        assert_eq!(it.next(), None);
        assert_eq!(m.contact().unwrap().display, Some(&b"Smith, J"[..]));
    }

    #[test]
    fn multipart_body_yields_sdp_part() {
        let msg = b"INVITE sip:+4930123@gw.example SIP/2.0\r\n\
Call-ID: sipi@gw\r\n\
Content-Type: multipart/mixed;boundary=\"unique-boundary-1\"\r\n\
MIME-Version: 1.0\r\n\r\n\
--unique-boundary-1\r\n\
Content-Type: application/sdp\r\n\r\n\
v=0\r\n\
c=IN IP4 192.0.2.5\r\n\
m=audio 4000 RTP/AVP 8\r\n\
\r\n\
--unique-boundary-1\r\n\
Content-Type: application/ISUP; version=itu-t92+\r\n\
Content-Disposition: signal; handling=optional\r\n\r\n\
\x01\x00\x49\x00\x00\x03\x02\x00\x07\x04\x10\x00\x33\x63\x21\x43\x00\x00\x03\r\n\
--unique-boundary-1--\r\n";
        let m = Message::parse(msg).unwrap();
        assert!(m.has_sdp());
        assert_eq!(
            m.sdp_body(),
            Some(&b"v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 4000 RTP/AVP 8\r\n"[..])
        );
    }

    #[test]
    fn multipart_without_sdp_or_with_empty_sdp() {
        let msg = b"NOTIFY sip:a@b SIP/2.0\r\n\
Content-Type: multipart/related; boundary=zz\r\n\r\n\
--zz\r\nContent-Type: text/plain\r\n\r\nhi\r\n--zz--\r\n";
        assert!(!Message::parse(msg).unwrap().has_sdp());
        let empty = b"SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\nContent-Length: 0\r\n\r\n";
        assert!(!Message::parse(empty).unwrap().has_sdp());
        let no_ct = b"SIP/2.0 200 OK\r\n\r\nv=0\r\n";
        assert!(!Message::parse(no_ct).unwrap().has_sdp());
    }

    /// Tiny deterministic PRNG so the fuzz test needs no dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// The datagram parse from a sniffed start line is the whole parse.
    fn sniffed_matches_datagram(buf: &[u8]) {
        if let Some(s) = crate::sip::sniff(buf) {
            let whole = format!("{:?}", Message::parse_datagram(buf));
            assert_eq!(format!("{:?}", Message::parse_sniffed(buf, s)), whole);
        }
    }

    fn exercise(buf: &[u8]) {
        let _ = crate::sip::looks_like_sip(buf);
        sniffed_matches_datagram(buf);
        let _ = crate::sip::frame_len(buf);
        if let Ok(m) = Message::parse(buf) {
            let _ = (m.call_id(), m.cseq(), m.from(), m.to(), m.contact());
            let _ = (m.via_branch(), m.reason_text(), m.user_agent());
            let _ = m.header_values("via").count();
            if let Some(sdp) = m.sdp_body() {
                let _ = crate::sip::sdp::parse(sdp);
            }
        }
        let _ = crate::sip::sdp::parse(buf);
    }

    #[test]
    fn every_prefix_and_mutation_parses_without_panic() {
        for cut in 0..=INVITE.len() {
            exercise(&INVITE[..cut]);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = [0u8; 1024];
        let n = INVITE.len();
        let interesting = b"\r\n \t:;,\"<>@[]=/-0123456789";
        for _ in 0..20_000 {
            buf[..n].copy_from_slice(INVITE);
            for _ in 0..(xorshift(&mut state) % 8 + 1) {
                let at = (xorshift(&mut state) as usize) % n;
                let r = xorshift(&mut state);
                buf[at] = if r & 1 == 0 {
                    interesting[(r as usize >> 1) % interesting.len()]
                } else {
                    (r >> 8) as u8
                };
            }
            let len = n - (xorshift(&mut state) as usize) % 16;
            exercise(&buf[..len]);
        }
    }

    #[test]
    fn a_sniffed_start_line_parses_as_the_whole_datagram_does() {
        for buf in [
            INVITE,
            b"\r\n\r\nSIP/2.0 180 Ringing\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\n\r\n",
            b"\nBYE sip:b@h SIP/2.0\nCall-ID: b\nCSeq: 2 BYE\n\n",
            b"OPTIONS sip:h SIP/2.0\r\nbad line\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n",
        ] {
            assert!(crate::sip::sniff(buf).is_some());
            sniffed_matches_datagram(buf);
        }
        assert!(crate::sip::sniff(b" INVITE sip:h SIP/2.0\r\n").is_none());
        assert!(crate::sip::sniff(b"\x80\x00 rtp").is_none());
    }

    const LENIENT_BASE: &str = "INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: lenient@10.0.0.1\r\nCSeq: 1 INVITE\r\n";

    fn datagram(extra: &str, body: &str) -> Vec<u8> {
        format!("{LENIENT_BASE}{extra}\r\n{body}").into_bytes()
    }

    #[test]
    fn a_datagram_with_a_bad_content_length_keeps_its_body_to_the_end() {
        for cl in ["bad", "99999", "-1", "4294967296"] {
            let m = datagram(&format!("Content-Length: {cl}\r\n"), "v=0\r\n");
            assert!(Message::parse(&m).is_err(), "strict parse refuses {cl}");
            let (msg, d) = Message::parse_datagram(&m).unwrap();
            assert!(d.bad_content_length, "{cl}");
            assert_eq!(msg.body(), b"v=0\r\n");
            assert_eq!(msg.call_id(), Some(&b"lenient@10.0.0.1"[..]));
        }
        // Missing with a body: a defect; missing without one is fine over UDP.
        let (_, d) = Message::parse_datagram(&datagram("", "v=0\r\n")).unwrap();
        assert!(d.bad_content_length);
        let (_, d) = Message::parse_datagram(&datagram("", "")).unwrap();
        assert_eq!(d, Defects::default());
        // A correct one is honoured, trailing bytes ignored.
        let ok = datagram("Content-Length: 3\r\n", "v=0\r\n");
        let (m, d) = Message::parse_datagram(&ok).unwrap();
        assert_eq!((m.body(), d), (&b"v=0"[..], Defects::default()));
    }

    #[test]
    fn bad_header_lines_are_skipped_while_call_id_and_cseq_read() {
        let m = datagram(
            "this line has no colon\r\nBad Name: x\r\nContent-Length: 0\r\n",
            "",
        );
        assert_eq!(Message::parse(&m).unwrap_err(), SipError::BadHeader);
        let (msg, d) = Message::parse_datagram(&m).unwrap();
        assert_eq!(d.bad_header_lines, 2);
        assert_eq!(msg.cseq(), Some((1, Method::Invite)));
        // Without a readable CSeq the message is not kept.
        let broken = b"BYE sip:a SIP/2.0\r\nCall-ID: x\r\nCSeq\r\n\r\n";
        assert_eq!(
            Message::parse_datagram(broken).unwrap_err(),
            SipError::BadHeader
        );
    }

    #[test]
    fn an_unterminated_header_section_ends_at_the_datagram() {
        let m = format!("{LENIENT_BASE}Max-Forwards: 70");
        let (msg, d) = Message::parse_datagram(m.as_bytes()).unwrap();
        assert!(d.unterminated);
        assert_eq!(msg.header("max-forwards"), Some(&b"70"[..]));
        assert!(msg.body().is_empty());
    }

    #[test]
    fn a_reused_slot_reads_only_the_latest_message() {
        let mut slot = MessageSlot::default();
        let (first, _) = slot.parse_datagram(INVITE).unwrap();
        assert_eq!(first.cseq(), Some((1, Method::Invite)));
        assert!(first.from().is_some());
        assert!(first.header("user-agent").is_some());
        let bye = b"BYE sip:bob@10.0.0.2 SIP/2.0\r\nCall-ID: other\r\nCSeq: 7 BYE\r\n\r\n";
        let (second, d) = slot.parse_datagram(bye).unwrap();
        assert_eq!(d, Defects::default());
        assert_eq!(second.method(), Some(Method::Bye));
        assert_eq!(second.call_id(), Some(&b"other"[..]));
        // Neither the header index nor the lazily parsed fields carry over.
        assert_eq!(second.cseq(), Some((7, Method::Bye)));
        assert_eq!(second.from(), None);
        assert_eq!(second.header("user-agent"), None);
        assert_eq!(second.headers().count(), 2);
        assert!(second.body().is_empty());
        // A failed parse leaves nothing to read; the next one starts clean.
        assert!(
            slot.parse(b"INVITE sip:x SIP/2.0\r\nCall-ID: y\r\n")
                .is_err()
        );
        let third = slot.parse(bye).unwrap();
        assert_eq!(third.headers().count(), 2);
    }
}
