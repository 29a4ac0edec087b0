//! Live capture from network interfaces through libpcap, with the interface lifecycle:
//! an interface that is absent, goes down or disappears is retried with backoff and resumes
//! without a restart.
//!
//! Handles are nonblocking and polled together from one thread (`poll(2)` on their
//! selectable descriptors), so frames go from the kernel ring straight to the tracker with no
//! copy, no channel and no allocation per frame. Immediate mode stays off: the kernel hands
//! over whole ring blocks, retired when full or after the read timeout.

use crate::capture::dedup::MirrorDuplicates;
use crate::capture::health::{IfHealth, IfState, PcapCounts, ifindex, operstate};
use crate::wire::LinkType;
use embassy_time::Instant;
use pcap::{Active, Capture};
use std::os::unix::io::RawFd;

unsafe extern "C" {
    // libpcap: the descriptor to poll(2) on (pcap's crate keeps its wrapper private).
    fn pcap_get_selectable_fd(p: *mut libc::c_void) -> libc::c_int;
}
use std::time::{Duration, Instant as WallClock};

/// How a handle is opened (from `[capture]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub promisc: bool,
    pub snaplen: u32,
    pub buffer_bytes: u32,
    /// Kernel block timeout: frames reach us at most this late when traffic is light.
    pub timeout_ms: i32,
    /// User filter, empty for everything; VLAN-tagged copies of it pass too.
    pub bpf: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            promisc: true,
            snaplen: 65535,
            buffer_bytes: 64 << 20,
            timeout_ms: 100,
            bpf: String::new(),
        }
    }
}

/// A filter that also matches 802.1Q-tagged frames: `vlan` shifts the offsets of everything
/// after it, so the plain expression alone misses tagged traffic on a trunk mirror.
pub fn vlan_aware_filter(bpf: &str) -> String {
    let f = bpf.trim();
    if f.is_empty() {
        String::new()
    } else {
        format!("({f}) or (vlan and ({f}))")
    }
}

/// One open capture handle.
pub struct Handle {
    cap: Capture<Active>,
    fd: RawFd,
    link: LinkType,
    ifindex: Option<u32>,
    last: Option<pcap::Stat>,
}

/// Why opening failed: the interface is not there (retry quietly) or something else.
#[derive(Debug)]
pub enum OpenError {
    Absent(String),
    Other(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Absent(s) | OpenError::Other(s) => f.write_str(s),
        }
    }
}

fn explain(name: &str, e: &pcap::Error) -> String {
    let s = e.to_string();
    if s.contains("ermission") || s.contains("not permitted") {
        format!(
            "{name}: {s}: capturing needs root or CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode): setcap cap_net_raw,cap_net_admin+ep on the binary, or AmbientCapabilities= in the systemd unit"
        )
    } else {
        format!("{name}: {s}")
    }
}

impl Handle {
    pub fn open(name: &str, o: &Options) -> Result<Handle, OpenError> {
        let index = ifindex(name);
        if index.is_none() {
            return Err(OpenError::Absent(format!(
                "{name}: no such interface (waiting for it to appear; `voipsensor interfaces` lists them)"
            )));
        }
        let cap = Capture::from_device(name)
            .and_then(|c| {
                c.promisc(o.promisc)
                    .snaplen(o.snaplen as i32)
                    .buffer_size(o.buffer_bytes as i32)
                    .immediate_mode(false)
                    .timeout(o.timeout_ms)
                    .open()
            })
            .map_err(|e| OpenError::Other(explain(name, &e)))?;
        let dlt = cap.get_datalink().0;
        let Some(link) = LinkType::from_dlt(dlt) else {
            return Err(OpenError::Other(format!(
                "{name}: link type {dlt} is not supported (Ethernet, Linux cooked SLL/SLL2, raw IP and BSD loopback are)"
            )));
        };
        let mut cap = cap
            .setnonblock()
            .map_err(|e| OpenError::Other(explain(name, &e)))?;
        let filter = vlan_aware_filter(&o.bpf);
        if !filter.is_empty() {
            cap.filter(&filter, true).map_err(|e| {
                OpenError::Other(format!(
                    "{name}: capture.bpf {:?} does not compile: {e}; check the expression with `tcpdump -d`",
                    o.bpf
                ))
            })?;
        }
        // SAFETY: the handle is live and activated; the call only reads its descriptor.
        let fd = unsafe { pcap_get_selectable_fd(cap.as_ptr() as *mut libc::c_void) };
        if fd < 0 {
            return Err(OpenError::Other(format!(
                "{name}: libpcap offers no pollable descriptor"
            )));
        }
        Ok(Handle {
            cap,
            fd,
            link,
            ifindex: index,
            last: None,
        })
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Reads up to `max` frames that are ready; `Ok(n)` with `n < max` when the ring is empty.
    pub fn read(
        &mut self,
        max: usize,
        mut f: impl FnMut(Instant, &[u8]),
    ) -> Result<usize, pcap::Error> {
        let cap = &mut self.cap;
        for n in 0..max {
            match cap.next_packet() {
                Ok(p) => {
                    let h = p.header;
                    // `i64::from`: time_t and suseconds_t are 32-bit on armv7.
                    #[allow(clippy::useless_conversion)]
                    let us = i64::from(h.ts.tv_sec)
                        .saturating_mul(1_000_000)
                        .saturating_add(i64::from(h.ts.tv_usec))
                        .max(0) as u64;
                    f(Instant::from_micros(us), p.data);
                }
                Err(pcap::Error::TimeoutExpired) => return Ok(n),
                Err(e) => return Err(e),
            }
        }
        Ok(max)
    }

    /// pcap statistics since the last call (the kernel's counters wrap at 32 bits).
    pub fn stats_delta(&mut self) -> Result<PcapCounts, pcap::Error> {
        let s = self.cap.stats()?;
        let d = match self.last {
            None => PcapCounts {
                received: s.received.into(),
                dropped_kernel: s.dropped.into(),
                dropped_interface: s.if_dropped.into(),
            },
            Some(l) => PcapCounts {
                received: s.received.wrapping_sub(l.received).into(),
                dropped_kernel: s.dropped.wrapping_sub(l.dropped).into(),
                dropped_interface: s.if_dropped.wrapping_sub(l.if_dropped).into(),
            },
        };
        self.last = Some(s);
        Ok(d)
    }
}

/// First retry after a failure, and the cap (doubling in between).
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// One configured interface: its handle when open, its retry schedule, its health.
pub struct Interface {
    pub name: String,
    pub handle: Option<Handle>,
    retry_at: WallClock,
    backoff: Duration,
    opened_once: bool,
    pub last_frame: Option<WallClock>,
    pub health: IfHealth,
    /// Mirror copies of this interface's own frames.
    pub mirror: MirrorDuplicates,
}

impl Interface {
    pub fn new(name: &str) -> Interface {
        Interface {
            name: name.to_string(),
            handle: None,
            retry_at: WallClock::now(),
            backoff: BACKOFF_MIN,
            opened_once: false,
            last_frame: None,
            health: IfHealth::new(name),
            mirror: MirrorDuplicates::new(),
        }
    }

