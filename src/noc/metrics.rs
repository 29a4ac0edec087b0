//! The `/metrics` registry (the official `prometheus-client` crate): every family the NOC
//! exports, labelled per site, sensor, direction and codec only — never per call or stream,
//! so the series count grows with the fleet, not with its traffic.
//!
//! Families fed by the shared topics (`calls`, `rtp`, `kpi`) are counters and histograms:
//! with several `noc` instances in one shared-subscription group each message is counted by
//! one instance, so `sum()` over instances is the fleet's figure. Figures from the retained
//! `status` and from `health` (which every instance reads) are the sensor's own state or
//! cumulative counters, the same on every instance: aggregate those with `max()`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SensorL {
    pub site: String,
    pub sensor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoL {
    pub site: String,
    pub sensor: String,
    pub version: String,
    pub interfaces: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeL {
    pub site: String,
    pub sensor: String,
    pub outcome: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodecL {
    pub site: String,
    pub sensor: String,
    pub codec: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionL {
    pub site: String,
    pub sensor: String,
    pub direction: String,
    pub codec: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WarningL {
    pub site: String,
    pub sensor: String,
    pub warning: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProblemL {
    pub site: String,
    pub sensor: String,
    pub problem: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassL {
    pub site: String,
    pub sensor: String,
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeafL {
    pub leaf: String,
}

pub type FGauge = Gauge<f64, AtomicU64>;
pub type Hist = Family<SensorL, Histogram, fn() -> Histogram>;
pub type CodecHist = Family<CodecL, Histogram, fn() -> Histogram>;
pub type DirHist = Family<DirectionL, Histogram, fn() -> Histogram>;

fn seconds_hist() -> Histogram {
    // 50 ms … ~100 s: setup time and PDD.
    Histogram::new([
        0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 100.0,
    ])
}
fn duration_hist() -> Histogram {
    Histogram::new([
        5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0, 7200.0,
    ])
}
/// MOS buckets: fine where the quality bands change (G.107 Annex B's 3.1/3.6/4.0/4.3).
pub fn mos_hist() -> Histogram {
    Histogram::new([
        1.5, 2.0, 2.5, 2.8, 3.1, 3.3, 3.6, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5,
    ])
}
fn jitter_hist() -> Histogram {
    Histogram::new([0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2])
}

/// Every family, registered once in `registry`.
pub struct Metrics {
    pub registry: Registry,
    pub up: Family<SensorL, Gauge>,
    pub status_changed: Family<SensorL, FGauge>,
    pub last_message: Family<SensorL, FGauge>,
    pub info: Family<InfoL, Gauge>,
    pub clock_synced: Family<SensorL, Gauge>,
    pub calls: Family<OutcomeL, Counter>,
    pub calls_active: Family<SensorL, Gauge>,
    pub setup: Hist,
    pub pdd: Hist,
    pub duration: Hist,
    pub call_mos: DirHist,
    pub second_mos: CodecHist,
    pub jitter: CodecHist,
    pub rtp_packets: Family<CodecL, Counter>,
    pub rtp_expected: Family<CodecL, Counter>,
    pub rtp_lost: Family<CodecL, Counter>,
    pub rtp_capture_loss: Family<CodecL, Counter>,
    pub media_problems: Family<ProblemL, Counter>,
    pub capture_dropped: Family<SensorL, Counter>,
    pub mirror_duplicates: Family<SensorL, Counter>,
    pub mirror_warning: Family<WarningL, Gauge>,
    pub outbox_dropped: Family<ClassL, Counter>,
    pub outbox_depth: Family<SensorL, Gauge>,
    pub reconnects: Family<SensorL, Counter>,
    pub kpi_attempted: Family<SensorL, Counter>,
    pub kpi_answered: Family<SensorL, Counter>,
    pub kpi_effective: Family<SensorL, Counter>,
    pub kpi_asr: Family<SensorL, FGauge>,
    pub kpi_ner: Family<SensorL, FGauge>,
    pub kpi_acd: Family<SensorL, FGauge>,
    pub noc_messages: Family<LeafL, Counter>,
    pub noc_decode_errors: Family<LeafL, Counter>,
    pub noc_duplicates: Counter,
    pub noc_unknown_topics: Counter,
    pub noc_sensors: Gauge,
    pub noc_sensors_rejected: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("voipsensor");
        macro_rules! reg {
            ($name:expr, $help:expr, $m:expr) => {{
                let m = $m;
                r.register($name, $help, m.clone());
                m
            }};
            ($name:expr, $help:expr, $unit:expr, $m:expr) => {{
                let m = $m;
                r.register_with_unit($name, $help, $unit, m.clone());
                m
            }};
        }
        let hist = |f: fn() -> Histogram| Family::new_with_constructor(f);
        let codec_hist = |f: fn() -> Histogram| Family::new_with_constructor(f);
        Metrics {
            up: reg!(
                "sensor_up",
                "1 while the sensor's retained status is online; 0 after its offline status or Last Will",
                Family::default()
            ),
            status_changed: reg!(
                "sensor_status_changed_timestamp_seconds",
                "Wall time the NOC saw the sensor's status change",
                Family::default()
            ),
            last_message: reg!(
                "sensor_last_message_timestamp_seconds",
                "Wall time of the sensor's last message",
                Family::default()
            ),
            info: reg!(
                "sensor_info",
                "Sensor version and capture interfaces (value 1)",
                Family::default()
            ),
            clock_synced: reg!(
                "sensor_clock_synced",
                "1 while the sensor's clock is NTP-synchronised",
                Family::default()
            ),
            calls: reg!(
                "calls",
                "Calls that ended, by outcome (answered, failed, cancelled, abandoned) and SIP code",
                Family::default()
            ),
            calls_active: reg!(
                "calls_active",
                "Calls begun and not yet ended (as seen by this instance)",
                Family::default()
            ),
            setup: reg!(
                "call_setup",
                "INVITE to 2xx",
                Unit::Seconds,
                hist(seconds_hist)
            ),
            pdd: reg!(
                "call_pdd",
                "Post-dial delay: INVITE to first 18x",
                Unit::Seconds,
                hist(seconds_hist)
            ),
            duration: reg!(
                "call_duration",
                "Answered calls: 2xx to BYE",
                Unit::Seconds,
                hist(duration_hist)
            ),
            call_mos: reg!(
                "call_mos",
                "Per call and direction: MOS-LQE mean over the call's scored seconds",
                Family::new_with_constructor(mos_hist as fn() -> Histogram)
            ),
            second_mos: reg!(
                "stream_second_mos",
                "MOS-LQE of each stream-second",
                codec_hist(mos_hist)
            ),
            jitter: reg!(
                "rtp_jitter",
                "RFC 3550 interarrival jitter at the end of each stream-second",
                Unit::Seconds,
                codec_hist(jitter_hist)
            ),
            rtp_packets: reg!("rtp_packets", "RTP packets received", Family::default()),
            rtp_expected: reg!(
                "rtp_expected",
                "RTP packets expected (sequence numbers)",
                Family::default()
            ),
            rtp_lost: reg!(
                "rtp_lost",
                "RTP packets lost in the network (lost + duplicates)",
                Family::default()
            ),
            rtp_capture_loss: reg!(
                "rtp_capture_loss_stream_seconds",
                "Stream-seconds measured while the capture itself dropped packets",
                Family::default()
            ),
            media_problems: reg!(
                "media_problems",
                "media_health events (one_way_media, no_media_after_answer, media_stopped)",
                Family::default()
            ),
            capture_dropped: reg!(
                "capture_dropped",
                "Packets the sensor's capture dropped (kernel + interface), the sensor's counter",
                Family::default()
            ),
            mirror_duplicates: reg!(
                "mirror_duplicate_frames",
                "Frames seen twice on the mirror (the sensor's counter)",
                Family::default()
            ),
            mirror_warning: reg!(
                "mirror_warning",
                "1 while the sensor reports this warning (unidirectional_mirror, no_mirror_traffic, signalling_not_visible, capture_loss, interface_down)",
                Family::default()
            ),
            outbox_dropped: reg!(
                "outbox_dropped",
                "Messages the sensor's outbox dropped, by class (calls, metrics)",
                Family::default()
            ),
            outbox_depth: reg!(
                "outbox_depth",
                "Messages waiting in the sensor's outbox",
                Family::default()
            ),
            reconnects: reg!(
                "reconnects",
                "Sensor reconnections to the broker",
                Family::default()
            ),
            kpi_attempted: reg!(
                "kpi_attempted",
                "Calls attempted (kpi topic)",
                Family::default()
            ),
            kpi_answered: reg!(
                "kpi_answered",
                "Calls answered (kpi topic)",
                Family::default()
            ),
            kpi_effective: reg!(
                "kpi_effective",
                "Calls effective for NER (kpi topic: answered, busy, no answer, rejected, cancelled)",
                Family::default()
            ),
            kpi_asr: reg!(
                "kpi_asr_ratio",
                "ASR of the last kpi period",
                Family::default()
            ),
            kpi_ner: reg!(
                "kpi_ner_ratio",
                "NER of the last kpi period",
                Family::default()
            ),
            kpi_acd: reg!(
                "kpi_acd",
                "ACD of the last kpi period",
                Unit::Seconds,
                Family::default()
            ),
            noc_messages: reg!(
                "noc_messages",
                "Messages received by this instance, by leaf",
                Family::default()
            ),
            noc_decode_errors: reg!(
                "noc_decode_errors",
                "Messages that did not decode, by leaf",
                Family::default()
            ),
            noc_duplicates: reg!(
                "noc_duplicate_calls_messages",
                "calls messages dropped as QoS 1 redeliveries (seq already seen)",
                Counter::default()
            ),
            noc_unknown_topics: reg!(
                "noc_unknown_topics",
                "Messages on topics outside the tree",
                Counter::default()
            ),
            noc_sensors: reg!(
                "noc_sensors",
                "Sensors this instance keeps state for",
                Gauge::default()
            ),
            noc_sensors_rejected: reg!(
                "noc_sensors_rejected",
                "Messages from sensors beyond the sensor cap (not tracked)",
                Counter::default()
            ),
            registry: r,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(64 << 10);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}
