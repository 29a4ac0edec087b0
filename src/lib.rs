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
//!                table  (the one fixed-capacity table; timer_wheel: its per-second timers)
//! ```
//!
//! The tracker reads no clock and does no I/O: it is fed `(timestamp, link type, frame)`
//! and returns events, so replaying a capture gives byte-identical output every time.
//!
//! At the edges, sans-IO too: `policy/` (warnings, capture-loss hold, `health` period: fed
//! time, events and capture samples by `run` and by `replay`) and `publish/`'s pipeline
//! and session (events to messages, delivery by packet id) under the MQTT driver.
//! `config` sits on top: it maps the file onto each layer's own settings, and nothing
//! below imports it.

pub mod capture;
pub mod clock;
pub mod config;
pub mod fixture;
pub mod led;
pub mod network;
pub mod noc;
pub mod policy;
pub mod publish;
pub mod report;
pub mod rtp;
pub mod sip;
pub mod table;
pub mod timer_wheel;
pub mod track;
pub mod view;
pub mod wire;
