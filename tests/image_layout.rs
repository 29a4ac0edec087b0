//! Every shipped board's built image, read back from the disk file with sfdisk and mtools
//! (no mounts): an MBR with one bootable FAT32 partition holding the board's boot files,
//! dtbs, config.txt / cmdline.txt, kernel, initrd, sensor.toml and README.txt; inside the
//! initrd (gzip'd newc cpio) the board's modules, modules.dep and the sensor binary.
//! Needs `bash image/build-image.sh` (CI: `image/ci-image.sh`).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The shipped boards: `supported = true` in boards/<id>.toml.
fn shipped() -> Vec<(String, toml::Table)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(root().join("boards")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let t: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
            if t["supported"].as_bool() == Some(true) {
                v.push((t["id"].as_str().unwrap().to_string(), t));
            }
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn strings(t: &toml::Value) -> Vec<String> {
    t.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Paths of the files in the FAT partition (1 MiB into the disk), `/`-separated.
fn fat_files(img: &Path) -> BTreeSet<String> {
    let at = format!("{}@@1M", img.display());
    let out = run(Command::new("mdir").args(["-i", &at, "-/", "-b", "::"]));
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            l.trim_start_matches("::/")
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

fn fat_read(img: &Path, name: &str) -> Vec<u8> {
    let at = format!("{}@@1M", img.display());
    run(Command::new("mtype").args(["-i", &at, &format!("::{name}")]))
}

/// Names in a newc ("070701") cpio archive.
fn cpio_names(a: &[u8]) -> Vec<String> {
    let (mut names, mut off) = (Vec::new(), 0usize);
    let hex = |b: &[u8]| usize::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap();
    let pad = |n: usize| (n + 3) & !3;
    while off + 110 <= a.len() {
        let h = &a[off..off + 110];
        assert_eq!(&h[..6], b"070701", "newc magic at {off}");
        let size = hex(&h[54..62]);
        let nlen = hex(&h[94..102]);
        let name = String::from_utf8_lossy(&a[off + 110..off + 110 + nlen - 1]).into_owned();
        off = pad(off + 110 + nlen);
        off = pad(off + size);
        if name == "TRAILER!!!" {
            return names;
        }
        names.push(name);
    }
    panic!("cpio archive without a trailer");
}

fn norm(m: &str) -> String {
    m.replace('-', "_")
}

#[test]
fn every_shipped_board_image_has_its_partition_boot_files_and_initrd_modules() {
    if !(common::need_tool("sfdisk", "fdisk")
        && common::need_tool("mdir", "mtools")
        && common::need_tool("gzip", "gzip"))
    {
        return;
    }
    let boards = shipped();
    assert!(boards.len() >= 2, "qemu-virt and more are shipped");
    let mut missing = Vec::new();
    for (id, b) in &boards {
        let img = root().join(format!(
            "target/image/voipsensor-{id}-{}.img",
            env!("CARGO_PKG_VERSION")
        ));
        if !img.exists() {
            missing.push(id.clone());
            continue;
        }
        check_board(id, b, &img);
    }
    if !missing.is_empty() {
        common::skip(&format!(
            "images not built for {missing:?}: bash image/build-image.sh"
        ));
    }
}

fn check_board(id: &str, b: &toml::Table, img: &Path) {
    // MBR: one partition, FAT32 (LBA, type c), bootable, 1 MiB in.
    let dump: serde_json::Value =
        serde_json::from_slice(&run(Command::new("sfdisk").arg("--json").arg(img))).unwrap();
    let pt = &dump["partitiontable"];
    assert_eq!(pt["label"], "dos", "{id}: {pt}");
    let parts = pt["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{id}: {pt}");
    assert_eq!(parts[0]["type"], "c", "{id}: {pt}");
    assert_eq!(parts[0]["start"], 2048, "{id}: {pt}");
    assert_eq!(parts[0]["bootable"], true, "{id}: {pt}");
    let disk = std::fs::read(img).unwrap();
    let bs = &disk[1 << 20..(1 << 20) + 512];
    assert_eq!(&bs[82..90], b"FAT32   ", "{id}: FAT32 boot sector");
    assert_eq!(&bs[510..512], &[0x55, 0xaa], "{id}: boot signature");

    let files = fat_files(img);
    let kernel = b["kernel"].as_table().unwrap();
    let boot = b["boot"].as_table().unwrap();
    let mut want: Vec<String> = strings(&boot["files"]);
    for d in strings(&kernel["dtbs"]) {
        want.push(d.rsplit('/').next().unwrap().to_string());
    }
    want.extend(
        [
            "vmlinuz",
            "initrd.img",
            "cmdline.txt",
            "sensor.toml",
            "README.txt",
        ]
        .map(String::from),
    );
    for f in &want {
        assert!(
            files.contains(f),
            "{id}: {f} not on the boot partition: {files:?}"
        );
    }
    let cmdline = String::from_utf8(fat_read(img, "cmdline.txt")).unwrap();
    assert!(
        cmdline.starts_with(kernel["cmdline"].as_str().unwrap()),
        "{id}: cmdline.txt {cmdline:?}"
    );
    assert!(!fat_read(img, "README.txt").is_empty(), "{id}: README.txt");
    assert!(
        String::from_utf8(fat_read(img, "sensor.toml"))
            .unwrap()
            .contains("[mqtt]"),
        "{id}: sensor.toml template"
    );
    match boot["method"].as_str().unwrap() {
        "rpi-firmware" => {
            let c = String::from_utf8(fat_read(img, "config.txt")).unwrap();
            for l in [
                "arm_64bit=1",
                "kernel=vmlinuz",
                "initramfs initrd.img followkernel",
            ] {
                assert!(
                    c.lines().any(|x| x == l),
                    "{id}: config.txt lacks {l}:\n{c}"
                );
            }
            for f in [
                "start.elf",
                "fixup.dat",
                "start4.elf",
                "fixup4.dat",
                "bootcode.bin",
            ] {
                assert!(files.contains(f), "{id}: firmware {f} missing");
            }
        }
        "uefi" => {
            assert!(files.contains("EFI/BOOT/BOOTAA64.EFI"), "{id}: {files:?}");
            let e = String::from_utf8(fat_read(img, "loader/entries/voipsensor.conf")).unwrap();
            assert!(
                e.contains("linux /vmlinuz") && e.contains("initrd /initrd.img"),
                "{id}: {e}"
            );
        }
        m => panic!("{id}: boot method {m}"),
    }
    let k = fat_read(img, "vmlinuz");
    // Debian's arm64 vmlinuz: a plain arm64 Image with the EFI stub ("MZ", "ARMd" at 0x38),
    // which both the Pi firmware and systemd-boot load.
    assert_eq!(&k[..2], b"MZ", "{id}: vmlinuz EFI stub");
    assert_eq!(&k[0x38..0x3c], b"ARMd", "{id}: vmlinuz arm64 Image magic");

    // The initrd: gzip'd newc cpio.
    let dir = std::env::temp_dir().join(format!("vs-layout-{id}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gz = dir.join("initrd.img");
    std::fs::write(&gz, fat_read(img, "initrd.img")).unwrap();
    let cpio = run(Command::new("gzip").arg("-dc").arg(&gz));
    let _ = std::fs::remove_dir_all(&dir);
    let names = cpio_names(&cpio);
    for f in [
        "init",
        "bin/busybox",
        "bin/voipsensor",
        "etc/modules.load",
        "etc/nics",
    ] {
        assert!(names.iter().any(|n| n == f), "{id}: initrd lacks {f}");
    }
    let kos: BTreeSet<String> = names
        .iter()
        .filter(|n| n.ends_with(".ko"))
        .map(|n| norm(n.rsplit('/').next().unwrap().trim_end_matches(".ko")))
        .collect();
    let dep = names
        .iter()
        .find(|n| n.ends_with("/modules.dep"))
        .unwrap_or_else(|| panic!("{id}: no modules.dep in the initrd"));
    let builtin = names
        .iter()
        .find(|n| n.ends_with("/modules.builtin"))
        .unwrap_or_else(|| panic!("{id}: no modules.builtin in the initrd"));
    let text = |name: &str| -> String {
        // Re-read the one member's bytes (small files, one pass is fine here).
        let mut off = 0usize;
        let hex = |b: &[u8]| usize::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap();
        loop {
            let h = &cpio[off..off + 110];
            let (size, nlen) = (hex(&h[54..62]), hex(&h[94..102]));
            let n = String::from_utf8_lossy(&cpio[off + 110..off + 110 + nlen - 1]).into_owned();
            let data = (off + 110 + nlen + 3) & !3;
            if n == name {
                return String::from_utf8_lossy(&cpio[data..data + size]).into_owned();
            }
            off = (data + size + 3) & !3;
        }
    };
    let builtin: BTreeSet<String> = text(builtin)
        .lines()
        .map(|l| norm(l.rsplit('/').next().unwrap().trim_end_matches(".ko")))
        .collect();
    let dep = text(dep);
    for m in strings(&b["modules"]) {
        let m = norm(&m);
        assert!(
            kos.contains(&m) || builtin.contains(&m),
            "{id}: module {m} neither in the initrd nor built in"
        );
        if kos.contains(&m) {
            assert!(
                dep.lines().any(|l| {
                    let f = l.split(':').next().unwrap();
                    norm(f.rsplit('/').next().unwrap().trim_end_matches(".ko")) == m
                }),
                "{id}: {m} not in modules.dep"
            );
        }
    }
    eprintln!(
        "{id}: {} boot files, {} modules in the initrd",
        files.len(),
        kos.len()
    );
}

/// Unpacks a newc cpio (directories, regular files, symlinks) under `to`.
fn cpio_extract(a: &[u8], to: &Path) {
    let hex = |b: &[u8]| usize::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap();
    let mut off = 0usize;
    loop {
        let h = &a[off..off + 110];
        let (mode, size, nlen) = (hex(&h[14..22]), hex(&h[54..62]), hex(&h[94..102]));
        let name = String::from_utf8_lossy(&a[off + 110..off + 110 + nlen - 1]).into_owned();
        let data = (off + 110 + nlen + 3) & !3;
        off = (data + size + 3) & !3;
        if name == "TRAILER!!!" {
            return;
        }
        let p = to.join(&name);
        match mode & 0o170000 {
            0o040000 => std::fs::create_dir_all(&p).unwrap(),
            0o120000 => {
                let t = String::from_utf8_lossy(&a[data..data + size]).into_owned();
                let _ = std::fs::remove_file(&p);
                std::os::unix::fs::symlink(t, &p).unwrap();
            }
            0o100000 => {
                std::fs::write(&p, &a[data..data + size]).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode as u32 & 0o7777))
                    .unwrap();
            }
            _ => {}
        }
    }
}

/// qemu-system's user-mode network forwards only TCP to the host (`guestfwd` has no UDP), so
/// the booted guest cannot reach an NTP server while the test keeps it off everything but the
/// broker. What ships is proven here instead: the image's own chronyd and libraries, run from
/// its unpacked initrd under qemu-user, serve NTP on loopback (`-x`: never touching the host
/// clock) and the image's chronyd as a client measures that server (`-Q`: measure only).
#[test]
fn the_images_chronyd_talks_ntp_to_a_real_server_under_qemu_user() {
    if !(common::need_tool("qemu-aarch64-static", "qemu-user-static")
        && common::need_tool("mdir", "mtools"))
    {
        return;
    }
    let img = root().join(format!(
        "target/image/voipsensor-qemu-virt-{}.img",
        env!("CARGO_PKG_VERSION")
    ));
    if !common::need(img.exists(), "bash image/build-image.sh qemu-virt") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("vs-ntp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = dir.join("root");
    std::fs::create_dir_all(&r).unwrap();
    let gz = dir.join("initrd.img");
    std::fs::write(&gz, fat_read(&img, "initrd.img")).unwrap();
    cpio_extract(&run(Command::new("gzip").arg("-dc").arg(&gz)), &r);
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.join("server.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0\n\
             pidfile {}/server.pid\n",
            dir.display()
        ),
    )
    .unwrap();
    let chronyd = r.join("sbin/chronyd");
    let mut server = Command::new("qemu-aarch64-static")
        .arg("-L")
        .arg(&r)
        .arg(&chronyd)
        .args(["-x", "-d", "-u", "root", "-f"])
        .arg(&conf)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let client = Command::new("timeout")
        .args(["20", "qemu-aarch64-static", "-L"])
        .arg(&r)
        .arg(&chronyd)
        .args(["-Q", "-u", "root", "-f", "/dev/null", "-t", "15"])
        .arg(format!("server 127.0.0.1 port {port} iburst maxsamples 1"))
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&client.stdout),
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(
        client.status.success() && text.contains("System clock wrong by"),
        "chronyd -Q against the image's chronyd server:\n{text}"
    );
}
