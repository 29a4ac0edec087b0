//! SDP (RFC 4566 / RFC 8866) reader for offer/answer bodies: just what the
//! tracker needs to predict RTP/RTCP flows and label codecs.

use core::net::IpAddr;
use core::str::FromStr;

use super::text::{find, parse_u32, split_lines, trim};

pub const MAX_MEDIA: usize = 8;
pub const MAX_PT: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpError {
    /// No `v=` line first: not an SDP body.
    NotSdp,
}

impl core::fmt::Display for SdpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("body is not SDP (no leading v= line)")
    }
}

impl core::error::Error for SdpError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    /// RFC 4566 §6: the default when no direction attribute is present.
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    Image,
    Application,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    /// Encoding name as written (case kept), cut to 16 bytes.
    pub encoding: heapless::String<16>,
    pub clock_rate: u32,
    /// Audio channels; 1 when omitted.
    pub channels: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaDesc {
    pub kind: MediaKind,
    /// 0 means the stream is rejected/disabled (RFC 3264 §6).
    pub port: u16,
    /// Transport as written, cut to 16 bytes (`UDP/TLS/RTP/SAVPF` loses its
    /// last letter).
    pub proto: heapless::String<16>,
    /// Media-level `c=`, else session-level `c=`.
    pub addr: Option<IpAddr>,
    /// Numeric formats of the `m=` line in offer order (non-numeric formats
    /// such as `t38` are skipped); the first [`MAX_PT`] only.
    pub payload_types: heapless::Vec<u8, MAX_PT>,
    pub rtpmap: heapless::Vec<RtpMap, MAX_PT>,
    pub ptime: Option<u16>,
    /// Media-level attribute, else session-level, else sendrecv.
    pub direction: Direction,
    /// `a=rtcp:` port (RFC 3605); `None` means the default RTP port + 1.
    pub rtcp_port: Option<u16>,
    pub rtcp_addr: Option<IpAddr>,
    pub rtcp_mux: bool,
}

impl MediaDesc {
    /// On hold: sendonly/inactive, or the RFC 2543 style `c=0.0.0.0`.
    pub fn is_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self.addr.is_some_and(|a| a.is_unspecified())
    }

    pub fn rtpmap_for(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmap.iter().find(|m| m.pt == pt)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Sdp {
    /// Address in the `o=` line.
    pub origin_addr: Option<IpAddr>,
    /// Session-level `c=`.
    pub conn: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Direction,
    /// The first [`MAX_MEDIA`] `m=` sections, in order.
    pub media: heapless::Vec<MediaDesc, MAX_MEDIA>,
}

/// Where `a=`/`c=` lines currently apply.
enum Scope {
    Session,
    /// Index into `Sdp::media`.
    Media(usize),
    /// A malformed or over-cap `m=` section: its attributes are dropped.
    Ignored,
}

/// Parses an SDP body. Only a body that does not start with `v=` is an error;
/// malformed lines are skipped, malformed `m=` sections ignored whole.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let mut sdp = Sdp::default();
    parse_into(body, &mut sdp)?;
    Ok(sdp)
}

/// [`parse`] into `sdp`, which is overwritten: the tracker parses every offer into one
/// buffer instead of moving the ~5 KB result (room for [`MAX_MEDIA`] sections) around.
pub fn parse_into(body: &[u8], sdp: &mut Sdp) -> Result<(), SdpError> {
    sdp.origin_addr = None;
    sdp.conn = None;
    sdp.direction = Direction::default();
    sdp.media.clear();
    let mut lines = split_lines(body).map(trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(l) if l.starts_with(b"v=") => {}
        _ => return Err(SdpError::NotSdp),
    }
    let mut scope = Scope::Session;
    // Media-level overrides, resolved once the section is complete.
    let mut media_dir: [Option<Direction>; MAX_MEDIA] = [None; MAX_MEDIA];
    for line in lines {
        let (Some(&kind), Some(b'=')) = (line.first(), line.get(1)) else {
            continue;
        };
        let value = line.get(2..).unwrap_or_default();
        match kind {
            b'o' => sdp.origin_addr = origin_addr(value),
            b'c' => {
                let addr = connection_addr(value);
                match scope {
                    Scope::Session => sdp.conn = addr,
                    Scope::Media(i) => {
                        if let Some(m) = sdp.media.get_mut(i) {
                            m.addr = addr;
                        }
                    }
                    Scope::Ignored => {}
                }
            }
            b'm' => {
                scope = match media_line(value) {
                    Some(m) => {
                        let i = sdp.media.len();
                        match sdp.media.push(m) {
                            Ok(()) => Scope::Media(i),
                            Err(_) => Scope::Ignored,
                        }
                    }
                    None => Scope::Ignored,
                };
            }
            b'a' => {
                let (name, arg) = match find(value, b':') {
                    Some(i) => (
                        value.get(..i).unwrap_or_default(),
                        value.get(i + 1..).unwrap_or_default(),
                    ),
                    None => (value, &[][..]),
                };
                let dir = match name {
                    b"sendrecv" => Some(Direction::SendRecv),
                    b"sendonly" => Some(Direction::SendOnly),
                    b"recvonly" => Some(Direction::RecvOnly),
                    b"inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                match scope {
                    Scope::Session => {
                        if let Some(d) = dir {
                            sdp.direction = d;
                        }
                    }
                    Scope::Media(i) => {
                        if let Some(d) = dir {
                            if let Some(slot) = media_dir.get_mut(i) {
                                *slot = Some(d);
                            }
                        } else if let Some(m) = sdp.media.get_mut(i) {
                            media_attr(m, name, arg);
                        }
                    }
                    Scope::Ignored => {}
                }
            }
            _ => {}
        }
    }
    // Session-level c= and direction may legally only precede m= lines, but
    // resolving at the end keeps us right even for sloppy generators.
    for (m, dir) in sdp.media.iter_mut().zip(media_dir) {
        if m.addr.is_none() {
            m.addr = sdp.conn;
        }
        m.direction = dir.unwrap_or(sdp.direction);
    }
    Ok(())
}

