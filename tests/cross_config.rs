//! `cross.toml` (the Docker path) must agree with `image/targets.env` (the single source of
//! truth that the Docker-free `image/build-arm.sh` sources): same targets, same packages to
//! build libpcap, same libpcap source and configure flags, same Rust flags. This test is what
//! keeps the two paths from drifting apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parse the `KEY="value"` lines of image/targets.env (comments and blanks skipped).
fn targets_env() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(root().join("image/targets.env")).expect("image/targets.env");
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("targets.env:{}: not KEY=\"value\"", n + 1));
        assert!(
            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "targets.env:{}: bad key {k:?}",
            n + 1
        );
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("targets.env:{}: value must be in double quotes", n + 1));
        assert!(
            !v.contains(['$', '`', '"']),
            "targets.env:{}: no shell expansion allowed",
            n + 1
        );
        map.insert(k.to_string(), v.to_string());
    }
    map
}

fn get<'a>(env: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    env.get(key)
        .unwrap_or_else(|| panic!("image/targets.env lacks {key}"))
}

fn target_key(t: &str) -> String {
    t.replace(['-', '.'], "_")
}

fn cross_toml() -> toml::Table {
    let text = std::fs::read_to_string(root().join("cross.toml")).expect("cross.toml");
    toml::from_str(&text).expect("cross.toml parses")
}

fn strings(v: &toml::Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{what}: not a string"))
                .to_string()
        })
        .collect()
}

#[test]
fn cross_targets_are_the_built_targets() {
    let env = targets_env();
    let want: BTreeSet<&str> = get(&env, "VS_TARGETS").split_whitespace().collect();
    let cross = cross_toml();
    let have: BTreeSet<&str> = cross["target"]
        .as_table()
        .expect("[target.*]")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        have, want,
        "cross.toml [target.*] vs targets.env VS_TARGETS"
    );
}

#[test]
fn cross_pre_build_matches_targets_env() {
    let env = targets_env();
    let cross = cross_toml();
    let pkgs: BTreeSet<&str> = get(&env, "VS_LIBPCAP_BUILD_PACKAGES")
        .split_whitespace()
        .collect();
    let prefix = get(&env, "VS_CROSS_PCAP_PREFIX");
    for t in get(&env, "VS_TARGETS").split_whitespace() {
        let gnu = get(&env, &format!("VS_{}_GNU", target_key(t)));
        let tt = &cross["target"][t];
        let steps = strings(&tt["pre-build"], &format!("target.{t}.pre-build"));
        let all = steps.join("\n");

        // The packages installed are exactly the list in targets.env.
        let install = steps
            .iter()
            .flat_map(|s| s.split("&&"))
            .find(|c| c.contains("apt-get install"))
            .unwrap_or_else(|| panic!("{t}: pre-build has no apt-get install"));
        let installed: BTreeSet<&str> = install
            .split("apt-get install")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .filter(|w| !w.starts_with('-'))
            .collect();
        assert_eq!(
            installed, pkgs,
            "{t}: packages in cross.toml vs VS_LIBPCAP_BUILD_PACKAGES"
        );

        // The same source package, built with the same compiler triplet and flags.
        let source = format!("apt-get source {}", get(&env, "VS_LIBPCAP_SOURCE"));
        assert!(all.contains(&source), "{t}: pre-build lacks `{source}`");
        for needle in [
            format!("--host={gnu} "),
            format!("CC={gnu}-gcc "),
            format!("AR={gnu}-ar "),
            format!("CFLAGS='{}' ", get(&env, "VS_LIBPCAP_CFLAGS")),
            format!("--prefix={prefix} "),
            format!(" {} ", get(&env, "VS_LIBPCAP_CONFIGURE")),
        ] {
            assert!(
                all.contains(&needle),
                "{t}: pre-build lacks `{needle}` (from image/targets.env)"
            );
        }

        // The same Rust flags, and the pcap crate pointed at the static library.
        let passthrough = strings(
            &tt["env"]["passthrough"],
            &format!("target.{t}.env.passthrough"),
        );
        let up = target_key(t).to_uppercase();
        let rustflags = format!("CARGO_TARGET_{up}_RUSTFLAGS={}", get(&env, "VS_RUSTFLAGS"));
        assert!(
            passthrough.contains(&rustflags),
            "{t}: passthrough lacks {rustflags:?}: {passthrough:?}"
        );
        let libdir = format!("LIBPCAP_LIBDIR={prefix}/lib");
        assert!(
            passthrough.contains(&libdir),
            "{t}: passthrough lacks {libdir:?}"
        );
    }
}

#[test]
fn targets_env_is_complete() {
    let env = targets_env();
    for t in get(&env, "VS_TARGETS").split_whitespace() {
        for field in ["DEB_ARCH", "GNU", "QEMU", "STD"] {
            let v = get(&env, &format!("VS_{}_{field}", target_key(t)));
            assert!(!v.is_empty(), "{t}: {field} empty");
        }
        let std = get(&env, &format!("VS_{}_STD", target_key(t)));
        assert!(
            ["pkg", "build-std"].contains(&std),
            "{t}: STD must be pkg or build-std, not {std}"
        );
        if std == "pkg" {
            let arch = get(&env, &format!("VS_{}_DEB_ARCH", target_key(t)));
            let pkg = format!("libstd-rust-web-dev:{arch}");
            assert!(
                get(&env, "VS_HOST_FOREIGN_PACKAGES")
                    .split_whitespace()
                    .any(|p| p == pkg),
                "{t}: STD=pkg needs {pkg} in VS_HOST_FOREIGN_PACKAGES"
            );
        }
    }
    let budget: u64 = get(&env, "VS_SIZE_BUDGET")
        .parse()
        .expect("VS_SIZE_BUDGET is a number");
    assert!(budget <= 8 << 20, "the size budget is at most 8 MiB");
    assert!(get(&env, "VS_RUSTFLAGS").contains("+crt-static"));
    for flag in ["--disable-shared", "--disable-dbus"] {
        assert!(
            get(&env, "VS_LIBPCAP_CONFIGURE").contains(flag),
            "libpcap must be built {flag}"
        );
    }
}
