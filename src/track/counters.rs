//! Everything the tracker counts. Printed as the `summary` line of `replay` and published in
//! `health`: a malformed packet is never silently lost, it shows up here.

use crate::table::TableStats;
use crate::wire::sctp::SctpCounters;
use crate::wire::{TcpCounters, WireCounters};
use serde::{Deserialize, Serialize};

/// SIP request methods we count by name (`other` takes the rest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodCounts {
    pub invite: u64,
    pub ack: u64,
    pub bye: u64,
    pub cancel: u64,
    pub register: u64,
    pub options: u64,
    pub prack: u64,
    pub update: u64,
    pub info: u64,
    pub subscribe: u64,
    pub notify: u64,
    pub refer: u64,
    pub message: u64,
    pub publish: u64,
    pub other: u64,
}

/// SIP responses by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseCounts {
    pub r1xx: u64,
    pub r2xx: u64,
    pub r3xx: u64,
    pub r4xx: u64,
    pub r5xx: u64,
    pub r6xx: u64,
}

/// Calls by how they ended (or that they are still open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    /// INVITE dialogs seen (one per Call-ID, auth challenges included).
    pub attempted: u64,
    /// Of which first seen by a response or CANCEL (the INVITE was not captured).
    pub joined_late: u64,
    pub answered: u64,
    pub ended: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub timed_out: u64,
    pub evicted: u64,
    /// New calls refused because the table was full of answered calls.
    pub rejected: u64,
    /// Still open at the end (closed with `sensor_stopped`).
    pub open_at_stop: u64,
    /// Call-IDs longer than the kept maximum (truncated, still tracked).
    pub call_id_truncated: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterCounts {
    pub requests: u64,
    pub ok: u64,
    /// 401/407 challenges.
    pub challenged: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipCounts {
    /// Messages parsed (retransmissions included).
    pub messages: u64,
    pub requests: MethodCounts,
    pub responses: ResponseCounts,
    /// Messages identical to one already seen in the same call (retransmissions, or the
    /// same message captured on two legs).
    pub retransmissions: u64,
    /// Looked like SIP but did not parse.
    pub malformed: u64,
    /// Parsed, but without a Call-ID or CSeq.
    pub missing_headers: u64,
    /// Over UDP, WebSocket or SCTP: Content-Length missing with a body, non-numeric or past
    /// the datagram; the body was taken to the datagram's end and the message kept.
    pub bad_content_length: u64,
    /// Over UDP, WebSocket or SCTP: messages kept although header lines did not parse
    /// (skipped) or the header section was unterminated; Call-ID and CSeq read.
    pub header_defects: u64,
    /// Over TCP: messages larger than `sip::MAX_MESSAGE`, skipped unread.
    pub oversize: u64,
    /// Messages in SCTP DATA chunks.
    pub over_sctp: u64,
    /// SDP bodies that did not parse.
    pub sdp_malformed: u64,
    /// Messages over TCP (after stream reassembly).
    pub over_tcp: u64,
    /// Of which inside WebSocket frames (RFC 7118).
    pub over_websocket: u64,
    /// TLS records on SIP ports: signalling we cannot read.
    pub tls_records: u64,
    /// Responses and in-dialog requests for Call-IDs we do not track.
    pub unmatched: u64,
    pub register: RegisterCounts,
}

/// The whole set, as printed in `summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub frames: u64,
    pub bytes: u64,
    /// Frames that decoded to UDP or TCP.
    pub decoded: u64,
    /// Frames whose timestamp went backwards (processed at the tracker's current time).
    pub time_went_backwards: u64,
    /// Byte-identical mirror copies of a frame dropped before decoding (filled by the
    /// capture edge, `capture::dedup`: `replay` for its file, `run` per interface in
    /// `health`); counted but analysed with `--keep-duplicates`.
    pub mirror_duplicates: u64,
    pub wire: WireCounters,
    pub tcp: TcpCounters,
    pub sctp: SctpCounters,
    pub sip: SipCounts,
    pub calls: CallCounts,
    pub rtp: RtpCounts,
    pub tables: TableCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtpCounts {
    /// RTP packets accounted to a stream.
    pub packets: u64,
    /// Of which on endpoints learned from SDP.
    pub signalled: u64,
    /// Of which found by the heuristic.
    pub heuristic: u64,
    pub rtcp_packets: u64,
    pub rtcp_malformed: u64,
    /// UDP payloads on a media endpoint that were not valid RTP/RTCP.
    pub malformed: u64,
    /// UDP payloads that were neither SIP nor recognised media.
    pub other_udp: u64,
    /// TURN ChannelData and Send/Data indications whose data went to media (UDP or TCP).
    #[serde(default)]
    pub turn_relayed: u64,
    /// RTP/RTCP packets framed out of TCP (RFC 4571), TURN over TCP excluded.
    #[serde(default)]
    pub over_tcp: u64,
    pub streams_started: u64,
    pub streams_ended: u64,
    pub dtmf_events: u64,
    /// `media_health` events emitted (one-way, no media after answer, media stopped).
    pub health_events: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    pub calls: TableStats,
    pub media_endpoints: TableStats,
    pub streams: TableStats,
    pub fragments: TableStats,
    pub tcp_streams: TableStats,
    /// TCP connections carrying RFC 4571 RTP or TURN.
    #[serde(default)]
    pub media_tcp_streams: TableStats,
}
