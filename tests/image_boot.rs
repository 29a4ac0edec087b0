//! The qemu-virt SD-card image, booted under qemu-system-aarch64 (TCG) both ways — direct
//! kernel boot from the files inside the image, and UEFI (AAVMF) from the disk itself — with
//! sensor.toml edited inside the image by mtools, a mosquitto on the host's loopback (reached
//! through restricted user-mode networking as 10.0.2.100:1883 only; no NTP or DNS), and a
//! capture replayed into the mirror NIC (`-netdev dgram`, one Ethernet frame per datagram).
//! Needs the image from `bash image/build-image.sh qemu-virt` (CI: `image/ci-image.sh`).

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_voipsensor");
const AAVMF: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn image() -> PathBuf {
    root().join(format!(
        "target/image/voipsensor-qemu-virt-{}.img",
        env!("CARGO_PKG_VERSION")
    ))
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vs-image-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child in its own process group, killed (group and all) on drop.
struct Guard(Child);

impl Guard {
    fn spawn(cmd: &mut Command) -> Guard {
        use std::os::unix::process::CommandExt;
        Guard(cmd.process_group(0).spawn().expect("spawn"))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

fn broker(dir: &Path) -> (Guard, u16) {
    let port = free_tcp();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n\
             log_dest file {}/mosquitto.log\n",
            dir.display()
        ),
    )
    .unwrap();
    let g = Guard::spawn(Command::new("mosquitto").arg("-c").arg(&conf));
    wait_for("mosquitto listening", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (g, port)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `voipsensor watch` on the broker: every message as a JSON line, collected.
struct Watch {
    _g: Guard,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Watch {
    fn start(port: u16) -> Watch {
        let mut g = Guard::spawn(
            Command::new(BIN)
                .args(["watch", "--broker", &format!("mqtt://127.0.0.1:{port}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let out = g.0.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    l.lock().unwrap().push(v);
                }
            }
        });
        Watch { _g: g, lines }
    }

    fn all(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    fn statuses(&self, state: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|v| v["type"] == "status" && v["state"] == state)
            .collect()
    }
}

/// A guest: qemu under `timeout`, its serial console on stdin/stdout, collected and logged.
struct Guest {
    _g: Guard,
    stdin: ChildStdin,
    console: Arc<Mutex<String>>,
    mirror: UdpSocket,
}

impl Guest {
    fn boot(dir: &Path, img: &Path, uefi: bool, broker: u16, ssh: Option<u16>) -> Guest {
        let (local, remote) = (free_udp(), free_udp());
        let mirror = UdpSocket::bind(("127.0.0.1", remote)).unwrap();
        mirror.connect(("127.0.0.1", local)).unwrap();
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "KILL", "240", "qemu-system-aarch64"])
            .args([
                "-M",
                "virt",
                "-cpu",
                "cortex-a72",
                "-m",
                "1024",
                "-smp",
                "2",
            ])
            .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
            .args(["-drive"])
            .arg(format!(
                "if=none,id=d,format=raw,readonly=on,file={}",
                img.display()
            ))
            .args(["-device", "virtio-blk-pci,drive=d,bootindex=0,addr=0x4"])
            .args(["-netdev"])
            // restrict=on: the guest reaches nothing on the host or beyond but the test's
            // broker, as 10.0.2.100:1883; each connection runs its own socat to 127.0.0.1
            // (a tcp chardev would carry one connection only: no reconnect after the kill).
            .arg(format!(
                "user,id=up,restrict=on,\
                 guestfwd=tcp:10.0.2.100:1883-cmd:socat - TCP:127.0.0.1:{broker}{}",
                // and, for the SSH test, the host's 127.0.0.1:PORT to the guest's port 22
                ssh.map(|p| format!(",hostfwd=tcp:127.0.0.1:{p}-:22"))
                    .unwrap_or_default()
            ))
            .args(["-device", "virtio-net-pci,netdev=up,addr=0x2,romfile="])
            .args(["-netdev"])
            .arg(format!(
                "dgram,id=mir,local.type=inet,local.host=127.0.0.1,local.port={local},\
                 remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
            ))
            .args(["-device", "virtio-net-pci,netdev=mir,addr=0x3,romfile="]);
        if uefi {
            let vars = dir.join("vars.fd");
            std::fs::copy("/usr/share/AAVMF/AAVMF_VARS.fd", &vars).unwrap();
            cmd.args(["-drive"])
                .arg(format!("if=pflash,format=raw,readonly=on,file={AAVMF}"))
                .args(["-drive"])
                .arg(format!("if=pflash,format=raw,file={}", vars.display()));
        } else {
            for f in ["vmlinuz", "initrd.img", "cmdline.txt"] {
                mtools(
                    &["mcopy", "-o", "-i", &at(img), &format!("::{f}")],
                    Some(&dir.join(f)),
                );
            }
            let cmdline = std::fs::read_to_string(dir.join("cmdline.txt")).unwrap();
            cmd.arg("-kernel")
                .arg(dir.join("vmlinuz"))
                .arg("-initrd")
                .arg(dir.join("initrd.img"))
                .arg("-append")
                .arg(cmdline.trim());
        }
        let mut g = Guard::spawn(cmd.stdin(Stdio::piped()).stdout(Stdio::piped()));
        let stdin = g.0.stdin.take().unwrap();
        let out = g.0.stdout.take().unwrap();
        let console = Arc::new(Mutex::new(String::new()));
        let c = console.clone();
        let log = dir.join(if uefi {
            "console-uefi.log"
        } else {
            "console-direct.log"
        });
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(log).unwrap();
            for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                let _ = writeln!(f, "{line}");
                let mut c = c.lock().unwrap();
                c.push_str(&line);
                c.push('\n');
            }
        });
        Guest {
            _g: g,
            stdin,
            console,
            mirror,
        }
    }

    fn console(&self) -> String {
        self.console.lock().unwrap().clone()
    }

    fn wait_console(&self, what: &str, limit: Duration) {
        let t = Instant::now();
        while !self.console().contains(what) {
            assert!(
                t.elapsed() < limit,
                "no {what:?} on the console after {limit:?}; console:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn type_line(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends every frame of `pcap` into the mirror NIC, paced at capture time.
    fn replay_into_mirror(&self, pcap: &Path) {
        let mut cap = voipsensor::capture::file::CaptureFile::open(pcap).unwrap();
        let start = Instant::now();
        let mut first = None;
        while let Some(f) = cap.next_frame().unwrap() {
            let us = f.ts.as_micros();
            let t0 = *first.get_or_insert(us);
            let due = Duration::from_micros(us - t0);
            if let Some(w) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(w);
            }
            self.mirror.send(f.data).unwrap();
        }
    }
}

fn at(img: &Path) -> String {
    format!("{}@@1M", img.display())
}

/// Runs an mtools command against the image's FAT partition (1 MiB in).
fn mtools(args: &[&str], dest: Option<&Path>) {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    if let Some(d) = dest {
        c.arg(d);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn put_sensor_toml(dir: &Path, img: &Path, text: &str) {
    let f = dir.join("sensor.toml");
    std::fs::write(&f, text).unwrap();
    let o = Command::new("mcopy")
        .args(["-o", "-i", &at(img)])
        .arg(&f)
        .arg("::sensor.toml")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The template shipped on the image, with the technician's three edits.
fn edited_template(img: &Path, dir: &Path, site: &str, sensor: &str) -> String {
    let f = dir.join("template.toml");
    mtools(&["mcopy", "-o", "-i", &at(img), "::sensor.toml"], Some(&f));
    let t = std::fs::read_to_string(f).unwrap();
    let t = t
        .replace("site = \"change-me\"", &format!("site = \"{site}\""))
        .replace("id = \"sensor-1\"", &format!("id = \"{sensor}\""))
        .replace(
            "url = \"mqtt://broker.example.net:1883\"",
            "url = \"mqtt://10.0.2.100:1883\"",
        )
        // No NTP server is reachable here: the guest must report clock_synced = false.
        .replace("ntp = [\"pool.ntp.org\"]", "ntp = []");
    assert!(
        t.contains(site) && t.contains("10.0.2.100:1883"),
        "template changed:\n{t}"
    );
    // Per-second metrics as JSON so that the comparison below sees every field.
    format!("{t}\n[output]\npayload = \"json\"\n")
}

/// What must be equal between the live guest and `replay`: every field of every call event
/// except those measured from arrival times, which the emulated NIC shifts (`ts`,
/// `setup_ms`, `pdd_ms`, `duration_ms`, every `*jitter*`) and `topic`, which `watch` adds;
/// key order is not compared.
fn call_view(v: &Value) -> String {
    let o = v.as_object().unwrap();
    let kept: std::collections::BTreeMap<&String, &Value> = o
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "ts" | "setup_ms" | "pdd_ms" | "duration_ms" | "seq" | "sensor" | "site" | "topic"
            ) && !k.contains("jitter")
        })
        .collect();
    serde_json::to_string(&kept).unwrap()
}

fn stream_totals(lines: &[Value]) -> Vec<String> {
    let mut m = std::collections::BTreeMap::<String, (i64, i64)>::new();
    for v in lines.iter().filter(|v| v["type"] == "rtp_interval") {
        let key = format!("{} {} {} {}", v["ssrc"], v["src"], v["dst"], v["codec"]);
        let e = m.entry(key).or_default();
        e.0 += v["packets"].as_i64().unwrap_or(0);
        e.1 += v["lost"].as_i64().unwrap_or(0);
    }
    m.into_iter()
        .map(|(k, (p, l))| format!("{k} packets={p} lost={l}"))
        .collect()
}

fn replay_lines(pcap: &Path) -> Vec<Value> {
    let o = Command::new(BIN).arg("replay").arg(pcap).output().unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn prerequisites() -> bool {
    common::need_tool("qemu-system-aarch64", "qemu-system-arm")
        && common::need_tool("mosquitto", "mosquitto")
        && common::need_tool("mcopy", "mtools")
        && common::need(
            Path::new(AAVMF).is_file(),
            "AAVMF firmware (qemu-efi-aarch64)",
        )
        && common::need(
            image().is_file(),
            "the qemu-virt image: bash image/build-image.sh qemu-virt",
        )
}

fn boots_and_publishes_like_replay(uefi: bool) {
    if !prerequisites() {
        return;
    }
    let tag = if uefi { "uefi" } else { "direct" };
    let dir = tempdir(tag);
    let img = dir.join("disk.img");
    std::fs::copy(image(), &img).unwrap();
    let (site, sensor) = ("branch-42", format!("boot-{tag}"));
    let (_broker, port) = broker(&dir);
    let cfg = edited_template(&img, &dir, site, &sensor);
    put_sensor_toml(&dir, &img, &cfg);
    // Two calls of 4 s with RTP, back to back, 10 s of capture.
    let pcap = dir.join("calls.pcap");
    let o = Command::new(BIN)
        .args([
            "fixture",
            "--scenario",
            "long",
            "--calls",
            "2",
            "--seconds",
            "6",
        ])
        .args(["--call-seconds", "4"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let watch = Watch::start(port);
    let mut guest = Guest::boot(&dir, &img, uefi, port, None);
    guest.wait_console("mirror mirror0: up, promiscuous", Duration::from_secs(180));
    wait_for("retained online status", Duration::from_secs(60), || {
        !watch.statuses("online").is_empty()
    });
    let online = &watch.statuses("online")[0];
    assert_eq!(online["site"], site, "{online}");
    assert_eq!(online["sensor"], sensor.as_str(), "{online}");
    assert_eq!(online["clock_synced"], false, "{online}");

    // The sensor connects before it opens the capture: wait for both.
    guest.wait_console("mirror0: capturing", Duration::from_secs(30));
    guest.replay_into_mirror(&pcap);
    let want = replay_lines(&pcap);
    let want_calls: Vec<String> = want
        .iter()
        .filter(|v| v["type"] == "call")
        .map(call_view)
        .collect();
    assert!(want_calls.len() >= 4, "fixture has calls: {want_calls:?}");
    let got_calls = || -> Vec<String> {
        watch
            .all()
            .iter()
            .filter(|v| v["type"] == "call")
            .map(call_view)
            .collect()
    };
    wait_for("the calls' events", Duration::from_secs(60), || {
        got_calls().len() >= want_calls.len()
    });
    assert_eq!(got_calls(), want_calls);
    // The last second's intervals follow once wall time passes it.
    let want_streams = stream_totals(&want);
    wait_for("per-second metrics", Duration::from_secs(30), || {
        stream_totals(&watch.all()) == want_streams
    });

    // The LED's condition, named in `health`: mirror frames lately and the broker up.
    let conditions = || -> Vec<String> {
        watch
            .all()
            .iter()
            .filter(|v| v["type"] == "health")
            .map(|v| v["condition"].as_str().unwrap_or("").to_string())
            .collect()
    };
    wait_for("a healthy condition", Duration::from_secs(30), || {
        conditions().iter().any(|c| c == "healthy")
    });
    // Then, with the mirror quiet for 10 s, "no mirror traffic".
    wait_for(
        "no_mirror_traffic after healthy",
        Duration::from_secs(40),
        || {
            let c = conditions();
            let h = c.iter().position(|c| c == "healthy").unwrap();
            c[h..].iter().any(|c| c == "no_mirror_traffic")
        },
    );

    // Kill the sensor in the guest: the supervisor has it publishing again within 10 s.
    let before = watch.statuses("online").len();
    guest.type_line("kill -9 $(cat /run/voipsensor.pid)");
    let killed = Instant::now();
    wait_for(
        "a new online status after the kill",
        Duration::from_secs(10),
        || watch.statuses("online").len() > before,
    );
    eprintln!(
        "restarted and online again {:?} after the kill",
        killed.elapsed()
    );
    guest.wait_console("voipsensor exited", Duration::from_secs(5));
    // No authorized_keys on the card: nothing listens on port 22 (0A = LISTEN).
    guest.type_line(
        "echo SSHD-$(cat /proc/net/tcp /proc/net/tcp6 | grep -c ':0016 [0-9A-F:]* 0A ')",
    );
    guest.wait_console("SSHD-0", Duration::from_secs(10));
}

#[test]
fn direct_kernel_boot_publishes_the_files_names_and_replays_calls_and_restarts() {
    boots_and_publishes_like_replay(false);
}

#[test]
fn uefi_boot_from_the_disk_publishes_the_files_names_and_replays_calls_and_restarts() {
    boots_and_publishes_like_replay(true);
}

#[test]
fn a_broken_sensor_toml_is_reported_on_the_console_and_to_the_broker() {
    if !prerequisites() {
        return;
    }
    let dir = tempdir("broken");
    let img = dir.join("disk.img");
    std::fs::copy(image(), &img).unwrap();
    let (_broker, port) = broker(&dir);
    let cfg = edited_template(&img, &dir, "branch-43", "broken-1")
        .replace("address = \"dhcp\"", "address = \"10.1.2.3\"");
    put_sensor_toml(&dir, &img, &cfg);
    let watch = Watch::start(port);
    let guest = Guest::boot(&dir, &img, false, port, None);
    guest.wait_console("CONFIG ERROR: ", Duration::from_secs(180));
    let c = guest.console();
    assert!(c.contains("network.address"), "console names the key:\n{c}");
    assert!(c.contains("192.0.2.10/24"), "console shows the fix:\n{c}");
    wait_for("config_error status", Duration::from_secs(60), || {
        !watch.statuses("config_error").is_empty()
    });
    let s = &watch.statuses("config_error")[0];
    assert_eq!(s["site"], "branch-43", "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap_or("")
            .contains("network.address"),
        "{s}"
    );
}

#[test]
fn the_shipped_sensor_toml_template_is_valid_and_boot_config_prints_it_for_init() {
    let t = root().join("image/rootfs/sensor.toml");
    let o = Command::new(BIN)
        .arg("check-config")
        .arg(&t)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(BIN)
        .arg("boot-config")
        .arg(&t)
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for line in [
        "VS_SITE='change-me'",
        "VS_MIRRORS='mirror0'",
        "VS_UPLINK='uplink0'",
        "VS_ADDRESS='dhcp'",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line} missing from:\n{out}"
        );
    }
    // The template's ports are the qemu-virt board's role names.
    let board = std::fs::read_to_string(root().join("boards/qemu-virt.toml")).unwrap();
    assert!(board.contains("name = \"mirror0\"") && board.contains("name = \"uplink0\""));
}

#[test]
fn boot_config_names_the_bad_key_and_exits_non_zero() {
    let dir = tempdir("bootcfg");
    let f = dir.join("sensor.toml");
    std::fs::write(
        &f,
        "[sensor]\nsite = \"s\"\nid = \"x\"\n[network]\naddress = \"dhcp4\"\n",
    )
    .unwrap();
    let o = Command::new(BIN)
        .arg("boot-config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("CONFIG ERROR") && err.contains("network.address"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "nothing for init to source");
}

#[test]
fn authorized_keys_on_the_card_lets_that_key_run_a_command_over_ssh() {
    if !(prerequisites()
        && common::need_tool("ssh", "openssh-client")
        && common::need_tool("ssh-keygen", "openssh-client"))
    {
        return;
    }
    let dir = tempdir("ssh");
    let img = dir.join("disk.img");
    std::fs::copy(image(), &img).unwrap();
    let key = dir.join("id_ed25519");
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "image-test", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("mcopy")
        .args(["-o", "-i", &at(&img)])
        .arg(key.with_extension("pub"))
        .arg("::authorized_keys")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_broker, port) = broker(&dir);
    // An NTP server the restricted guest cannot reach: chronyd must run, unsynchronised.
    let cfg = edited_template(&img, &dir, "branch-44", "ssh-1")
        .replace("ntp = []", "ntp = [\"192.0.2.123\"]");
    put_sensor_toml(&dir, &img, &cfg);
    let ssh_port = free_tcp();
    let guest = Guest::boot(&dir, &img, false, port, Some(ssh_port));
    guest.wait_console("ssh: dropbear on port 22", Duration::from_secs(180));
    let ssh = |extra: &[&str]| {
        Command::new("ssh")
            .arg("-i")
            .arg(&key)
            .args(["-p", &ssh_port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
            .args(extra)
            .args([
                "root@127.0.0.1",
                "cat /etc/board /run/chrony.conf; kill -0 $(cat /run/chronyd.pid) && echo CHRONYD-UP; id -u",
            ])
            .output()
            .unwrap()
    };
    let mut out = ssh(&[]);
    let t = Instant::now();
    while !out.status.success() && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_secs(1));
        out = ssh(&[]);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains("BOARD=qemu-virt")
            && stdout.contains("server 192.0.2.123 iburst")
            && stdout.contains("CHRONYD-UP")
            && stdout.ends_with("0\n"),
        "ssh: {stdout}\n{}\nconsole:\n{}",
        String::from_utf8_lossy(&out.stderr),
        guest.console()
    );
    // Passwords are refused outright: only publickey is offered.
    let pw = ssh(&[
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "PubkeyAuthentication=no",
    ]);
    assert!(!pw.status.success(), "a password login got in");
}
