//! Boot-time memory: the tracker allocates every table at start, so a board that cannot
//! hold them must fail now with a clear error, not be killed by the OOM killer at the
//! first busy hour; and every page of what it mapped is faulted in now ([`populate_new`]),
//! so resident memory one second after start is the peak.

use anyhow::{Result, bail};

/// Headroom over the tables and kernel rings: binary, stacks, MQTT outbox, allocator slack
/// (`replay`'s measured base is ≈ 7 MiB in release; `run` adds the MQTT and HTTP threads).
pub const OVERHEAD_BYTES: u64 = 16 << 20;

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Fails when `tables + rings` (plus [`OVERHEAD_BYTES`]) exceed what `meminfo` says is
/// available; passes when the figure is unknown (no /proc: not Linux, or a sandbox).
pub fn check(tables: u64, rings: u64, meminfo: Option<&str>) -> Result<()> {
    let Some(avail) = meminfo.and_then(mem_available) else {
        return Ok(());
    };
    let need = tables + rings + OVERHEAD_BYTES;
    if need > avail {
        bail!(
            "not enough memory for the configured capacities: the tables need {} MiB and the \
             capture rings {} MiB (+{} MiB overhead), but only {} MiB is available; lower \
             [capacity] (see boards/README.md) or capture.buffer_mb",
            tables >> 20,
            rings >> 20,
            OVERHEAD_BYTES >> 20,
            avail >> 20
        );
    }
    Ok(())
}

/// `VmHWM` (peak resident) and `VmRSS` of a `/proc/self/status` text, in bytes.
pub fn vm_hwm_rss(status: &str) -> Option<(u64, u64)> {
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((kib("VmHWM:")?, kib("VmRSS:")?))
}

/// Private writable anonymous mappings of a `/proc/self/maps` text (the brk heap and the
/// unnamed mmaps large allocations get): where the allocator puts the tables. The main
/// stack and file mappings are left out.
pub fn anon_writable(maps: &str) -> Vec<(usize, usize)> {
    ranges(maps, |perms, path| {
        perms.starts_with("rw") && perms.ends_with('p') && (path.is_empty() || path == "[heap]")
    })
}

/// Shared socket mappings of a `/proc/self/maps` text: the capture rings libpcap mapped
/// (`PACKET_MMAP`), which the kernel fills as packets arrive.
pub fn socket_rings(maps: &str) -> Vec<(usize, usize)> {
    ranges(maps, |perms, path| {
        perms.ends_with('s') && path.starts_with("socket:[")
    })
}

/// The address ranges of the `/proc/self/maps` lines whose permissions and path `keep`.
fn ranges(maps: &str, keep: impl Fn(&str, &str) -> bool) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms) = (f.next()?, f.next()?);
            let path = f.nth(3).unwrap_or("");
            if !keep(perms, path) {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let (a, b) = (
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            );
            (b > a).then_some((a, b))
        })
        .collect()
}

/// Maps every page of the capture rings into this process now (`MADV_POPULATE_READ`: the
/// kernel's pages, nothing written), so a burst that first fills the ring does not add
/// its size to resident memory at the busy hour. `None`: no `/proc`, or no ring.
pub fn populate_rings() -> Option<Populated> {
    // Linux's value on every architecture (uapi/asm-generic/mman-common.h).
    const MADV_POPULATE_READ: libc::c_int = 22;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let rings = socket_rings(&maps);
    let bytes: usize = rings.iter().map(|(a, b)| b - a).sum();
    if bytes == 0 {
        return None;
    }
    let ok = rings.iter().all(|&(a, b)| {
        // SAFETY: a live mapping of this process; populating changes no byte.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, MADV_POPULATE_READ) == 0 }
    });
    Some(if ok {
        Populated::Madvise(bytes)
    } else {
        Populated::Failed(bytes)
    })
}

