//! The load generator behind `voipsensor fixture --scenario long|flood-*`: each flood hits
//! the table it aims at while the real calls mixed in are still tracked, and the load's
//! options (codec, impairments, VLAN) show up in what the tracker sees.

use voipsensor::capture::file::CaptureFile;
use voipsensor::fixture::{self, Codec, Flood, FloodKind, LoadOptions, LoadSpec, LoadSummary};
use voipsensor::track::counters::Counters;
use voipsensor::track::event::CountingSink;
use voipsensor::track::tracker::{Tracker, TrackerConfig};

const SPEC: LoadSpec = LoadSpec {
    calls: 8,
    seconds: 6,
    call_seconds: None,
    seed: 3,
};

fn replay(name: &str, opt: &LoadOptions) -> (LoadSummary, Counters) {
    let path = std::env::temp_dir().join(format!(
        "voipsensor-loadgen-{}-{name}.pcap",
        std::process::id()
    ));
    let sum = fixture::write_load_with(&path, &SPEC, opt).expect("write");
    let mut cap = CaptureFile::open(&path).expect("open");
    let link = cap.link();
    let mut t = Tracker::new(TrackerConfig::default());
    let mut sink = CountingSink::default();
    while let Some(f) = cap.next_frame().expect("read") {
        t.on_frame(f.ts, link, f.data, &mut sink);
    }
    t.finish("end_of_capture", &mut sink);
    std::fs::remove_file(&path).ok();
    (sum, t.counters())
}

fn flood(kind: FloodKind, count: u64) -> LoadOptions {
    LoadOptions {
        flood: Some(Flood { kind, count }),
        ..LoadOptions::default()
    }
}

/// The real calls of the load: all answered and ended, each with its two streams.
fn real_calls_intact(c: &Counters) {
    assert!(c.calls.answered >= SPEC.calls as u64, "{:?}", c.calls);
    assert!(c.calls.ended >= SPEC.calls as u64, "{:?}", c.calls);
    assert!(
        c.rtp.signalled >= SPEC.calls as u64 * 2 * 50 * 4,
        "{:?}",
        c.rtp
    );
}

#[test]
fn call_id_floods_fill_the_call_table_beside_the_real_calls() {
    for kind in [FloodKind::CallIds, FloodKind::CallIdsSdp] {
        let (sum, c) = replay("callids", &flood(kind, 3000));
        assert_eq!(sum.flood_frames, 3000);
        assert_eq!(c.sip.requests.invite, 3000 + SPEC.calls as u64);
        assert_eq!(c.tables.calls.high_water as u64, 3000 + SPEC.calls as u64);
        real_calls_intact(&c);
    }
}

#[test]
fn invite_pair_flood_makes_answered_calls_without_media() {
    let (sum, c) = replay("pairs", &flood(FloodKind::InvitePairs, 500));
    assert_eq!(sum.flood_frames, 1000);
    assert_eq!(c.calls.answered, 500 + SPEC.calls as u64);
    real_calls_intact(&c);
}

#[test]
fn ssrc_floods_start_one_stream_per_unit() {
    for kind in [FloodKind::SsrcsOnePort, FloodKind::SsrcsPorts] {
        let (_, c) = replay("ssrcs", &flood(kind, 1500));
        assert!(
            c.rtp.streams_started >= 1500,
            "{kind:?}: {}",
            c.rtp.streams_started
        );
        real_calls_intact(&c);
    }
}

#[test]
fn tcp_partial_flood_opens_a_stream_per_flow_and_delivers_nothing() {
    let (_, c) = replay("tcp", &flood(FloodKind::TcpPartial, 2000));
    assert_eq!(c.tcp.streams_opened, 2000);
    assert_eq!(c.tcp.messages, 0);
    real_calls_intact(&c);
}

#[test]
fn fragment_flood_never_completes_a_datagram() {
    let (_, c) = replay("frag", &flood(FloodKind::Fragments, 1000));
    assert_eq!(c.wire.fragments, 1000);
    assert_eq!(c.wire.fragments_reassembled, 0);
    real_calls_intact(&c);
}

#[test]
fn tiny_tcp_flood_still_frames_every_message_byte_by_byte() {
    let (_, c) = replay("tiny", &flood(FloodKind::TinyTcp, 3000));
    assert_eq!(c.tcp.segments, 3000);
    // 3,039 bytes of 242-byte OPTIONS requests.
    assert_eq!(c.sip.requests.options, 3039 / 242);
    real_calls_intact(&c);
}

#[test]
fn load_options_reach_the_wire() {
    let opt = LoadOptions {
        codec: Codec::Opus,
        loss: 0.05,
        jitter_ms: 1.0,
        duplicate: 0.05,
        reorder: 0.05,
        vlan: Some(42),
        flood: None,
    };
    let (sum, c) = replay("opts", &opt);
    assert_eq!(c.wire.vlan_tagged, sum.frames);
    assert_eq!(c.rtp.packets, sum.rtp_packets);
    real_calls_intact(&c);
    // Signalling only: the same dialogs, no RTP.
    let none = LoadOptions {
        codec: Codec::None,
        ..LoadOptions::default()
    };
    let (sum, c) = replay("none", &none);
    assert_eq!((sum.rtp_packets, c.rtp.packets), (0, 0));
    assert_eq!(c.calls.answered, SPEC.calls as u64);
}
