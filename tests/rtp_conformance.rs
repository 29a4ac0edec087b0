//! Conformance with Wireshark on impaired streams of our own making: the fixture builder
//! writes seeded RTP streams with random loss, loss bursts, jitter, duplication and
//! reordering; `tshark -z rtp,streams` (heuristic RTP on) reads them, and every stream
//! voipsensor reports must agree: packets and lost equal, mean and max jitter within 1 %
//! or 0.01 ms, max delta within 0.01 ms. A visible skip (a failure under `CI`) without tshark.

mod common;
use common::tshark::{self, Row, close};
use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use voipsensor::fixture::{Builder, Impairments, RtpStreamSpec, add_rtp_stream};
use voipsensor::track::event::Event;

/// tshark's streams of `pcap`, heuristic RTP on (the fixture's streams have no SDP).
fn tshark_streams(pcap: &Path) -> Vec<Row> {
    tshark::streams(pcap, &["-o", "rtp.heuristic_rtp:TRUE"]).0
}

fn temp_pcap(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("voipsensor-{}-{name}.pcap", std::process::id()))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Writes `streams` (spec, impairments) into one capture, and compares.
fn compare(name: &str, streams: &[(RtpStreamSpec, Impairments)]) {
    let mut b = Builder::new();
    for (s, imp) in streams {
        add_rtp_stream(&mut b, s, imp);
    }
    let path = temp_pcap(name);
    b.write_pcap(&path).unwrap();
    let rows = tshark_streams(&path);
    let (events, _) = replay(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(rows.len(), streams.len(), "{name}: tshark saw {rows:?}");
    for r in &rows {
        let ours: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::StreamEnd(s)
                    if (s.src, s.dst, s.ssrc) == (Some(r.src), Some(r.dst), r.ssrc) =>
                {
                    Some(s)
                }
                _ => None,
            })
            .collect();
        assert_eq!(ours.len(), 1, "{name}: {r:?} reported {} times", ours.len());
        let s = ours[0];
        eprintln!(
            "{name} {:08X}: pkts {}/{} lost {}/{} dup {} ooo {} jmax {}/{} jmean {}/{} dmax {}/{}",
            s.ssrc,
            s.packets,
            r.packets,
            s.lost,
            r.lost,
            s.duplicates,
            s.out_of_order,
            s.jitter_max_ms,
            r.jitter_max,
            s.jitter_mean_ms,
            r.jitter_mean,
            s.delta_max_ms,
            r.delta_max
        );
        assert_eq!((s.packets, s.lost), (r.packets, r.lost), "{name} {r:?}");
        assert!(close(s.jitter_max_ms, r.jitter_max), "{name} {r:?}");
        assert!(close(s.jitter_mean_ms, r.jitter_mean), "{name} {r:?}");
        assert!((s.delta_max_ms - r.delta_max).abs() <= 0.01, "{name} {r:?}");
    }
}

fn spec(n: u16, pt: u8, count: u32, ptime: u32) -> RtpStreamSpec {
    RtpStreamSpec::new(
        addr(&format!("10.0.{n}.1:{}", 20000 + 2 * n)),
        addr(&format!("10.0.{n}.2:{}", 30000 + 2 * n)),
        0x1000_0000 + n as u32,
        pt,
        1_700_000_000_000_000 + n as u64 * 137_000,
        count,
        ptime,
    )
}

#[test]
fn impaired_streams_agree_with_tshark() {
    if !need_tool("tshark", "tshark") {
        return;
    }
    for seed in 1..=3u64 {
        let imp = |loss, burst, jitter, dup, reorder| Impairments {
            loss,
            burst_loss: burst,
            jitter_ms: jitter,
            duplicate: dup,
            reorder,
            seed,
            ..Impairments::none()
        };
        let streams = [
            (spec(1, 0, 600, 20), imp(0.02, (0.0, 0), 0.0, 0.0, 0.0)),
            (spec(2, 8, 600, 20), imp(0.0, (0.01, 6), 0.0, 0.0, 0.0)),
            (spec(3, 0, 600, 20), imp(0.0, (0.0, 0), 15.0, 0.0, 0.0)),
            (spec(4, 8, 400, 30), imp(0.0, (0.0, 0), 0.0, 0.03, 0.0)),
            (spec(5, 0, 600, 20), imp(0.0, (0.0, 0), 0.0, 0.0, 0.03)),
            (spec(6, 8, 900, 20), imp(0.03, (0.005, 4), 8.0, 0.02, 0.02)),
        ];
        compare(&format!("seed{seed}"), &streams);
    }
}

#[test]
fn a_stream_across_the_sequence_wrap_agrees_with_tshark() {
    if !need_tool("tshark", "tshark") {
        return;
    }
    let mut s = spec(7, 0, 500, 20);
    s.first_seq = 65_400;
    compare(
        "wrap",
        &[(
            s,
            Impairments {
                loss: 0.02,
                jitter_ms: 5.0,
                seed: 9,
                ..Impairments::none()
            },
        )],
    );
}
