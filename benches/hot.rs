//! The hot functions one at a time (criterion): frame decode, SIP parse, RTP statistics
//! update, and one tracker step in steady state. `cargo bench --bench hot`; without
//! `--bench` (as `cargo test --all-targets` runs it) each runs once as a smoke test.
//! `benches/run.sh` measures the whole program; these say where its time goes.

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use embassy_time::{Duration, Instant};
use std::hint::black_box;
use voipsensor::fixture::{self, Builder, CallSpec};
use voipsensor::rtp::{PacketKind, StreamStats};
use voipsensor::sip::Message;
use voipsensor::track::event::CountingSink;
use voipsensor::track::sip_tcp;
use voipsensor::track::tracker::{Tracker, TrackerConfig};
use voipsensor::wire::{Decoder, FlowKey, LinkType, TcpFlags, TcpStreams};

/// Ethernet + IPv4 + UDP headers of the fixture's untagged frames.
const UDP_PAYLOAD_AT: usize = 14 + 20 + 8;

/// One call's frames, sorted: SIP first, then RTP both ways.
fn call_frames(n: u8) -> Vec<(u64, Vec<u8>)> {
    let mut b = Builder::new();
    let mut c = CallSpec::new(
        &format!("bench-{n}@voipsensor.bench"),
        format!("10.0.1.{n}:5060").parse().expect("addr"),
        format!("10.0.2.{n}:5060").parse().expect("addr"),
        1_767_225_600_000_000, // 2026-01-01, the fixture's epoch
    );
    c.talk_ms = 20_000;
    fixture::add_call(&mut b, &c);
    b.frames()
        .into_iter()
        .map(|(t, f)| (t, f.to_vec()))
        .collect()
}

