//! `voipsensor noc` ingest on one core, without the broker: per-second `rtp` batches
//! (postcard, as sensors send them by default) → decode → per-sensor state and metrics.
//!
//! `cargo bench --bench noc` (release build). Each sensor has 5 calls up at a time (both
//! directions: 10 stream-seconds per batch), calls last 60 s and are replaced by new ones,
//! so the call list, the charts and the hour buckets all turn over and reach their caps.
//! Memory: resident size after the caps are reached and again after twice as long — the
//! same, because every per-sensor collection is bounded. Without `--bench` (as
//! `cargo test --all-targets` runs it) one tiny pass as a smoke test.

use std::time::Instant as Wall;
use voipsensor::noc::Noc;
use voipsensor::noc::state::Limits;
use voipsensor::publish::payload::{Format, Message, RtpBatch, encode};
use voipsensor::track::event::{
    CallEvent, CallEventKind, CallId, Codec, Event, RtpInterval, Ts, User,
};

const CALLS: u32 = 5;
const CALL_S: u64 = 60;
const T0: u64 = 1_700_000_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

fn call_id(sensor: u32, slot: u32, round: u64) -> CallId {
    let mut c = CallId::new();
    let _ = core::fmt::write(
        &mut c,
        format_args!("{round}-{slot}-{sensor}@bench.example"),
    );
    c
}

fn call(sensor: u32, slot: u32, round: u64, ts: u64, kind: CallEventKind) -> Vec<u8> {
    let mut u = User::new();
    let _ = u.push_str("+3314000000");
    let e = CallEvent {
        ts: Ts(ts * 1_000_000),
        event: kind,
        call_id: call_id(sensor, slot, round),
        caller: u.clone(),
        callee: u,
        src: "10.0.0.1:5060".parse().unwrap(),
        dst: "10.0.0.2:5060".parse().unwrap(),
        code: None,
        reason: None,
        ended_by: None,
        setup_ms: Some(800),
        pdd_ms: Some(300),
        duration_ms: (kind == CallEventKind::Ended).then_some(CALL_S * 1000),
        retransmissions: 0,
        user_agent: None,
        quality_caller: None,
        quality_callee: None,
    };
    encode(
        &Message::Event {
            seq: ts * 100 + u64::from(slot) + if kind == CallEventKind::Ended { 50 } else { 0 },
            event: Event::Call(e),
        },
        Format::Postcard,
    )
}

fn batch(sensor: u32, sec: u64) -> Vec<u8> {
    let round = sec / CALL_S;
    let mut codec = Codec::new();
    let _ = codec.push_str("PCMA");
    let intervals = (0..CALLS * 2)
        .map(|k| RtpInterval {
            ts: Ts(sec * 1_000_000),
            call_id: Some(call_id(sensor, k / 2, round)),
            ssrc: k + 1,
            src: Some(
                format!("10.0.0.{}:{}", k % 2 + 1, 16384 + k)
                    .parse()
                    .unwrap(),
            ),
            dst: Some(
                format!("10.0.0.{}:{}", 2 - k % 2, 20000 + k)
                    .parse()
                    .unwrap(),
            ),
            pt: 8,
            codec: codec.clone(),
            packets: 50,
            expected: 50 + u32::from(sec.is_multiple_of(7)),
            lost: i32::from(sec.is_multiple_of(7)),
            jitter_ms: 1.5,
            jitter_max_ms: 3.0,
            delta_max_ms: 25.0,
            r_factor: Some(90.0),
            mos: Some(4.3),
            ..RtpInterval::default()
        })
        .collect();
    encode(
        &Message::Rtp(RtpBatch {
            seq: sec,
            ts: Ts(sec * 1_000_000),
            part: 0,
            parts: 1,
            intervals,
        }),
        Format::Postcard,
    )
}

/// Feeds `seconds` of traffic from `sensors` sensors; returns (rtp messages, seconds spent).
fn feed(noc: &mut Noc, topics: &[(String, String)], from: u64, seconds: u64) -> (u64, f64) {
    let sensors = topics.len() as u32;
    // Encoding is the sensors' work, not the NOC's: done before the clock starts.
    let mut n = 0u64;
    let mut spent = 0.0;
    for sec in T0 + from..T0 + from + seconds {
        let mut msgs: Vec<(usize, bool, Vec<u8>)> = Vec::with_capacity(sensors as usize * 2);
        for s in 0..sensors {
            if sec % CALL_S == 0 {
                for slot in 0..CALLS {
                    if sec > T0 {
                        msgs.push((
                            s as usize,
                            false,
                            call(s, slot, sec / CALL_S - 1, sec, CallEventKind::Ended),
                        ));
                    }
                    msgs.push((
                        s as usize,
                        false,
                        call(s, slot, sec / CALL_S, sec, CallEventKind::Invite),
                    ));
                }
            }
            msgs.push((s as usize, true, batch(s, sec)));
        }
        let t = Wall::now();
        for (s, rtp, m) in &msgs {
            let topic = if *rtp { &topics[*s].1 } else { &topics[*s].0 };
            noc.on_message(topic, std::hint::black_box(m), sec);
            n += u64::from(*rtp);
        }
        spent += t.elapsed().as_secs_f64();
    }
    (n, spent)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (sensors, seconds) = if bench { (1000u32, 360u64) } else { (3, 5) };
    let topics: Vec<(String, String)> = (0..sensors)
        .map(|s| {
            let base = format!("voipsensor/v1/site{}/vs-{s:06}", s % 100);
            (format!("{base}/calls"), format!("{base}/rtp"))
        })
        .collect();
    let rss0 = rss_kib();
    let mut noc = Noc::new(Limits::default());
    let (n1, t1) = feed(&mut noc, &topics, 0, seconds);
    let rss1 = rss_kib();
    let (n2, t2) = feed(&mut noc, &topics, seconds, seconds);
    let rss2 = rss_kib();
    let rate = (n1 + n2) as f64 / (t1 + t2);
    println!(
        "noc ingest: {} rtp batches ({sensors} sensors x {} s, {} stream-seconds each, plus call events), \
         {:.0} rtp messages/s on one core ({:.2} M stream-seconds/s); resident memory {} MiB after {seconds} s, \
         {} MiB after {} s ({:.1} KiB per sensor, {} KiB at start)",
        n1 + n2,
        2 * seconds,
        CALLS * 2,
        rate,
        rate * f64::from(CALLS * 2) / 1e6,
        rss1 / 1024,
        rss2 / 1024,
        2 * seconds,
        (rss2.saturating_sub(rss0)) as f64 / f64::from(sensors),
        rss0,
    );
    assert_eq!(noc.sensors().count(), sensors as usize);
    let s = noc.sensors().next().unwrap();
    let lim = Limits::default();
    assert!(s.calls.len() <= lim.calls_per_sensor && s.series.len() <= lim.charted_calls);
    assert!(s.series.iter().all(|c| {
        c.streams
            .iter()
            .all(|st| st.points.len() <= lim.chart_seconds)
    }));
}