fn media_attr(m: &mut MediaDesc, name: &[u8], arg: &[u8]) {
    match name {
        b"rtpmap" => {
            if let Some(map) = rtpmap(arg) {
                // Later duplicates for the same PT are ignored.
                if m.rtpmap_for(map.pt).is_none() {
                    let _ = m.rtpmap.push(map);
                }
            }
        }
        b"ptime" => {
            // Some stacks write "20.0"; keep the integer milliseconds.
            let int = arg.split(|&b| b == b'.').next().unwrap_or_default();
            m.ptime = parse_u32(trim(int)).and_then(|v| u16::try_from(v).ok());
        }
        b"rtcp" => {
            let mut it = words(arg);
            m.rtcp_port = it.next().and_then(parse_u16);
            if let (Some(b"IN"), Some(_), Some(a)) = (it.next(), it.next(), it.next()) {
                m.rtcp_addr = parse_ip(a);
            }
        }
        b"rtcp-mux" => m.rtcp_mux = true,
        _ => {}
    }
}

fn words(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty())
}

fn parse_u16(s: &[u8]) -> Option<u16> {
    parse_u32(s).and_then(|v| u16::try_from(v).ok())
}

impl MediaDesc {
    /// RTP over TCP with RFC 4571 framing: `TCP/RTP/AVP` and its profiles (`TCP/RTP/AVPF`,
    /// `TCP/RTP/SAVP`; RFC 4571 §3), also behind TLS (`TCP/TLS/RTP/SAVP`).
    pub fn rtp_over_tcp(&self) -> bool {
        let p = self.proto.as_bytes();
        let prefix = |s: &[u8]| p.get(..s.len()).is_some_and(|h| h.eq_ignore_ascii_case(s));
        prefix(b"TCP/RTP/") || prefix(b"TCP/TLS/RTP/")
    }
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`
fn media_line(v: &[u8]) -> Option<MediaDesc> {
    let mut it = words(v);
    let kind = match it.next()? {
        b"audio" => MediaKind::Audio,
        b"video" => MediaKind::Video,
        b"image" => MediaKind::Image,
        b"application" => MediaKind::Application,
        _ => MediaKind::Other,
    };
    let port_field = it.next()?;
    let port = parse_u16(port_field.split(|&b| b == b'/').next()?)?;
    let proto = truncated_string(it.next()?);
    let mut payload_types = heapless::Vec::new();
    for fmt in it {
        if let Some(pt) = parse_u32(fmt).and_then(|v| u8::try_from(v).ok())
            && payload_types.push(pt).is_err()
        {
            break;
        }
    }
    Some(MediaDesc {
        kind,
        port,
        proto,
        addr: None,
        payload_types,
        rtpmap: heapless::Vec::new(),
        ptime: None,
        direction: Direction::SendRecv,
        rtcp_port: None,
        rtcp_addr: None,
        rtcp_mux: false,
    })
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`
fn rtpmap(arg: &[u8]) -> Option<RtpMap> {
    let mut it = words(arg);
    let pt = u8::try_from(parse_u32(it.next()?)?).ok()?;
    let mut enc = it.next()?.split(|&b| b == b'/');
    let encoding = truncated_string(enc.next()?);
    let clock_rate = parse_u32(enc.next()?)?;
    let channels = match enc.next() {
        Some(c) => u8::try_from(parse_u32(c)?).ok()?,
        None => 1,
    };
    Some(RtpMap {
        pt,
        encoding,
        clock_rate,
        channels,
    })
}

fn truncated_string<const N: usize>(s: &[u8]) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for &b in s.iter().filter(|b| b.is_ascii_graphic()) {
        if out.push(char::from(b)).is_err() {
            break;
        }
    }
    out
}

