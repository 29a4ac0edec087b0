//! Is the wall clock trustworthy? A Raspberry Pi has no RTC: it boots in 1970 (or at the
//! image's build time) until NTP syncs, and events stamped before that must be recognisable.
//! The kernel knows: `adjtimex` returns `TIME_ERROR` while the clock is unsynchronised
//! (STA_UNSYNC set), which is what an NTP daemon clears once it disciplines the clock.

/// True once an NTP daemon has synchronised the kernel clock.
pub fn synchronised() -> bool {
    // SAFETY: modes = 0 only reads the kernel's state into the zeroed struct.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::adjtimex(&mut t) };
    r >= 0 && r != libc::TIME_ERROR
}

#[cfg(test)]
mod tests {
    #[test]
    fn reading_the_clock_state_agrees_with_the_kernel_flag() {
        let mut t: libc::timex = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::adjtimex(&mut t) };
        assert!(r >= 0);
        assert_eq!(
            super::synchronised(),
            t.status & libc::STA_UNSYNC == 0 && r != libc::TIME_ERROR
        );
    }
}
