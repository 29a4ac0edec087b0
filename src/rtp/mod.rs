//! RTP media layer: wire views and the figures built from them.
//!
//! - `packet`: RTP header view (RFC 3550 §5.1), RFC 4733 telephone-event payload, RTCP-mux demux.
//! - `rtcp`: compound RTCP iterator and reprs (SR, RR, SDES, BYE, APP, XR VoIP metrics).
//! - `stats`: per-stream sequence/loss/jitter/delta tracking that reproduces Wireshark's
//!   `rtp,streams` figures, with per-interval and whole-stream views.
//! - `codec`: static payload types (RFC 3551) and G.113 impairment factors.
//! - `emodel`: ITU-T G.107 E-model (R factor, MOS-LQE).
//! - `heuristic`: "is this UDP payload RTP?" and a per-candidate confirmation rule.
//!
//! Nothing here allocates or reads a clock: callers pass arrival times in microseconds.

pub mod codec;
pub mod emodel;
pub mod heuristic;
pub mod loss_pattern;
pub mod packet;
pub mod rtcp;
pub mod stats;

pub use codec::{impairment, static_pt};
pub use packet::{RtpPacket, TelephoneEvent, is_rtcp_pt};
pub use stats::{DtmfTracker, IntervalFigures, PacketKind, StreamStats, TotalFigures};

/// Why a view refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header (or a length field) says.
    Truncated,
    /// RTP/RTCP version is not 2.
    BadVersion,
    /// A length or count field is inconsistent with the data.
    Malformed,
}

pub type Result<T> = core::result::Result<T, Error>;

/// Big-endian field at `at`, 0 when out of bounds: callers check lengths in their
/// checked constructors, so the fallback only keeps hostile input from panicking.
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b1, c, d]) => u32::from_be_bytes([a, b1, c, d]),
        _ => 0,
    }
}