/// `o=<user> <sess-id> <sess-version> IN <IP4|IP6> <addr>`
fn origin_addr(v: &[u8]) -> Option<IpAddr> {
    let mut it = words(v).skip(3);
    (it.next()? == b"IN").then_some(())?;
    it.next()?;
    parse_ip(it.next()?)
}

/// `c=IN IP4 224.2.1.1/127/3`: TTL and count suffixes ignored; FQDNs → None.
fn connection_addr(v: &[u8]) -> Option<IpAddr> {
    let mut it = words(v);
    (it.next()? == b"IN").then_some(())?;
    it.next()?;
    parse_ip(it.next()?.split(|&b| b == b'/').next()?)
}

/// Numeric IPv4/IPv6 address, tolerating `[v6]` brackets seen in the wild.
fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    let s = s
        .strip_prefix(b"[")
        .and_then(|r| r.strip_suffix(b"]"))
        .unwrap_or(s);
    IpAddr::from_str(core::str::from_utf8(s).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const OFFER: &[u8] = b"v=0\r\n\
o=- 1928 1 IN IP4 192.0.2.10\r\n\
s=call\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
a=sendrecv\r\n\
m=audio 49170 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=rtcp:49171 IN IP4 198.51.100.7\r\n\
m=video 51372 RTP/AVP 99\r\n\
c=IN IP4 198.51.100.9/127\r\n\
a=rtpmap:99 H264/90000\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
m=image 16756 udptl t38\r\n\
a=T38FaxVersion:0\r\n";

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn parses_audio_video_and_t38_sections() {
        let sdp = parse(OFFER).unwrap();
        assert_eq!(sdp.origin_addr, v4(192, 0, 2, 10));
        assert_eq!(sdp.conn, v4(192, 0, 2, 10));
        assert_eq!(sdp.media.len(), 3);

        let audio = &sdp.media[0];
        assert_eq!(audio.kind, MediaKind::Audio);
        assert_eq!(audio.port, 49170);
        assert_eq!(audio.proto.as_str(), "RTP/AVP");
        assert_eq!(audio.addr, v4(192, 0, 2, 10));
        assert_eq!(audio.payload_types.as_slice(), &[8, 0, 18, 101]);
        assert_eq!(audio.rtpmap.len(), 4);
        let te = audio.rtpmap_for(101).unwrap();
        assert_eq!(te.encoding.as_str(), "telephone-event");
        assert_eq!((te.clock_rate, te.channels), (8000, 1));
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(audio.direction, Direction::SendRecv);
        assert_eq!(audio.rtcp_port, Some(49171));
        assert_eq!(audio.rtcp_addr, v4(198, 51, 100, 7));
        assert!(!audio.rtcp_mux);
        assert!(!audio.is_hold());

        let video = &sdp.media[1];
        assert_eq!(video.kind, MediaKind::Video);
        assert_eq!(video.addr, v4(198, 51, 100, 9));
        assert_eq!(video.direction, Direction::RecvOnly);
        assert!(video.rtcp_mux);
        assert_eq!(video.rtpmap_for(99).unwrap().clock_rate, 90000);
        assert_eq!(video.rtpmap_for(8), None);

        let image = &sdp.media[2];
        assert_eq!(image.kind, MediaKind::Image);
        assert_eq!(image.proto.as_str(), "udptl");
        assert!(image.payload_types.is_empty());
        assert_eq!(image.addr, v4(192, 0, 2, 10));
    }

    #[test]
    fn hold_by_direction_or_null_address() {
        let sendonly = b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";
        assert!(parse(sendonly).unwrap().media[0].is_hold());
        let session_inactive =
            b"v=0\r\na=inactive\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
        let s = parse(session_inactive).unwrap();
        assert_eq!(s.direction, Direction::Inactive);
        assert_eq!(s.media[0].direction, Direction::Inactive);
        assert!(s.media[0].is_hold());
        let override_ = b"v=0\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
        assert!(!parse(override_).unwrap().media[0].is_hold());
        let rfc2543 = b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert!(parse(rfc2543).unwrap().media[0].is_hold());
        let recvonly = b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n";
        assert!(!parse(recvonly).unwrap().media[0].is_hold());
    }

    #[test]
    fn ipv6_addresses_with_and_without_brackets() {
        let body = b"v=0\n\
o=user1 53655765 2353687637 IN IP6 [2001:db8::15]\n\
c=IN IP6 2001:db8::4334\n\
m=audio 30002 RTP/AVP 100 101\n\
a=rtpmap:100 AMR-WB/16000/1\n\
a=rtcp:30003 IN IP6 2001:db8::4335\n";
        let sdp = parse(body).unwrap();
        let ip = |s: &str| Some(IpAddr::V6(s.parse::<Ipv6Addr>().unwrap()));
        assert_eq!(sdp.origin_addr, ip("2001:db8::15"));
        assert_eq!(sdp.media[0].addr, ip("2001:db8::4334"));
        assert_eq!(sdp.media[0].rtcp_addr, ip("2001:db8::4335"));
        assert_eq!(
            sdp.media[0].rtpmap_for(100).unwrap().encoding.as_str(),
            "AMR-WB"
        );
    }

    #[test]
    fn caps_keep_the_first_media_and_payload_types() {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        let mut put = |s: &[u8]| {
            buf[n..n + s.len()].copy_from_slice(s);
            n += s.len();
        };
        put(b"v=0\r\nc=IN IP4 10.0.0.1\r\n");
        put(b"m=audio 1000 RTP/AVP 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n");
        for i in 1..=(MAX_MEDIA as u8 + 2) {
            put(b"m=audio 2");
            put(&[b'0' + i / 10, b'0' + i % 10]);
            put(b"0 RTP/AVP 0\r\na=sendonly\r\n");
        }
        let sdp = parse(&buf[..n]).unwrap();
        assert_eq!(sdp.media.len(), MAX_MEDIA);
        assert_eq!(sdp.media[0].payload_types.len(), MAX_PT);
        assert_eq!(sdp.media[0].payload_types[MAX_PT - 1], 15);
        assert_eq!(sdp.media[1].port, 2010);
        assert_eq!(sdp.media[MAX_MEDIA - 1].port, 2070);
    }

    #[test]
    fn long_tokens_are_truncated_not_rejected() {
        let body = b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtpmap:112 averyveryverylongcodecname/8000\r\n";
        let m = &parse(body).unwrap().media[0];
        assert_eq!(m.proto.as_str(), "UDP/TLS/RTP/SAVP");
        assert_eq!(m.rtpmap_for(111).unwrap().channels, 2);
        assert_eq!(
            m.rtpmap_for(112).unwrap().encoding.as_str(),
            "averyveryverylon"
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let body = b"v=0\r\n\
c=IN IP4 not.an.address\r\n\
m=audio notaport RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=audio 5004/2 RTP/AVP 0 300 8\r\n\
a=ptime:20.0\r\n\
a=rtpmap:8 PCMA\r\n\
a=rtcp:99999\r\n\
garbage\r\n";
        let sdp = parse(body).unwrap();
        assert_eq!(sdp.conn, None);
        assert_eq!(sdp.media.len(), 1);
        let m = &sdp.media[0];
        assert_eq!(m.port, 5004);
        assert_eq!(m.payload_types.as_slice(), &[0, 8]);
        assert_eq!(m.ptime, Some(20));
        assert!(m.rtpmap.is_empty());
        assert_eq!(m.rtcp_port, None);
        assert_eq!(m.addr, None);
    }

    #[test]
    fn non_sdp_bodies_are_rejected() {
        assert_eq!(parse(b""), Err(SdpError::NotSdp));
        assert_eq!(parse(b"Signal=5\r\n"), Err(SdpError::NotSdp));
        assert_eq!(parse(b"\r\n\r\n"), Err(SdpError::NotSdp));
        assert!(parse(b"\r\nv=0\r\n").is_ok());
    }

    #[test]
    fn tcp_rtp_avp_is_rtp_over_tcp() {
        let body = b"v=0\r\nc=IN IP4 10.0.9.9\r\nm=audio 5004 TCP/RTP/AVP 0\r\n\
a=setup:passive\r\na=connection:new\r\nm=audio 5006 RTP/AVP 0\r\n\
m=audio 9 TCP/TLS/RTP/SAVP 0\r\n";
        let s = parse(body).unwrap();
        let m: Vec<_> = s.media.iter().collect();
        assert_eq!((m[0].port, m[0].proto.as_str()), (5004, "TCP/RTP/AVP"));
        assert!(m[0].rtp_over_tcp() && !m[1].rtp_over_tcp() && m[2].rtp_over_tcp());
    }
}