    /// Opens the handle if it is closed and its retry time has come. Returns a message
    /// to log when the state changed.
    pub fn try_open(&mut self, o: &Options, now: WallClock) -> Option<String> {
        if self.handle.is_some() || now < self.retry_at {
            return None;
        }
        match Handle::open(&self.name, o) {
            Ok(h) => {
                self.handle = Some(h);
                self.backoff = BACKOFF_MIN;
                self.health.state = IfState::Capturing;
                self.health.error = None;
                self.health.link = operstate(&self.name);
                let msg = if self.opened_once {
                    self.health.reopens += 1;
                    format!("{}: capture resumed (link {})", self.name, self.health.link)
                } else {
                    format!("{}: capturing (link {})", self.name, self.health.link)
                };
                self.opened_once = true;
                Some(msg)
            }
            Err(e) => {
                let (state, text) = match &e {
                    OpenError::Absent(s) => (IfState::Absent, s.clone()),
                    OpenError::Other(s) => (IfState::Error, s.clone()),
                };
                let changed = self.health.error.as_deref() != Some(text.as_str());
                self.health.state = state;
                self.health.error = Some(text.clone());
                self.health.link = operstate(&self.name);
                self.retry_at = now + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                changed
                    .then(|| format!("{text}; retrying every {} s at most", BACKOFF_MAX.as_secs()))
            }
        }
    }

    /// Closes the handle after a failure and schedules the retry.
    pub fn lose(&mut self, why: String, now: WallClock) -> String {
        self.handle = None;
        let gone = ifindex(&self.name).is_none();
        self.health.state = if gone {
            IfState::Absent
        } else {
            IfState::Error
        };
        self.health.link = operstate(&self.name);
        let msg = format!("{}: capture lost: {why}; retrying", self.name);
        self.health.error = Some(msg.clone());
        self.retry_at = now + BACKOFF_MIN;
        self.backoff = BACKOFF_MIN * 2;
        msg
    }

    /// Once a second: link state; the handle is dropped when the interface was removed or
    /// replaced (a recreated interface has a new index the old socket is not bound to).
    pub fn check(&mut self, now: WallClock) -> Option<String> {
        self.health.link = operstate(&self.name);
        self.health.idle_s = self
            .last_frame
            .map(|t| now.saturating_duration_since(t).as_secs());
        let h = self.handle.as_ref()?;
        match ifindex(&self.name) {
            None => Some(self.lose("interface removed".into(), now)),
            Some(i) if Some(i) != h.ifindex => {
                Some(self.lose("interface was recreated".into(), now))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_filter_wraps_the_expression_twice() {
        assert_eq!(vlan_aware_filter(""), "");
        assert_eq!(
            vlan_aware_filter("udp port 5060"),
            "(udp port 5060) or (vlan and (udp port 5060))"
        );
    }

    #[test]
    fn an_absent_interface_is_reported_as_absent_with_the_fix() {
        let mut i = Interface::new("vsnosuch0");
        let msg = i.try_open(&Options::default(), WallClock::now()).unwrap();
        assert_eq!(i.health.state, IfState::Absent);
        assert!(msg.contains("no such interface"), "{msg}");
        // Not retried before its backoff.
        assert!(i.try_open(&Options::default(), WallClock::now()).is_none());
    }
}
