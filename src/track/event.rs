//! What the tracker emits. These types are the single source of truth for every output:
//! JSON lines (`replay`, `watch`, `--payload json`) and postcard payloads over MQTT.
//!
//! They hold no heap data (heapless strings), so building one on the hot path allocates
//! nothing. Serialization differs by format where it helps the reader: timestamps are Unix
//! seconds with microseconds in JSON and integer microseconds in postcard; socket addresses
//! are `"ip:port"` strings in JSON and compact binary in postcard (serde's own rule for
//! human-readable formats).

use core::net::SocketAddr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest Call-ID kept; longer ones are truncated (and counted by the tracker).
pub const CALL_ID_MAX: usize = 128;
/// Longest user part (number) kept.
pub const USER_MAX: usize = 48;
/// Longest reason phrase / Reason header / user agent kept.
pub const TEXT_MAX: usize = 64;
/// Longest codec name kept.
pub const CODEC_MAX: usize = 16;

pub type CallId = heapless::String<CALL_ID_MAX>;
pub type User = heapless::String<USER_MAX>;
pub type Text = heapless::String<TEXT_MAX>;
pub type Codec = heapless::String<CODEC_MAX>;

/// Copies as much of `s` as fits (on a char boundary); returns whether it was cut.
pub fn fill<const N: usize>(dst: &mut heapless::String<N>, s: &str) -> bool {
    dst.clear();
    fill_append(dst, s)
}

/// Lossy conversion of packet bytes into a bounded string.
pub fn text_from<const N: usize>(b: &[u8]) -> heapless::String<N> {
    let mut s = heapless::String::new();
    // Nearly every header value is valid UTF-8 (ASCII): one check, one copy. The same
    // result as the chunked walk below, which then sees one valid chunk.
    if let Ok(valid) = core::str::from_utf8(b) {
        fill_append(&mut s, valid);
        return s;
    }
    for chunk in b.utf8_chunks() {
        if fill_append(&mut s, chunk.valid())
            || (!chunk.invalid().is_empty() && s.push('\u{fffd}').is_err())
        {
            break;
        }
    }
    s
}

/// Appends the longest prefix of whole characters of `s` that fits; `true` if cut.
fn fill_append<const N: usize>(dst: &mut heapless::String<N>, s: &str) -> bool {
    let room = N.saturating_sub(dst.len());
    let mut end = room.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let fits = s.get(..end).is_some_and(|p| dst.push_str(p).is_ok());
    !fits || end < s.len()
}

/// Packet time: microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub u64);

impl Ts {
    pub fn from_instant(i: embassy_time::Instant) -> Ts {
        Ts(i.as_micros())
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            // Exactly six decimals; f64 holds every microsecond of this epoch exactly and
            // serde_json prints the shortest form that round-trips.
            s.serialize_f64(self.as_secs_f64())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let f = f64::deserialize(d)?;
            Ok(Ts((f * 1e6).round() as u64))
        } else {
            Ok(Ts(u64::deserialize(d)?))
        }
    }
}

/// One output record.
// Boxing the large call variant would put an allocation on the hot path; events are built
// one at a time and passed by reference, so their size costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Call(CallEvent),
    RtpInterval(RtpInterval),
    StreamEnd(StreamEnd),
    Dtmf(DtmfEvent),
    MediaHealth(MediaHealth),
}

impl Event {
    /// The `"type"` field of the JSON form.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Call(_) => "call",
            Event::RtpInterval(_) => "rtp_interval",
            Event::StreamEnd(_) => "stream_end",
            Event::Dtmf(_) => "dtmf",
            Event::MediaHealth(_) => "media_health",
        }
    }
    pub fn ts(&self) -> Ts {
        match self {
            Event::Call(e) => e.ts,
            Event::RtpInterval(e) => e.ts,
            Event::StreamEnd(e) => e.ts,
            Event::Dtmf(e) => e.ts,
            Event::MediaHealth(e) => e.ts,
        }
    }
}

/// Call event kinds (`"event"` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEventKind {
    Invite,
    Ringing,
    EarlyMedia,
    Answered,
    Hold,
    Resume,
    /// BYE seen (`ended_by` says who sent it).
    Ended,
    /// Final 3xx–6xx (other than 487 after CANCEL).
    Failed,
    Cancelled,
    /// No signalling or media for the grace period.
    Timeout,
    /// Still open when the sensor stopped or the capture ended.
    SensorStopped,
    /// Pushed out of a full call table.
    Evicted,
}