/// Logs what [`populate_rings`] did (a warning when it could not).
pub fn log_rings(p: Option<Populated>) {
    match p {
        Some(Populated::Failed(b)) => log::warn!(
            "capture rings: {:.1} MiB not mapped in: resident memory grows as they fill",
            b as f64 / (1 << 20) as f64
        ),
        Some(Populated::Madvise(b) | Populated::Mlock(b)) => log::info!(
            "capture rings: {:.1} MiB mapped in (madvise)",
            b as f64 / (1 << 20) as f64
        ),
        None => {}
    }
}

/// The parts of `after`'s ranges no range of `before` covers (both sorted, as in
/// `/proc/self/maps`): what was mapped in between. Adjacent mmaps merge into one
/// mapping, so a range can be partly old.
pub fn new_ranges(before: &[(usize, usize)], after: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &(mut a, b) in after {
        for &(oa, ob) in before {
            if ob <= a || oa >= b {
                continue;
            }
            if oa > a {
                out.push((a, oa));
            }
            a = a.max(ob);
            if a >= b {
                break;
            }
        }
        if a < b {
            out.push((a, b));
        }
    }
    out
}

/// How [`populate`] made the pages resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Populated {
    /// `madvise(MADV_POPULATE_WRITE)` (Linux 5.14+).
    Madvise(usize),
    /// `mlock` then `munlock`, 64 KiB at a time (older kernels; needs RLIMIT_MEMLOCK ≥ 64 KiB).
    Mlock(usize),
    /// Neither worked: pages the tables have not written yet become resident on first use.
    Failed(usize),
}

/// Write-faults every page of `ranges` now, keeping their contents: zero-filled buffers
/// (`vec![0; n]` is mapped lazily) would otherwise become resident only when a flood first
/// writes them — RSS growing at the busy hour instead of failing at boot.
pub fn populate(ranges: &[(usize, usize)]) -> Populated {
    // Linux's value on every architecture (uapi/asm-generic/mman-common.h).
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    const CHUNK: usize = 64 << 10;
    let bytes = ranges.iter().map(|(a, b)| b - a).sum();
    // A range another thread unmapped since the maps were read (its allocation freed)
    // has nothing left to fault in: it neither fails nor counts.
    let vanished = |a: usize, b: usize| {
        std::fs::read_to_string("/proc/self/maps")
            .is_ok_and(|m| !anon_writable(&m).iter().any(|&(x, y)| x <= a && b <= y))
    };
    let by_madvise = ranges.iter().all(|&(a, b)| {
        // SAFETY: the range is a live private mapping of this process (from its own maps);
        // populating it changes no byte, it only faults the pages in.
        let done =
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, MADV_POPULATE_WRITE) == 0 };
        done || vanished(a, b)
    });
    if by_madvise {
        return Populated::Madvise(bytes);
    }
    let by_mlock = ranges.iter().all(|&(a, b)| {
        (a..b).step_by(CHUNK).all(|at| {
            let len = CHUNK.min(b - at);
            let p = at as *const libc::c_void;
            // SAFETY: as above; mlock faults the pages in (writable ones for writing),
            // munlock leaves them resident.
            unsafe { libc::mlock(p, len) == 0 && libc::munlock(p, len) == 0 }
        })
    });
    if by_mlock {
        Populated::Mlock(bytes)
    } else {
        Populated::Failed(bytes)
    }
}

