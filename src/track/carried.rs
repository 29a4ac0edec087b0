//! Media carried inside another protocol, handed to `media` like any UDP stream:
//! * TURN (RFC 8656) on UDP or TCP 3478: ChannelData and Send/Data indications;
//! * RTP/RTCP over TCP with RFC 4571 framing: on a connection to or from an endpoint SDP
//!   announced (`TCP/RTP/AVP`), or unannounced when a segment is whole framed RTP packets.
//!
//! Streams are keyed, and reported, by the addresses on the wire: for TURN the client and
//! the TURN server (the leg the mirror sees, as Wireshark's `rtp,streams` shows it); the
//! peer behind the relay is in the indications' XOR-PEER-ADDRESS only and is not reported.
//! Media TCP connections get their own small reassembly table, so RTP never competes with
//! SIP for buffers.

use crate::track::counters::Counters;
use crate::track::event::EventSink;
use crate::track::media::{CallRef, Media, Seen};
use crate::wire::{FlowKey, TcpFlags, TcpStreams, rfc4571, turn};
use core::net::SocketAddr;
use embassy_time::{Duration, Instant};

/// Concurrent TCP connections carrying media (RFC 4571 or TURN).
pub const MEDIA_TCP_STREAMS: usize = 64;
/// Reassembly buffer per direction: a framed voice packet is a few hundred bytes, a TURN
/// message at most a path MTU in practice; longer ones are dropped, counted by TCP.
pub const MEDIA_TCP_BUFFER: usize = 4096;

/// Heap bytes of the media TCP table.
pub fn memory_bytes() -> usize {
    TcpStreams::memory_bytes(MEDIA_TCP_STREAMS, MEDIA_TCP_BUFFER)
}

pub fn media_tcp(idle: Duration) -> TcpStreams {
    TcpStreams::new(MEDIA_TCP_STREAMS, MEDIA_TCP_BUFFER, idle)
}

/// A UDP datagram on the TURN port relaying data: the data goes to media as a packet
/// between `src` and `dst`. `None`: not TURN-relayed data (other STUN messages included),
/// for the caller to handle as plain UDP.
pub fn on_udp(
    now: Instant,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    media: &mut Media,
    counters: &mut Counters,
    out: &mut impl EventSink,
) -> Option<Seen> {
    if !turn::on_turn_port(src.port(), dst.port()) {
        return None;
    }
    let relayed = turn::relayed(payload)?;
    counters.rtp.turn_relayed += 1;
    Some(media.on_carried(now, src, dst, relayed.data(), counters, out))
}

/// The tables a media TCP segment touches.
pub struct TcpMedia<'a> {
    pub streams: &'a mut TcpStreams,
    pub media: &'a mut Media,
    pub counters: &'a mut Counters,
}

impl TcpMedia<'_> {
    /// A TCP segment of a connection that is not SIP. A connection is taken on when it is
    /// on the TURN port and starts with a whole TURN message, when SDP announced one of
    /// its ends, or when the segment is whole RFC 4571 RTP packets; `media_seen` is told
    /// of every packet of a known call.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        self,
        now: Instant,
        key: FlowKey,
        seq: u32,
        flags: TcpFlags,
        payload: &[u8],
        mut media_seen: impl FnMut(CallRef),
        out: &mut impl EventSink,
    ) {
        let TcpMedia {
            streams,
            media,
            counters,
        } = self;
        let over_turn = turn::on_turn_port(key.src.port(), key.dst.port());
        if !streams.contains(&key) {
            let take = if over_turn {
                matches!(turn::frame_tcp(payload), crate::wire::Framing::Complete(_))
            } else {
                !payload.is_empty()
                    && (media.is_endpoint(key.src, key.dst)
                        || rfc4571::looks_like_framed_rtp(payload))
            };
            if !take {
                return;
            }
        }
        let framer = if over_turn {
            turn::frame_tcp
        } else {
            rfc4571::frame
        };
        streams.segment(now, key, seq, flags, payload, framer, |msg| {
            let packet = if over_turn {
                match turn::relayed(msg) {
                    Some(r) => {
                        counters.rtp.turn_relayed += 1;
                        r.data()
                    }
                    None => return, // allocate, refresh, permissions, binding...
                }
            } else {
                match rfc4571::Frame::new_checked(msg) {
                    Ok(f) => {
                        counters.rtp.over_tcp += 1;
                        f.packet()
                    }
                    Err(_) => return,
                }
            };
            if let Seen::CallMedia(call) =
                media.on_carried(now, key.src, key.dst, packet, counters, out)
            {
                media_seen(call);
            }
        });
    }
}