fn hot(c: &mut Criterion) {
    let frames = call_frames(1);
    let invite = &frames[0].1;
    let rtp = &frames
        .iter()
        .find(|(_, f)| f.len() == 214)
        .expect("RTP frame")
        .1;

    let mut g = c.benchmark_group("hot");
    g.throughput(Throughput::Elements(1));
    let mut dec = Decoder::new(256, Duration::from_secs(5));
    let now = Instant::from_secs(1);
    g.bench_function("decode_rtp_frame", |b| {
        b.iter(|| {
            black_box(
                dec.decode(now, LinkType::Ethernet, black_box(rtp))
                    .is_ok_and(|p| p.is_some()),
            )
        })
    });
    let sip = &invite[UDP_PAYLOAD_AT..];
    g.bench_function("parse_sip_invite", |b| {
        b.iter(|| black_box(Message::parse(black_box(sip)).is_ok()))
    });
    let mut st = StreamStats::default();
    let mut i: u32 = 0;
    g.bench_function("rtp_stats_update", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(st.on_packet(
                i as u64 * 20_000,
                i as u16,
                i.wrapping_mul(160),
                0,
                false,
                8000,
                PacketKind::Audio,
            ))
        })
    });
    g.finish();

    // Tracker step: 50 concurrent calls' frames through a warm tracker, per frame.
    let mut all: Vec<(u64, Vec<u8>)> = (1..=50).flat_map(call_frames).collect();
    all.sort_by_key(|f| f.0);
    let mut g = c.benchmark_group("tracker");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.sample_size(10);
    g.bench_function("on_frame_50_calls", |b| {
        b.iter_batched_ref(
            || Tracker::new(TrackerConfig::default()),
            |t| {
                let mut sink = CountingSink::default();
                for (ts, f) in &all {
                    t.on_frame(Instant::from_micros(*ts), LinkType::Ethernet, f, &mut sink);
                }
                black_box(sink.0)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A SIP INVITE of exactly `len` bytes, nearly all headers: the part a framer that starts
/// over on every segment rescans (issue 11).
fn padded_invite(len: usize) -> Vec<u8> {
    let head =
        b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
Call-ID: tcp-bench@10.0.0.1\r\nCSeq: 1 INVITE\r\n";
    let tail = b"Content-Length: 0\r\n\r\n";
    let mut m = head.to_vec();
    // "X-Pad: " + value + CRLF lines of 100 bytes, the last one cut to land on `len`.
    while m.len() + tail.len() < len {
        let room = len - m.len() - tail.len();
        let line = if room >= 200 { 100 } else { room };
        m.extend_from_slice(b"X-Pad: ");
        m.resize(m.len() + line.saturating_sub(9).max(1), b'p');
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(tail);
    m
}

/// SIP over TCP arriving one byte per segment, per segment: linear framing keeps it flat
/// whatever the message size.
fn tcp_sip(c: &mut Criterion) {
    const ACK: TcpFlags = TcpFlags {
        syn: false,
        fin: false,
        rst: false,
    };
    let key = FlowKey {
        src: "10.0.0.1:40000".parse().expect("addr"),
        dst: "10.0.0.2:5060".parse().expect("addr"),
    };
    let mut g = c.benchmark_group("tcp");
    g.sample_size(10);
    for (name, len) in [
        ("tcp_sip_1byte_segments_16k", 16 * 1024),
        ("tcp_sip_1byte_segments_64k", 64 * 1024),
    ] {
        let msg = padded_invite(len);
        let mut t = TcpStreams::new(4, 64 * 1024, Duration::from_secs(60));
        let (mut seq, now) = (0u32, Instant::from_secs(1));
        g.throughput(Throughput::Elements(msg.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let (mut got, oversize) = (0, core::cell::Cell::new(0));
                for byte in &msg {
                    let one = core::slice::from_ref(byte);
                    let framer = sip_tcp::framer(&oversize);
                    t.segment(now, key, seq, ACK, one, framer, |m| got += m.len());
                    seq = seq.wrapping_add(1);
                }
                assert_eq!(got, msg.len());
                black_box(got)
            })
        });
    }
    g.finish();
}

/// SIP INVITE `n` (no SDP) and one heuristic RTP packet per stream, all within one second
/// of `t0_us`: full call and stream tables that then sit idle.
fn full_table_frames(calls: u32, streams: u32, t0_us: u64) -> Vec<(u64, Vec<u8>)> {
    let mut b = Builder::new();
    for n in 0..calls {
        let (a, z) = (n >> 8, n & 0xff);
        let invite = format!(
            "INVITE sip:bob@10.9.{a}.{z} SIP/2.0\r\nVia: SIP/2.0/UDP 10.8.{a}.{z};branch=z9hG4bK{n}\r\n\
             From: <sip:alice@10.8.{a}.{z}>;tag=t{n}\r\nTo: <sip:bob@10.9.{a}.{z}>\r\n\
             Call-ID: idle-{n}@voipsensor.bench\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let src = format!("10.8.{a}.{z}:5060").parse().expect("addr");
        let dst = format!("10.9.{a}.{z}:5060").parse().expect("addr");
        b.udp(t0_us + u64::from(n), src, dst, invite.as_bytes());
    }
    for n in 0..streams {
        let (a, z) = (n >> 8, n & 0xff);
        let src = format!("10.6.{a}.{z}:20000").parse().expect("addr");
        let dst = format!("10.7.{a}.{z}:30000").parse().expect("addr");
        let pkt = fixture::rtp_packet(0, false, 1, 160, n + 1, 160);
        b.udp(t0_us + 200_000 + u64::from(n), src, dst, &pkt);
    }
    b.frames()
        .into_iter()
        .map(|(t, f)| (t, f.to_vec()))
        .collect()
}

fn filled(cfg: TrackerConfig, frames: &[(u64, Vec<u8>)]) -> Tracker {
    let mut t = Tracker::new(cfg);
    let mut sink = CountingSink::default();
    for (ts, f) in frames {
        t.on_frame(Instant::from_micros(*ts), LinkType::Ethernet, f, &mut sink);
    }
    t
}

/// The once-a-second work: 4,096 unanswered calls timing out in the same tick, and full
/// call and stream tables with nothing due.
fn tick(c: &mut Criterion) {
    let t0 = 1_767_225_600_000_000u64;
    let frames = full_table_frames(4096, 8192, t0);
    let mut g = c.benchmark_group("tick");
    g.sample_size(10);
    let cfg = TrackerConfig::default();
    let expire = Instant::from_micros(t0) + cfg.timeouts.setup + Duration::from_secs(2);
    g.bench_function("tick_4096_calls_expiring_together", |b| {
        b.iter_batched_ref(
            || filled(cfg, &frames),
            |t| {
                let mut sink = CountingSink::default();
                t.tick(expire, &mut sink);
                black_box(sink.0)
            },
            BatchSize::PerIteration,
        )
    });
    // Timeouts far away, so every tick of the run finds nothing due.
    let mut idle = TrackerConfig::default();
    idle.timeouts.setup = Duration::from_secs(1 << 30);
    idle.media.stream_timeout = Duration::from_secs(1 << 30);
    let mut t = filled(idle, &frames);
    let mut now = Instant::from_micros(t0) + Duration::from_secs(1);
    g.throughput(Throughput::Elements(1));
    g.bench_function("tick_idle_full_tables", |b| {
        b.iter(|| {
            now += Duration::from_secs(1);
            let mut sink = CountingSink::default();
            t.tick(now, &mut sink);
            black_box(sink.0)
        })
    });
    g.finish();
}

criterion_group!(benches, hot, tcp_sip, tick);

// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary with libtest's
// flags (`--test-threads`), which criterion refuses: there it only checks the benches build.
fn main() {
    if std::env::args().any(|a| a == "--bench") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    } else {
        println!("hot: built; run `cargo bench --bench hot` for figures");
    }
}
