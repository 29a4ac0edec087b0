//! Boot-time memory check: the tracker allocates every table at start, so a board that
//! cannot hold them must fail now with a clear error, not be killed by the OOM killer
//! at the first busy hour.

use anyhow::{Result, bail};

/// Headroom over the tables and kernel rings: binary, stacks, MQTT outbox, allocator slack.
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

#[cfg(test)]
mod tests {
    use super::*;

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
