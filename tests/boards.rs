//! Every `boards/*.toml` parses, has every required field, and holds sane values.
//! The schema is documented in `boards/README.md`; this test also checks that the README
//! names every field, and that every board's target is one `image/targets.env` builds.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Board {
    id: String,
    name: String,
    soc: String,
    target: String,
    alt_targets: Vec<String>,
    debian_arch: String,
    memory_mib: u32,
    memory_variants_mib: Vec<u32>,
    modules: Vec<String>,
    watchdog: String,
    supported: bool,
    status_led: String,
    kernel: Kernel,
    boot: Boot,
    nics: Vec<Nic>,
    capacity: Capacity,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kernel {
    flavour: String,
    package: String,
    dtbs: Vec<String>,
    cmdline: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Boot {
    method: String,
    packages: Vec<String>,
    files: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nic {
    role: String,
    name: String,
    drivers: Vec<String>,
    modules: Vec<String>,
    device_path: String,
    bus: String,
    builtin: bool,
    speed_mbps: u32,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct Capacity {
    calls: u32,
    media_endpoints: u32,
    streams: u32,
    fragments: u32,
    tcp_streams: u32,
}

const REQUIRED_BOARDS: [&str; 7] = [
    "rpi3",
    "rpi4",
    "rpi400",
    "rpi5",
    "rpizero2w",
    "arm64-uefi",
    "qemu-virt",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_boards() -> Vec<(PathBuf, Board)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("boards"))
        .expect("boards/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let board: Board =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, board)
        })
        .collect()
}

/// `VS_TARGETS` from image/targets.env (plain KEY="value" lines).
fn built_targets() -> BTreeSet<String> {
    let env = std::fs::read_to_string(root().join("image/targets.env")).expect("image/targets.env");
    let line = env
        .lines()
        .find_map(|l| l.trim().strip_prefix("VS_TARGETS="))
        .expect("VS_TARGETS in targets.env");
    line.trim_matches('"')
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// What the tracker allocates for these capacities: the library's own figure.
fn capacity_bytes(c: &Capacity) -> u64 {
    let d = voipsensor::track::tracker::TrackerConfig::default();
    let cfg = voipsensor::track::tracker::TrackerConfig {
        calls: c.calls as usize,
        fragments: c.fragments as usize,
        tcp_streams: c.tcp_streams as usize,
        media: voipsensor::track::media::MediaConfig {
            endpoints: c.media_endpoints as usize,
            streams: c.streams as usize,
            ..d.media
        },
        ..d
    };
    cfg.memory_bytes() as u64
}

fn check(path: &Path, b: &Board, targets: &BTreeSet<String>) -> Vec<String> {
    let mut errs = Vec::new();
    let mut err = |m: String| errs.push(format!("{}: {m}", path.display()));
    let stem = path.file_stem().unwrap().to_string_lossy();
    if b.id != stem {
        err(format!("id {:?} differs from the file name {stem:?}", b.id));
    }
    if !b
        .id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        err(format!("id {:?}: use [a-z0-9-]", b.id));
    }
    for (field, v) in [
        ("name", &b.name),
        ("soc", &b.soc),
        ("kernel.flavour", &b.kernel.flavour),
    ] {
        if v.trim().is_empty() {
            err(format!("{field} is empty"));
        }
    }
    // Target triples: the one built for the board must be one image/targets.env builds.
    for t in std::iter::once(&b.target).chain(&b.alt_targets) {
        if !targets.contains(t) {
            err(format!(
                "target {t} is not in image/targets.env VS_TARGETS {targets:?}"
            ));
        }
    }
    if b.alt_targets.contains(&b.target) {
        err("alt_targets repeats target".into());
    }
    let arch_of = |t: &str| match t.split('-').next() {
        Some("aarch64") => "arm64",
        Some(a) if a.starts_with("armv7") => "armhf",
        _ => "?",
    };
    if arch_of(&b.target) != b.debian_arch {
        err(format!(
            "debian_arch {} does not match target {}",
            b.debian_arch, b.target
        ));
    }
    // Memory.
    if !(256..=1 << 20).contains(&b.memory_mib) {
        err(format!("memory_mib {} out of 256..=1048576", b.memory_mib));
    }
    if b.memory_variants_mib.iter().min() != Some(&b.memory_mib) {
        err(format!(
            "memory_mib {} must be the smallest of memory_variants_mib {:?}",
            b.memory_mib, b.memory_variants_mib
        ));
    }
    if !b.memory_variants_mib.windows(2).all(|w| w[0] < w[1]) {
        err("memory_variants_mib must be strictly ascending".into());
    }
    // Kernel and boot.
    if b.kernel.cmdline.contains("root=") || b.kernel.cmdline.contains('\n') {
        err("kernel.cmdline: consoles and extras only; the image adds root=".into());
    }
    if b.kernel.package != format!("linux-image-{}", b.kernel.flavour) {
        err(format!(
            "kernel.package {} is not linux-image-{}",
            b.kernel.package, b.kernel.flavour
        ));
    }
    for d in &b.kernel.dtbs {
        if !d.ends_with(".dtb") || d.starts_with('/') || d.contains("..") {
            err(format!(
                "kernel.dtbs entry {d:?}: want a relative path ending in .dtb"
            ));
        }
    }
    let methods = ["rpi-firmware", "rpi-eeprom", "uefi"];
    if !methods.contains(&b.boot.method.as_str()) {
        err(format!(
            "boot.method {:?} not one of {methods:?}",
            b.boot.method
        ));
    }
    match b.boot.method.as_str() {
        "rpi-firmware" | "rpi-eeprom" => {
            if b.kernel.dtbs.is_empty() {
                err("a Raspberry Pi board needs kernel.dtbs".into());
            }
            if !b.boot.files.iter().any(|f| f == "config.txt") {
                err("a Raspberry Pi board boots with config.txt".into());
            }
        }
        "uefi" => {
            if !b.kernel.dtbs.is_empty() {
                err(
                    "a UEFI board gets its hardware description from firmware: dtbs must be empty"
                        .into(),
                );
            }
            if !b.boot.files.iter().any(|f| f.ends_with(".EFI")) {
                err("a UEFI board needs an EFI loader in boot.files".into());
            }
        }
        _ => {}
    }
    if b.boot.packages.is_empty() || b.boot.files.is_empty() {
        err("boot.packages and boot.files must not be empty".into());
    }
    // NICs: exactly one mirror port, exactly one uplink, unique names, known buses.
    let count = |r: &str| b.nics.iter().filter(|n| n.role == r).count();
    if count("mirror") != 1 {
        err(format!(
            "want exactly one nic with role mirror, found {}",
            count("mirror")
        ));
    }
    if count("uplink") != 1 {
        err(format!(
            "want exactly one nic with role uplink, found {}",
            count("uplink")
        ));
    }
    let mut names = BTreeSet::new();
    for n in &b.nics {
        if !["mirror", "uplink", "backup"].contains(&n.role.as_str()) {
            err(format!(
                "nic {}: role {:?} not mirror/uplink/backup",
                n.name, n.role
            ));
        }
        if !["platform", "usb", "pci", "sdio", "virtio"].contains(&n.bus.as_str()) {
            err(format!("nic {}: bus {:?} unknown", n.name, n.bus));
        }
        if n.name.is_empty() || n.name.len() > 15 || n.name.contains(['/', ' ']) {
            err(format!(
                "nic name {:?} is not a valid interface name",
                n.name
            ));
        }
        if !names.insert(n.name.clone()) {
            err(format!("nic name {} used twice", n.name));
        }
        if n.drivers.is_empty() {
            err(format!("nic {} lists no drivers", n.name));
        }
        // Ports on the SoC, its SDIO Wi-Fi or a VM cannot be plugged in later.
        if ["platform", "sdio", "virtio"].contains(&n.bus.as_str()) && !n.builtin {
            err(format!(
                "nic {}: a {} port is always builtin",
                n.name, n.bus
            ));
        }
        if !(10..=100_000).contains(&n.speed_mbps) {
            err(format!(
                "nic {}: speed_mbps {} out of 10..=100000",
                n.name, n.speed_mbps
            ));
        }
        // The modules providing a NIC's drivers (sysfs names, e.g. `bcmgenet` from
        // `genet.ko`) are in the board's module list (built-in ones load as no-ops).
        if n.modules.is_empty() {
            err(format!("nic {} lists no modules", n.name));
        }
        for m in &n.modules {
            if !b.modules.contains(m) {
                err(format!("nic {} module {m} missing from modules", n.name));
            }
        }
    }
    // The image's /init matches device_path as a shell glob against the sysfs device path.
    for n in &b.nics {
        if n.device_path.is_empty() || n.device_path.contains(char::is_whitespace) {
            err(format!(
                "nic {}: device_path {:?}: a glob without spaces (\"*\" for any)",
                n.name, n.device_path
            ));
        }
    }
    if !b.watchdog.is_empty() && !b.watchdog.starts_with("/dev/watchdog") {
        err(format!(
            "watchdog {:?}: empty or /dev/watchdogN",
            b.watchdog
        ));
    }
    // A board the image ships must have a pinned kernel of its flavour.
    if b.supported {
        let lock = std::fs::read_to_string(root().join("image/packages.lock")).unwrap_or_default();
        let want = format!("+deb13-{}=", b.kernel.flavour);
        if !lock
            .lines()
            .any(|l| l.starts_with("linux-image-") && l.contains(&want))
        {
            err(format!(
                "supported board, but image/packages.lock pins no linux-image-*{want}"
            ));
        }
    }
    if !b.modules.iter().any(|m| m == "af_packet") {
        err("modules must include af_packet (the capture socket)".into());
    }
    if !b.status_led.is_empty() && !b.status_led.starts_with("/sys/class/leds/") {
        err(format!(
            "status_led {:?}: empty or /sys/class/leds/NAME",
            b.status_led
        ));
    }
    // Capacities: positive, consistent with each other, and within 1/8 of the memory.
    let c = b.capacity;
    for (name, v) in [
        ("calls", c.calls),
        ("media_endpoints", c.media_endpoints),
        ("streams", c.streams),
        ("fragments", c.fragments),
        ("tcp_streams", c.tcp_streams),
    ] {
        if !(16..=1 << 22).contains(&v) {
            err(format!("capacity.{name} = {v} out of 16..=4194304"));
        }
    }
    if c.media_endpoints < 2 * c.calls || c.streams < 2 * c.calls {
        err(
            "capacity: a call has two sides: media_endpoints and streams must be >= 2 * calls"
                .into(),
        );
    }
    if c.fragments > c.streams || c.tcp_streams > c.calls {
        err("capacity: fragments <= streams and tcp_streams <= calls".into());
    }
    let budget = u64::from(b.memory_mib) * 1024 * 1024 / 8;
    if capacity_bytes(&c) > budget {
        err(format!(
            "capacity needs ~{} MiB, over 1/8 of memory_mib ({} MiB)",
            capacity_bytes(&c) >> 20,
            budget >> 20
        ));
    }
    errs
}

#[test]
fn every_board_file_is_valid() {
    let targets = built_targets();
    let boards = load_boards();
    assert!(!boards.is_empty(), "no boards/*.toml");
    let errs: Vec<String> = boards
        .iter()
        .flat_map(|(p, b)| check(p, b, &targets))
        .collect();
    assert!(errs.is_empty(), "board errors:\n{}", errs.join("\n"));
}

#[test]
fn required_boards_exist() {
    let ids: BTreeSet<String> = load_boards().into_iter().map(|(_, b)| b.id).collect();
    for id in REQUIRED_BOARDS {
        assert!(ids.contains(id), "boards/{id}.toml missing (have {ids:?})");
    }
}

#[test]
fn capacities_grow_with_memory() {
    let boards = load_boards();
    for (pa, a) in &boards {
        for (pb, b) in &boards {
            if a.memory_mib < b.memory_mib {
                assert!(
                    capacity_bytes(&a.capacity) <= capacity_bytes(&b.capacity),
                    "{} has less memory than {} but bigger tables",
                    pa.display(),
                    pb.display()
                );
            }
        }
    }
}

#[test]
fn readme_documents_every_field() {
    let readme =
        std::fs::read_to_string(root().join("boards/README.md")).expect("boards/README.md");
    let fields = [
        "id",
        "name",
        "soc",
        "target",
        "alt_targets",
        "debian_arch",
        "memory_mib",
        "memory_variants_mib",
        "modules",
        "watchdog",
        "supported",
        "status_led",
        "kernel.flavour",
        "kernel.package",
        "kernel.dtbs",
        "kernel.cmdline",
        "boot.method",
        "boot.packages",
        "boot.files",
        "nics.role",
        "nics.name",
        "nics.drivers",
        "nics.modules",
        "nics.device_path",
        "nics.bus",
        "nics.builtin",
        "nics.speed_mbps",
        "capacity.calls",
        "capacity.media_endpoints",
        "capacity.streams",
        "capacity.fragments",
        "capacity.tcp_streams",
    ];
    for f in fields {
        assert!(
            readme.contains(&format!("`{f}`")),
            "boards/README.md does not document `{f}`"
        );
    }
}