/// Asks for the tables in 2 MiB pages (transparent huge pages): every packet reads a
/// stream, an endpoint and a call slot at random places in tens of MiB, and with 4 KiB pages
/// nearly each of those misses the TLB (a Pi 4's Cortex-A72 maps 4 MiB of 4 KiB pages in
/// its TLB; 30 MiB of tables are 7,700 pages). The tables were written as they were built,
/// so their pages are collapsed in place (`MADV_COLLAPSE`, Linux 6.1+); with older kernels
/// or THP off, the advice is refused and the tables stay in small pages, as before.
/// Resident memory is the same either way: every page is populated regardless.
fn huge_pages(ranges: &[(usize, usize)]) {
    // Linux's value on every architecture (uapi/asm-generic/mman-common.h); not in `libc`.
    const MADV_COLLAPSE: libc::c_int = 25;
    for &(a, b) in ranges {
        let (p, len) = (a as *mut libc::c_void, b - a);
        // SAFETY: a live private mapping of this process (from its own maps); the advice
        // changes the page size behind it, never a byte of it.
        unsafe {
            if libc::madvise(p, len, libc::MADV_HUGEPAGE) == 0 {
                libc::madvise(p, len, MADV_COLLAPSE);
            }
        }
    }
}

/// Builds `make()` (the tracker) and makes everything it mapped resident: the difference
/// of this process's anonymous mappings before and after, in huge pages where the kernel
/// gives them ([`huge_pages`]). Without `/proc` (not Linux) it only builds.
pub fn populate_new<T>(make: impl FnOnce() -> T) -> (T, Option<Populated>) {
    let maps = || std::fs::read_to_string("/proc/self/maps").ok();
    let before = maps();
    let made = make();
    let populated = before.zip(maps()).map(|(b, a)| {
        let fresh = new_ranges(&anon_writable(&b), &anon_writable(&a));
        huge_pages(&fresh);
        populate(&fresh)
    });
    (made, populated)
}

/// Logs [`budget_line`]: at `level`, or as a warning when the pages could not be faulted in
/// (peak RSS will then grow as tables fill).
pub fn log_budget(parts: &[(&str, usize)], populated: Option<Populated>, level: log::Level) {
    let level = match populated {
        Some(Populated::Failed(_)) => log::Level::Warn,
        _ => level,
    };
    log::log!(level, "{}", budget_line(parts, populated));
}

/// The start-up log line: what the tables cost, by part (`TrackerConfig::memory_parts`),
/// how they were made resident, and the process's resident memory after.
pub fn budget_line(parts: &[(&str, usize)], populated: Option<Populated>) -> String {
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let total: usize = parts.iter().map(|(_, b)| b).sum();
    let each: Vec<String> = parts
        .iter()
        .map(|(name, b)| format!("{name} {:.2}", mib(*b)))
        .collect();
    let how = match populated {
        Some(Populated::Madvise(n)) => format!("{:.1} MiB faulted in (madvise)", mib(n)),
        Some(Populated::Mlock(n)) => format!("{:.1} MiB faulted in (mlock)", mib(n)),
        Some(Populated::Failed(n)) => {
            format!("{:.1} MiB NOT faulted in (no madvise, no mlock)", mib(n))
        }
        None => "not faulted in (no /proc/self/maps)".into(),
    };
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_hwm_rss(&s))
        .map_or(String::new(), |(_, rss)| {
            format!(", resident now {:.1} MiB", mib(rss as usize))
        });
    format!(
        "tables: {:.1} MiB ({total} bytes: {} MiB) allocated at start, {how}{rss}",
        mib(total),
        each.join(", ")
    )
}

