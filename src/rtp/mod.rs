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

pub mod codec;
pub mod emodel;
pub mod heuristic;
pub mod loss_pattern;
pub mod packet;
pub mod rtcp;
pub mod stats;

pub use codec::{impairment, static_pt};
pub use packet::{RtpPacket, RtpRepr, TelephoneEvent, is_rtcp_pt};
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

/// The first octet of an RTP or RTCP packet at least `min_len` long, once it says
/// version 2 (the version is checked first: a wrong one is not "truncated").
fn first_octet_v2(buf: &[u8], min_len: usize) -> Result<u8> {
    let b0 = *buf.first().ok_or(Error::Truncated)?;
    if b0 >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    if buf.len() < min_len {
        return Err(Error::Truncated);
    }
    Ok(b0)
}

/// RFC 3550 padding: the count in the last octet includes itself, so it is never 0, and
/// it cannot eat into what precedes the padded part (`room` octets).
fn check_padding(count: u8, room: usize) -> Result<()> {
    let pad = usize::from(count);
    if pad == 0 || pad > room {
        return Err(Error::Malformed);
    }
    Ok(())
}
