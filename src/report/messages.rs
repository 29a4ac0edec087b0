//! The report's own SIP message log: every frame goes through the public decoder
//! (`wire::Decoder`, TCP reassembly, WebSocket framing) and SIP parser (`sip::Message`) a
//! second time, next to the tracker, so the ladder can show each message as sent. It is
//! bounded per call and in total; what it does not keep is counted. The sensor's hot path
//! never sees this code.

use crate::sip::{self, Message, StartLine, sdp};
use crate::track::call;
use crate::track::event::Ts;
use crate::track::sip_tcp;
use crate::wire::{Decoder, LinkType, TcpStreams, Transport, websocket};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Messages kept per Call-ID; later ones are counted only.
pub const PER_CALL_MAX: usize = 512;
/// Call-IDs with a log; messages of further Call-IDs are counted only.
pub const CALLS_MAX: usize = 200_000;
/// Bytes of a message's text kept for the "show message" view.
pub const TEXT_MAX: usize = 8 * 1024;

/// The SDP of one message, summarised for an arrow's label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SdpSummary {
    /// `audio 10.0.0.1:4000 PCMU sendrecv`, one per `m=` line.
    pub media: Vec<String>,
    pub hold: bool,
}

/// One SIP message as seen on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Logged {
    pub ts: Ts,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// `INVITE` or `180 Ringing`.
    pub label: String,
    pub request: bool,
    /// `CSeq` as written (`1 INVITE`).
    pub cseq: String,
    /// Same start line, CSeq, Via branch and To tag as an earlier message of the call.
    pub retransmission: bool,
    pub sdp: Option<SdpSummary>,
    /// The message text (lossy UTF-8), cut at [`TEXT_MAX`].
    pub text: String,
}

/// Every message of one Call-ID.
#[derive(Debug, Default)]
pub struct CallLog {
    pub messages: Vec<Logged>,
    /// Messages seen, kept or not.
    pub seen: u64,
    seen_keys: HashSet<u64>,
}

/// What the log could not keep or read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogCounters {
    pub messages: u64,
    pub malformed: u64,
    pub without_call_id: u64,
    /// Messages of a call past [`PER_CALL_MAX`].
    pub over_call_limit: u64,
    /// Messages of Call-IDs past [`CALLS_MAX`].
    pub over_calls_limit: u64,
}

pub struct SipLog {
    decoder: Decoder,
    tcp: TcpStreams,
    sctp: crate::wire::sctp::SctpReassembler,
    ws_scratch: Box<[u8]>,
    calls: HashMap<String, CallLog>,
    pub counters: LogCounters,
}

impl Default for SipLog {
    fn default() -> Self {
        Self::new()
    }
}

impl SipLog {
    pub fn new() -> SipLog {
        let buf = crate::track::tracker::TCP_BUFFER_DEFAULT;
        SipLog {
            decoder: Decoder::new(
                crate::track::tracker::FRAGMENTS_DEFAULT,
                Duration::from_secs(30),
            ),
            tcp: TcpStreams::new(
                crate::track::tracker::TCP_STREAMS_DEFAULT,
                buf,
                Duration::from_secs(300),
            ),
            sctp: crate::wire::sctp::SctpReassembler::new(),
            ws_scratch: vec![0; buf].into_boxed_slice(),
            calls: HashMap::new(),
            counters: LogCounters::default(),
        }
    }

    pub fn call(&self, call_id: &str) -> Option<&CallLog> {
        self.calls.get(call_id)
    }