impl CallEventKind {
    /// Whether this event closes the call.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallEventKind::Ended
                | CallEventKind::Failed
                | CallEventKind::Cancelled
                | CallEventKind::Timeout
                | CallEventKind::SensorStopped
                | CallEventKind::Evicted
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Caller,
    Callee,
}

/// Per-direction media quality attached to a call's last event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DirectionQuality {
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub codec: Codec,
    pub packets: u64,
    pub lost: i64,
    pub jitter_max_ms: f64,
    pub mos_min: Option<f64>,
    pub mos_mean: Option<f64>,
    /// Streams that carried this direction (a port move on resume, an SSRC change: each
    /// is one more); `packets`, `lost` are their sums, `jitter_max_ms` and `mos_min` their
    /// worst, `mos_mean` the mean over all their scored seconds (time-weighted).
    pub streams: u32,
    /// G.107 burst ratio of this direction's loss (all its streams), absent without loss.
    pub burst_r: Option<f64>,
    /// The far end's view of the busiest stream, from its RTCP receiver reports and XR
    /// VoIP Metrics, beside the sensor's own figures above.
    pub rtcp_fraction_lost: Option<f64>,
    pub rtcp_jitter_ms: Option<f64>,
    pub rtcp_rtt_ms: Option<f64>,
    pub rtcp_xr_mos_lq: Option<f64>,
    pub rtcp_xr_burst_density_pct: Option<f64>,
    pub rtcp_xr_gap_density_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    pub ts: Ts,
    pub event: CallEventKind,
    pub call_id: CallId,
    /// User part of From (the caller).
    pub caller: User,
    /// User part of To (the callee).
    pub callee: User,
    /// Sender of the message that caused the event.
    pub src: SocketAddr,
    /// Its destination.
    pub dst: SocketAddr,
    /// SIP status code, where one applies.
    pub code: Option<u16>,
    /// Reason phrase of `code`, or the Reason header of a BYE/CANCEL.
    pub reason: Option<Text>,
    pub ended_by: Option<Party>,
    /// INVITE → 2xx, milliseconds (last event only).
    pub setup_ms: Option<u32>,
    /// Post-dial delay: INVITE → first 18x, milliseconds (last event only).
    pub pdd_ms: Option<u32>,
    /// 2xx → BYE (or end), milliseconds (last event only).
    pub duration_ms: Option<u64>,
    /// Retransmitted SIP messages seen in this call so far.
    pub retransmissions: u32,
    /// User-Agent of the caller, where seen (on `invite`).
    pub user_agent: Option<Text>,
    /// Media quality caller→callee and callee→caller (last event only).
    pub quality_caller: Option<DirectionQuality>,
    pub quality_callee: Option<DirectionQuality>,
}

impl CallEvent {
    /// An event of `kind` for the message `src` → `dst`, with no ids and no figures yet:
    /// whoever builds it fills in what applies.
    pub fn new(ts: Ts, event: CallEventKind, src: SocketAddr, dst: SocketAddr) -> Self {
        CallEvent {
            ts,
            event,
            call_id: CallId::default(),
            caller: User::default(),
            callee: User::default(),
            src,
            dst,
            code: None,
            reason: None,
            ended_by: None,
            setup_ms: None,
            pdd_ms: None,
            duration_ms: None,
            retransmissions: 0,
            user_agent: None,
            quality_caller: None,
            quality_callee: None,
        }
    }
}

