//! Network namespaces and veth pairs made by a test (root only), and `tcpreplay` into them:
//! live capture on real interfaces without touching the host's own. Every namespace is
//! deleted on drop, with whatever interfaces it holds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `args`; whether it succeeded (output discarded).
pub fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `args`; panics with its stderr unless it succeeded.
#[track_caller]
pub fn must(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace of the test's own, named `PREFIX<pid>-<n>`.
pub struct Ns(pub String);

impl Ns {
    /// `None` after a visible skip when not root, without `ip` or `tcpreplay`, or when
    /// namespaces cannot be made here.
    #[track_caller]
    pub fn new(prefix: &str) -> Option<Ns> {
        if !super::need_root() {
            return None;
        }
        for (tool, package) in [("ip", "iproute2"), ("tcpreplay", "tcpreplay")] {
            if !super::need_tool(tool, package) {
                return None;
            }
        }
        let name = format!(
            "{prefix}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        if !super::need(
            sh(&["ip", "netns", "add", &name]),
            "`ip netns add` failed (no namespace support here)",
        ) {
            return None;
        }
        let ns = Ns(name);
        must(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
        // No IPv6 autoconfiguration chatter on the test links: only the test's traffic.
        let _ = ns
            .exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])
            .status();
        Some(ns)
    }

    /// A veth pair `a`–`b` inside the namespace, both up, large MTU (captures may hold
    /// frames bigger than 1500).
    pub fn veth(&self, a: &str, b: &str) {
        must(&[
            "ip", "-n", &self.0, "link", "add", a, "mtu", "9000", "type", "veth", "peer", "name",
            b, "mtu", "9000",
        ]);
        must(&["ip", "-n", &self.0, "link", "set", a, "up"]);
        must(&["ip", "-n", &self.0, "link", "set", b, "up"]);
    }

    /// A veth pair whose end `outside` stays in the test's namespace and whose end `inside`
    /// is in this one, both up, large MTU. The caller deletes `outside` (it is not in the
    /// namespace, so dropping the namespace does not).
    pub fn veth_out(&self, outside: &str, inside: &str) {
        must(&[
            "ip", "link", "add", outside, "mtu", "9000", "type", "veth", "peer", "name", inside,
            "mtu", "9000", "netns", &self.0,
        ]);
        must(&["ip", "link", "set", outside, "up"]);
        must(&["ip", "-n", &self.0, "link", "set", inside, "up"]);
    }

    /// `ip netns exec NS ARGS…`, not started.
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(args);
        c
    }

    /// Sends `pcap` out of `iface` (in the namespace) with `tcpreplay EXTRA`; panics with
    /// tcpreplay's stderr if it fails.
    #[track_caller]
    pub fn replay(&self, iface: &str, pcap: &Path, extra: &[&str]) {
        let out = self
            .exec(&["tcpreplay", "-q", "-i", iface])
            .args(extra)
            .arg(pcap)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tcpreplay: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
