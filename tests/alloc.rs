//! The hot path allocates nothing: a counting global allocator watches the tracker.
//!
//! Counting is per thread (a const thread-local), so other tests running in parallel in
//! this binary cannot disturb the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use voipsensor::capture::file::CaptureFile;
use voipsensor::fixture::{self, Builder, LoadSpec};
use voipsensor::track::event::CountingSink;
use voipsensor::track::tracker::{Tracker, TrackerConfig};
use voipsensor::wire::LinkType;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        note_bytes(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        note_bytes(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

fn note() {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

fn note_bytes(n: usize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = BYTES.try_with(|b| b.set(b.get() + n as u64));
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCS.with(|n| n.set(0));
    BYTES.with(|n| n.set(0));
    ON.with(|on| on.set(true));
    let r = f();
    ON.with(|on| on.set(false));
    (r, ALLOCS.with(|n| n.get()))
}

#[test]
fn counting_allocator_sees_an_allocation() {
    // Guards the test below against a counter that never counts.
    let (_, n) = counted(|| std::hint::black_box(vec![1u8; 64]));
    assert!(n >= 1);
}

#[test]
fn tracker_allocates_nothing_in_steady_state() {
    let mut b = Builder::new();
    fixture::demo(&mut b);
    carried_media(&mut b);
    let frames: Vec<(u64, Vec<u8>)> = b
        .frames()
        .into_iter()
        .map(|(t, f)| (t, f.to_vec()))
        .collect();
    assert!(frames.len() > 1000);
    let mut t = Tracker::new(TrackerConfig::default());
    let mut sink = CountingSink::default();
    let feed = |t: &mut Tracker, sink: &mut CountingSink, offset: u64| {
        for (ts, f) in &frames {
            t.on_frame(
                embassy_time::Instant::from_micros(ts + offset),
                LinkType::Ethernet,
                f,
                sink,
            );
        }
        // Let every call and stream time out and be forgotten.
        let end = frames.last().map(|f| f.0).unwrap_or(0) + offset;
        for s in 1..=4000u64 {
            t.tick(
                embassy_time::Instant::from_micros(end + s * 1_000_000),
                sink,
            );
        }
    };
    // Warm-up: first use of every table slot, lazy statics in libraries.
    feed(&mut t, &mut sink, 0);
    let warm_events = sink.0;
    assert!(
        warm_events > 100,
        "the demo produced only {warm_events} events"
    );
    let (_, n) = counted(|| feed(&mut t, &mut sink, 10_000_000_000));
    assert_eq!(
        sink.0,
        2 * warm_events,
        "second pass must see the same events"
    );
    let c = t.counters();
    assert!(c.rtp.turn_relayed > 0 && c.rtp.over_tcp > 0, "{:?}", c.rtp);
    assert!(
        c.calls.attempted >= 24 && c.rtp.packets > 1000,
        "{:?} {:?}",
        c.calls,
        c.rtp
    );
    assert_eq!(
        n, 0,
        "the tracker allocated {n} times while processing frames"
    );
}

/// RTP in TURN ChannelData over UDP and TCP and in RFC 4571 over TCP, from the start of
/// `b`'s frames.
fn carried_media(b: &mut Builder) {
    use fixture::{Carrier, Impairments, RtpStreamSpec};
    let start = b.frames().first().map(|f| f.0).unwrap_or(0);
    let carriers = [
        (
            "10.7.0.1:50000",
            "10.7.0.9:3478",
            Carrier::ChannelUdp { channel: 0x4001 },
        ),
        (
            "10.7.0.2:50000",
            "10.7.0.9:3478",
            Carrier::ChannelTcp { channel: 0x4002 },
        ),
        ("10.7.0.3:40000", "10.7.0.9:5004", Carrier::Rfc4571),
    ];
    for (i, (a, z, c)) in carriers.into_iter().enumerate() {
        let (a, z) = (a.parse().unwrap(), z.parse().unwrap());
        if c != (Carrier::ChannelUdp { channel: 0x4001 }) {
            b.tcp_connect(start, a, z);
        }
        let ssrc = 0x7000 + i as u32;
        let up = RtpStreamSpec::new(a, z, ssrc, 0, start + 1000, 100, 20);
        let down = RtpStreamSpec::new(z, a, ssrc + 16, 0, start + 1500, 100, 20);
        let imp = Impairments::mild(i as u64);
        fixture::add_carried_streams(b, &[(up, imp), (down, imp)], c);
    }
}

fn replay_allocations(path: &Path) -> (u64, u64) {
    let ((frames, events), n) = counted(|| {
        let mut cap = CaptureFile::open(path).expect("open");
        let link = cap.link();
        let mut t = Tracker::new(TrackerConfig::default());
        let mut sink = CountingSink::default();
        let mut frames = 0u64;
        while let Some(f) = cap.next_frame().expect("read") {
            t.on_frame(f.ts, link, f.data, &mut sink);
            frames += 1;
        }
        t.finish("end_of_capture", &mut sink);
        let _ = t.counters();
        (frames, sink.0)
    });
    assert!(frames > 0 && events > 0);
    (frames, n)
}

#[test]
fn a_capture_ten_times_as_long_costs_no_more_allocations() {
    let dir = std::env::temp_dir().join(format!("voipsensor-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short.pcap");
    let long = dir.join("long.pcap");
    // Same concurrency (20 call slots, 10 s calls back to back), 10× the duration.
    let spec = |seconds| LoadSpec {
        calls: 20,
        seconds,
        call_seconds: Some(10),
        seed: 7,
    };
    fixture::write_load(&short, &spec(30)).unwrap();
    fixture::write_load(&long, &spec(300)).unwrap();
    let (f_short, a_short) = replay_allocations(&short);
    let (f_long, a_long) = replay_allocations(&long);
    std::fs::remove_dir_all(&dir).ok();
    eprintln!(
        "short: {f_short} frames, {a_short} allocations; long: {f_long} frames, {a_long} allocations"
    );
    assert!(f_long >= 9 * f_short);
    // Start-up (tables, the capture handle) is the same for both; the slack covers
    // libpcap-side buffers the Rust allocator may see.
    assert!(a_long <= a_short + 16, "short {a_short}, long {a_long}");
}

#[test]
fn tracker_config_memory_bytes_is_what_the_tracker_allocates() {
    // The figure boards/ and check-config rely on, against the allocator's own count.
    for cfg in [
        TrackerConfig::default(),
        TrackerConfig {
            calls: 100,
            fragments: 8,
            tcp_streams: 16,
            ..TrackerConfig::default()
        },
    ] {
        let (t, _) = counted(|| Tracker::new(cfg));
        let bytes = BYTES.with(|b| b.get()) as f64;
        let est = cfg.memory_bytes() as f64;
        drop(t);
        eprintln!("estimated {est} B, allocated {bytes} B");
        assert!(
            (bytes - est).abs() <= est * 0.05,
            "estimated {est}, allocated {bytes}"
        );
    }
}