/// One stream's figures over one whole second of packet time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RtpInterval {
    /// Start of the second.
    pub ts: Ts,
    pub call_id: Option<CallId>,
    pub ssrc: u32,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub pt: u8,
    pub codec: Codec,
    pub packets: u32,
    pub expected: u32,
    pub lost: i32,
    pub duplicates: u32,
    pub out_of_order: u32,
    pub jitter_ms: f64,
    pub jitter_max_ms: f64,
    pub delta_max_ms: f64,
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
    /// G.107 burst ratio of this second's loss (`rtp::loss_pattern`), absent without loss.
    pub burst_r: Option<f64>,
    /// Loss runs by length (1, 2, 3, 4–5, 6–10, 11+ packets) and gaps between losses by
    /// length (1–4, 5–15, 16–49, 50–99, 100–499, 500+), settled in this second.
    pub loss_runs: [u32; 6],
    pub loss_gaps: [u32; 6],
    /// The capture itself was dropping packets in this second: loss may be ours.
    pub capture_loss: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StreamEnd {
    pub ts: Ts,
    pub call_id: Option<CallId>,
    pub ssrc: u32,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub pt: u8,
    pub codec: Codec,
    pub packets: u64,
    pub expected: u64,
    pub lost: i64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub jitter_max_ms: f64,
    pub jitter_mean_ms: f64,
    pub delta_max_ms: f64,
    pub mos_min: Option<f64>,
    pub mos_mean: Option<f64>,
    /// G.107 burst ratio of the whole stream's loss, absent without loss.
    pub burst_r: Option<f64>,
    /// Loss runs and gaps by length over the whole stream (buckets as in `RtpInterval`).
    pub loss_runs: [u32; 6],
    pub loss_gaps: [u32; 6],
    /// Remote view from RTCP reports about this stream, where seen.
    pub rtcp_fraction_lost: Option<f64>,
    pub rtcp_cumulative_lost: Option<i32>,
    pub rtcp_jitter_ms: Option<f64>,
    pub rtcp_rtt_ms: Option<f64>,
    /// The receiving endpoint's own view, from an RTCP XR VoIP Metrics block (RFC 3611
    /// §4.7) about this stream, where one was seen: loss and jitter-buffer discard (%),
    /// its R factor, MOS-LQ and MOS-CQ, and the round trip it measured (ms).
    pub rtcp_xr_loss_pct: Option<f64>,
    pub rtcp_xr_discard_pct: Option<f64>,
    pub rtcp_xr_r_factor: Option<u8>,
    pub rtcp_xr_mos_lq: Option<f64>,
    pub rtcp_xr_mos_cq: Option<f64>,
    pub rtcp_xr_rtt_ms: Option<f64>,
    /// The XR block's burst and gap densities (RFC 3611 §4.7.2), percent.
    pub rtcp_xr_burst_density_pct: Option<f64>,
    pub rtcp_xr_gap_density_pct: Option<f64>,
    /// Why it ended: `call_ended`, `timeout`, `end_of_capture`, `evicted`, `sensor_stopped`.
    pub reason: Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DtmfEvent {
    pub ts: Ts,
    pub call_id: Option<CallId>,
    pub ssrc: u32,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    /// '0'–'9', '*', '#', 'A'–'D', or '?' for other events.
    pub digit: char,
    pub event_code: u8,
    pub duration_ms: u32,
    pub volume: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaProblem {
    OneWayMedia,
    NoMediaAfterAnswer,
    MediaStopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaHealth {
    pub ts: Ts,
    pub problem: MediaProblem,
    pub call_id: Option<CallId>,
    /// The silent direction, where one applies.
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub silent_ms: u64,
}

/// Where the tracker puts events. The tracker never allocates; the sink may.
pub trait EventSink {
    fn emit(&mut self, ev: &Event);
}

impl EventSink for Vec<Event> {
    fn emit(&mut self, ev: &Event) {
        self.push(ev.clone());
    }
}

/// Counts events without storing them (benchmarks, allocation tests).
#[derive(Debug, Default)]
pub struct CountingSink(pub u64);

impl EventSink for CountingSink {
    fn emit(&mut self, _ev: &Event) {
        self.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_is_seconds_in_json_and_micros_in_postcard() {
        let ts = Ts(1_700_000_000_123_456);
        assert_eq!(serde_json::to_string(&ts).unwrap(), "1700000000.123456");
        let back: Ts = serde_json::from_str("1700000000.123456").unwrap();
        assert_eq!(back, ts);
        let bytes = postcard::to_allocvec(&ts).unwrap();
        assert_eq!(postcard::from_bytes::<Ts>(&bytes).unwrap(), ts);
    }

    #[test]
    fn text_from_cuts_long_and_replaces_invalid_utf8() {
        let s: heapless::String<8> = text_from(b"ab\xffcdefgh");
        assert_eq!(s.as_str(), "ab\u{fffd}cde");
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let s: heapless::String<5> = text_from("abcé€".as_bytes());
        assert_eq!(s.as_str(), "abcé");
        let mut d = heapless::String::<4>::new();
        assert!(fill(&mut d, "a€b"));
        assert_eq!(d.as_str(), "a€");
        assert!(!fill(&mut d, "abcd"));
        assert_eq!(d.as_str(), "abcd");
    }
}
