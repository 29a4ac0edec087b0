//! voipsensor: a passive SIP/RTP monitoring sensor for a switch's mirror port.
//!
//! Layering (arrows point down only):
//!
//! ```text
//!   capture/ (pcap file, live)          publish/ (JSON lines, postcard, outbox, MQTT)
//!              \                         /
//!               track/  sans-IO tracker: calls, media streams, events
//!              /        |          \
//!          wire/       sip/        rtp/
//!   (link, tunnels,  (message,   (packet, RFC 3550 stats,
//!    IP, fragments,   SDP)        RTCP, E-model)
//!    TCP streams)
//!               \       |         /
//!                table  (the one fixed-capacity table)
//! ```
//!
//! The tracker reads no clock and does no I/O: it is fed `(timestamp, link type, frame)`
//! and returns events, so replaying a capture gives byte-identical output every time.

pub mod capture;
pub mod clock;
pub mod config;
pub mod fixture;
pub mod network;
pub mod publish;
pub mod rtp;
pub mod sip;
pub mod table;
pub mod track;
pub mod wire;