    /// Feeds one frame, as the tracker is fed.
    pub fn on_frame(&mut self, now: Instant, link: LinkType, frame: &[u8]) {
        let SipLog {
            decoder,
            tcp,
            sctp,
            ws_scratch,
            calls,
            counters,
        } = self;
        let Ok(Some(pkt)) = decoder.decode(now, link, frame) else {
            return;
        };
        let ts = Ts::from_instant(now);
        let key = pkt.flow();
        match pkt.transport {
            Transport::Udp { payload, .. } => {
                if sip::looks_like_sip(payload) {
                    record(calls, counters, ts, key.src, key.dst, payload);
                }
            }
            Transport::Sctp { chunks, .. } => {
                // One message per DATA chunk (fragments rebuilt), as the tracker reads it.
                let mut sc = crate::wire::sctp::SctpCounters::default();
                sctp.packet(key, chunks, &mut sc, |_ppid, msg| {
                    let sip = sip::looks_like_sip(msg);
                    if sip {
                        record(calls, counters, ts, key.src, key.dst, msg);
                    }
                    sip
                });
            }
            Transport::Tcp {
                seq,
                flags,
                payload,
                ..
            } => {
                if !tcp.contains(&key)
                    && !sip::looks_like_sip(payload)
                    && !websocket::is_upgrade(payload)
                {
                    return;
                }
                tcp.segment(
                    now,
                    key,
                    seq,
                    flags,
                    payload,
                    sip_tcp::framer(&core::cell::Cell::new(0)),
                    |msg| match sip_tcp::open(msg, ws_scratch) {
                        sip_tcp::Message::Sip(sip) | sip_tcp::Message::WebSocket(Some(sip)) => {
                            record(calls, counters, ts, key.src, key.dst, sip)
                        }
                        sip_tcp::Message::WebSocket(None) => counters.malformed += 1,
                        sip_tcp::Message::Other => {}
                    },
                );
            }
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn record(
    calls: &mut HashMap<String, CallLog>,
    c: &mut LogCounters,
    ts: Ts,
    src: SocketAddr,
    dst: SocketAddr,
    bytes: &[u8],
) {
    let Ok(msg) = Message::parse(bytes) else {
        c.malformed += 1;
        return;
    };
    c.messages += 1;
    let Some(id) = msg.call_id() else {
        c.without_call_id += 1;
        return;
    };
    let id = lossy(id);
    if !calls.contains_key(&id) && calls.len() >= CALLS_MAX {
        c.over_calls_limit += 1;
        return;
    }
    let log = calls.entry(id).or_default();
    log.seen += 1;
    if log.messages.len() >= PER_CALL_MAX {
        c.over_call_limit += 1;
        return;
    }
    log.messages
        .push(logged(&msg, ts, src, dst, bytes, &mut log.seen_keys));
}

fn logged(
    msg: &Message<'_>,
    ts: Ts,
    src: SocketAddr,
    dst: SocketAddr,
    bytes: &[u8],
    seen: &mut HashSet<u64>,
) -> Logged {
    let label = match msg.start() {
        StartLine::Request { method_raw, .. } => lossy(method_raw),
        StartLine::Response { code, reason } => format!("{code} {}", lossy(reason)),
    };
    let text = bytes.get(..TEXT_MAX).unwrap_or(bytes);
    Logged {
        ts,
        src,
        dst,
        label,
        request: msg.is_request(),
        cseq: msg.header("CSeq").map(lossy).unwrap_or_default(),
        retransmission: !seen.insert(call::fingerprint(msg)),
        sdp: msg
            .sdp_body()
            .and_then(|b| sdp::parse(b).ok())
            .map(|s| summarise(&s)),
        text: lossy(text),
    }
}

/// `audio 10.0.0.1:4000 PCMU sendrecv` per media line.
pub fn summarise(s: &sdp::Sdp) -> SdpSummary {
    let media = s
        .media
        .iter()
        .map(|m| {
            let kind = match m.kind {
                sdp::MediaKind::Audio => "audio",
                sdp::MediaKind::Video => "video",
                sdp::MediaKind::Image => "image",
                sdp::MediaKind::Application => "application",
                sdp::MediaKind::Other => "other",
            };
            let addr = m.addr.map(|a| a.to_string()).unwrap_or_else(|| "?".into());
            let codec = m
                .payload_types
                .first()
                .map(|&pt| {
                    m.rtpmap_for(pt)
                        .map(|r| r.encoding.to_string())
                        .or_else(|| crate::rtp::codec::static_pt(pt).map(|(n, _)| n.to_string()))
                        .unwrap_or_else(|| format!("pt{pt}"))
                })
                .unwrap_or_else(|| m.proto.to_string());
            let dir = match m.direction {
                sdp::Direction::SendRecv => "sendrecv",
                sdp::Direction::SendOnly => "sendonly",
                sdp::Direction::RecvOnly => "recvonly",
                sdp::Direction::Inactive => "inactive",
            };
            format!("{kind} {addr}:{} {codec} {dir}", m.port)
        })
        .collect();
    SdpSummary {
        media,
        hold: s
            .media
            .iter()
            .any(|m| m.kind == sdp::MediaKind::Audio && m.is_hold()),
    }
}

impl SipLog {
    /// Hands over one Call-ID's log (the report takes each once).
    pub fn take(&mut self, call_id: &str) -> Option<CallLog> {
        self.calls.remove(call_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::Builder;

    const INVITE: &[u8] =
        b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
        From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn a_message_sent_again_is_logged_as_a_retransmission_by_the_trackers_rule() {
        let (a, b) = (
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:5060".parse().unwrap(),
        );
        let mut fx = Builder::new();
        fx.udp(1_000_000, a, b, INVITE);
        fx.udp(1_500_000, a, b, INVITE);
        let other_branch = String::from_utf8_lossy(INVITE).replace("bK1", "bK2");
        fx.udp(2_000_000, a, b, other_branch.as_bytes());
        let mut log = SipLog::new();
        for (ts, frame) in fx.frames() {
            log.on_frame(Instant::from_micros(ts), LinkType::Ethernet, frame);
        }
        let marks: Vec<bool> = log
            .call("r1")
            .unwrap()
            .messages
            .iter()
            .map(|m| m.retransmission)
            .collect();
        assert_eq!(marks, [false, true, false]);
    }
}
