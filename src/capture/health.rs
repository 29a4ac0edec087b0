//! Capture health per interface: what libpcap and the kernel say about the capture itself,
//! so capture loss is never reported as network loss, and a dead mirror port is noticed.

use crate::capture::dedup::DupWindow;
use serde::Serialize;

/// Where an interface's capture stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IfState {
    /// Handle open, reading.
    Capturing,
    /// No such interface (not yet created, unplugged USB NIC, removed veth): retrying.
    Absent,
    /// Present, but opening or reading failed: retrying.
    Error,
}

/// Cumulative pcap statistics across reopenings, and the last second's share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PcapCounts {
    /// Packets the kernel passed the filter (pcap `ps_recv`).
    pub received: u64,
    /// Dropped because the ring buffer was full: we were too slow (`ps_drop`).
    pub dropped_kernel: u64,
    /// Dropped by the NIC or its driver (`ps_ifdrop`).
    pub dropped_interface: u64,
}

impl PcapCounts {
    pub fn add(&mut self, o: &PcapCounts) {
        self.received += o.received;
        self.dropped_kernel += o.dropped_kernel;
        self.dropped_interface += o.dropped_interface;
    }
    pub fn dropping(&self) -> bool {
        self.dropped_kernel > 0 || self.dropped_interface > 0
    }
}

/// One interface in `health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IfHealth {
    pub name: String,
    pub state: IfState,
    /// `/sys/class/net/IF/operstate` (`up`, `down`, `lowerlayerdown`, ...), `absent` if gone.
    pub link: String,
    /// Frames read by us (duplicates included).
    pub frames: u64,
    /// Frames also seen on another interface within the duplicate window: not counted twice.
    pub duplicates: u64,
    /// Byte-identical copies of a frame just seen on this interface (`capture::dedup`):
    /// dropped before decoding unless `keep_duplicates`.
    pub mirror_duplicates: u64,
    /// Frames and mirror copies over the last 10 to 20 s: a large share is a SPAN mistake.
    pub mirror_window: DupWindow,
    pub total: PcapCounts,
    pub last_second: PcapCounts,
    /// Times the handle was (re)opened after the first.
    pub reopens: u64,
    /// Seconds since the last frame on this interface (None: never).
    pub idle_s: Option<u64>,
    /// Why it is not capturing, with the fix where one is known.
    pub error: Option<String>,
}

impl IfHealth {
    pub fn new(name: &str) -> IfHealth {
        IfHealth {
            name: name.to_string(),
            state: IfState::Absent,
            link: operstate(name),
            frames: 0,
            duplicates: 0,
            mirror_duplicates: 0,
            mirror_window: DupWindow::default(),
            total: PcapCounts::default(),
            last_second: PcapCounts::default(),
            reopens: 0,
            idle_s: None,
            error: None,
        }
    }
}

/// Link state from sysfs, `absent` when the interface does not exist.
pub fn operstate(name: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "absent".into())
}

/// The kernel's interface index (changes when an interface is removed and recreated).
pub fn ifindex(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whole-capture summary of `health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaptureSummary {
    pub total: PcapCounts,
    pub last_second: PcapCounts,
    /// Kernel or interface drops in the last seconds: metrics now carry `capture_loss`.
    pub capture_loss: bool,
    pub duplicates: u64,
    pub mirror_duplicates: u64,
    pub interfaces_capturing: usize,
    pub interfaces_configured: usize,
}

pub fn summarize(ifs: &[IfHealth], capture_loss: bool) -> CaptureSummary {
    let mut s = CaptureSummary {
        capture_loss,
        interfaces_configured: ifs.len(),
        ..Default::default()
    };
    for i in ifs {
        s.total.add(&i.total);
        s.last_second.add(&i.last_second);
        s.duplicates += i.duplicates;
        s.mirror_duplicates += i.mirror_duplicates;
        s.interfaces_capturing += usize::from(i.state == IfState::Capturing);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_adds_interfaces_and_counts_the_capturing_ones() {
        let mut a = IfHealth::new("does-not-exist0");
        assert_eq!(a.link, "absent");
        a.state = IfState::Capturing;
        a.total.dropped_kernel = 3;
        let mut b = IfHealth::new("does-not-exist1");
        b.total.received = 10;
        b.duplicates = 2;
        let s = summarize(&[a, b], true);
        assert_eq!(s.total.received, 10);
        assert_eq!(s.total.dropped_kernel, 3);
        assert_eq!((s.interfaces_capturing, s.interfaces_configured), (1, 2));
        assert_eq!(s.duplicates, 2);
    }
}