// The fixtures are a 64-bit process's /proc/self/maps (addresses past 4 GiB).
#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0a000-55d0b000 r--p 00000000 fd:01 123 /usr/bin/voipsensor
55d0c000-55d0d000 rw-p 00001000 fd:01 123 /usr/bin/voipsensor
55d0e000-55d2e000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000200000 rw-p 00000000 00:00 0
7f0000200000-7f0000201000 ---p 00000000 00:00 0
7ffd0000-7ffd2000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn only_private_writable_anonymous_mappings_count_as_the_heap() {
        assert_eq!(
            anon_writable(MAPS),
            [(0x55d0e000, 0x55d2e000), (0x7f0000000000, 0x7f0000200000)]
        );
    }

    #[test]
    fn capture_rings_are_the_shared_socket_mappings() {
        let maps = "7ff00c000000-7ff010000000 rw-s 00000000 00:09 261982 socket:[261982]\n\
                    7ff010000000-7ff010001000 rw-s 00000000 fd:01 9 /dev/shm/x\n";
        assert_eq!(socket_rings(maps), [(0x7ff00c000000, 0x7ff010000000)]);
        assert!(socket_rings(MAPS).is_empty());
    }

    #[test]
    fn new_ranges_are_what_was_mapped_in_between_even_when_merged() {
        let before = [(0x1000, 0x3000), (0x8000, 0x9000)];
        // The heap grew by 0x2000, a new mmap landed below the second and merged with it.
        let after = [(0x1000, 0x5000), (0x6000, 0x9000), (0xa000, 0xb000)];
        assert_eq!(
            new_ranges(&before, &after),
            [(0x3000, 0x5000), (0x6000, 0x8000), (0xa000, 0xb000)]
        );
        assert!(new_ranges(&before, &before).is_empty());
    }

    /// Resident pages of the whole pages inside `v`, by `mincore`.
    fn resident_pages(v: &[u8]) -> (usize, usize) {
        let start = (v.as_ptr() as usize).next_multiple_of(4096);
        let end = (v.as_ptr() as usize + v.len()) & !4095;
        let mut vec = vec![0u8; (end - start) / 4096];
        // SAFETY: [start, end) lies inside `v`'s allocation; `vec` has a byte per page.
        let r = unsafe { libc::mincore(start as *mut libc::c_void, end - start, vec.as_mut_ptr()) };
        assert_eq!(r, 0);
        (vec.iter().filter(|&&b| b & 1 == 1).count(), vec.len())
    }

    #[test]
    // ARM test suites run under qemu-user in CI, which neither passes madvise populate
    // through nor reports residency with mincore; on a real board the call is the kernel's.
    #[cfg_attr(
        not(target_arch = "x86_64"),
        ignore = "qemu-user does not emulate MADV_POPULATE_WRITE/mincore"
    )]
    fn a_zero_filled_allocation_is_resident_after_populate_new() {
        // 16 MiB of zeros: calloc'd (a fresh mmap), mapped but not resident until written.
        let lazy = vec![0u8; 16 << 20];
        let (r, n) = resident_pages(&lazy);
        assert!(r < n / 2, "{r} of {n} resident before any write");
        let (v, how) = populate_new(|| vec![0u8; 16 << 20]);
        if !std::path::Path::new("/proc/self/maps").exists() {
            return;
        }
        assert!(
            matches!(how, Some(Populated::Madvise(_) | Populated::Mlock(_))),
            "{how:?}"
        );
        let (r, n) = resident_pages(&v);
        assert_eq!(r, n, "resident pages");
        assert!(v.iter().step_by(4096).all(|&b| b == 0), "contents kept");
    }

    const MEMINFO: &str = "MemTotal:        1000000 kB\nMemFree:          300000 kB\nMemAvailable:     102400 kB\nBuffers:            1000 kB\n";

    #[test]
    fn mem_available_is_read_in_bytes() {
        assert_eq!(mem_available(MEMINFO), Some(100 << 20));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn capacities_beyond_available_memory_fail_at_boot_with_the_figures() {
        // 100 MiB available: 60 + 20 + 16 fits, 70 + 20 + 16 does not.
        assert!(check(60 << 20, 20 << 20, Some(MEMINFO)).is_ok());
        let e = check(70 << 20, 20 << 20, Some(MEMINFO))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tables need 70 MiB") && e.contains("only 100 MiB"),
            "{e}"
        );
    }

    #[test]
    fn unknown_available_memory_does_not_block_the_start() {
        assert!(check(u64::MAX / 4, 0, None).is_ok());
        assert!(check(u64::MAX / 4, 0, Some("garbage")).is_ok());
    }
}
