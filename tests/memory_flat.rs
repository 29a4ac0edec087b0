//! Flat memory at default capacities: `voipsensor replay` faults every table in at start,
//! so its peak resident memory (VmHWM, from the kernel's rusage of the child) under every
//! flood that fills a table is that of a one-call capture (which is an empty capture's plus
//! the code pages that reading traffic first runs); and
//! that peak is `TrackerConfig::memory_bytes()` plus a fixed base (binary, libc, libpcap,
//! stacks). Figures are printed (`--nocapture`) for the README's "Fixed memory" section.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use voipsensor::track::tracker::TrackerConfig;

const BIN: &str = env!("CARGO_BIN_EXE_voipsensor");

/// Peak resident bytes of `voipsensor replay --summary FILE` (the child's `ru_maxrss`).
// Reaped by `wait4` below (std's `wait` gives no rusage).
#[allow(clippy::zombie_processes)]
fn replay_peak(file: &Path) -> u64 {
    let child = Command::new(BIN)
        .args(["replay", "--summary"])
        .arg(file)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `rusage` is plain data, zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "replay of {} failed: {status}",
        file.display()
    );
    ru.ru_maxrss as u64 * 1024 // KiB on Linux
}

fn fixture(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.pcap"));
    let st = Command::new(BIN)
        .arg("fixture")
        .args(args)
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "fixture {name}");
    out
}

/// A pcap file with its header only: the tracker is built, no frame is processed.
fn empty_capture(dir: &Path) -> PathBuf {
    let p = dir.join("empty.pcap");
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]); // thiszone, sigfigs
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    std::fs::write(&p, h).unwrap();
    p
}

const MIB: f64 = (1 << 20) as f64;

#[test]
fn peak_resident_memory_under_floods_stays_within_two_percent_of_one_real_call() {
    if !Path::new("/proc/self/maps").exists() {
        eprintln!("skipped: no /proc (not Linux)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("voipsensor-memory-flat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tables = TrackerConfig::default().memory_bytes() as u64;
    let start = replay_peak(&empty_capture(&dir));
    let one = fixture(
        &dir,
        "one-call",
        &["--scenario", "long", "--calls", "1", "--seconds", "5"],
    );
    let normal = replay_peak(&one);
    let mut runs = Vec::new();
    // Each flood fills its table at default capacities (4,096 calls, 8,192 streams,
    // 1,024 TCP streams, 256 fragment sets) several times over.
    for scenario in [
        "flood-call-ids-sdp",
        "flood-invite-pairs",
        "flood-ssrcs-ports",
        "flood-tcp-partial",
        "flood-fragments",
    ] {
        let args = [
            "--scenario",
            scenario,
            "--calls",
            "2",
            "--seconds",
            "10",
            "--flood-count",
            "20000",
        ];
        let f = fixture(&dir, scenario, &args);
        runs.push((scenario.to_string(), replay_peak(&f)));
        std::fs::remove_file(&f).ok();
    }
    std::fs::remove_dir_all(&dir).ok();
    eprintln!(
        "tables {tables} B ({:.1} MiB); start (empty capture) peak {:.1} MiB, base {:.1} MiB",
        tables as f64 / MIB,
        start as f64 / MIB,
        start.saturating_sub(tables) as f64 / MIB
    );
    // The tables are resident from the start, and the rest is a fixed base.
    assert!(start >= tables, "start peak {start} < tables {tables}");
    assert!(
        start - tables <= 24 << 20,
        "base {} MiB",
        (start - tables) >> 20
    );
    // Traffic first runs the code that reads it: the unoptimised test build's code pages
    // (file-backed, counted in RSS) grow the peak by about 1 MiB over an empty capture. The
    // data does not: that is what the floods below hold against one real call.
    eprintln!(
        "one call: peak {:.1} MiB ({:+.2} % of the empty capture)",
        normal as f64 / MIB,
        (normal as f64 / start as f64 - 1.0) * 100.0
    );
    assert!(
        normal as f64 <= start as f64 * 1.02 + 2.0 * MIB,
        "one call: peak {normal} B, empty capture {start} B"
    );
    for (name, peak) in &runs {
        let grown = *peak as f64 / normal as f64 - 1.0;
        eprintln!(
            "{name}: peak {:.1} MiB ({:+.2} % of one call)",
            *peak as f64 / MIB,
            grown * 100.0
        );
        // 2 % plus 256 KiB of code pages the replay reaches only under a flood.
        assert!(
            *peak as f64 <= normal as f64 * 1.02 + 256.0 * 1024.0,
            "{name}: peak {peak} B, one call {normal} B"
        );
    }
}
