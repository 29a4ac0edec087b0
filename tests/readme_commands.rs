//! The README's command examples, executed: every `voipsensor …` (or `cargo run --release --
//! …`) line of its ```sh blocks runs against the real binary, with the README's example paths
//! replaced by real files, and must not be refused as a usage (2) or configuration (3) error.

mod common;
use common::broker::{free_port, tempdir};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn readme_commands() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let cmd = line.split(" #").next().unwrap().trim();
        let rest = cmd
            .strip_prefix("voipsensor ")
            .or_else(|| cmd.strip_prefix("cargo run --release -- "));
        if let Some(rest) = rest {
            out.push(rest.split_whitespace().map(String::from).collect());
        }
    }
    out
}

#[test]
fn the_readme_lists_commands_for_each_main_use() {
    let cmds = readme_commands();
    for sub in ["replay", "run", "interfaces", "selftest"] {
        assert!(
            cmds.iter().any(|c| c[0] == sub),
            "README has no `{sub}` example"
        );
    }
}

#[test]
fn every_readme_command_example_is_accepted_by_the_cli() {
    let bin = env!("CARGO_BIN_EXE_voipsensor");
    let dir = tempdir("readme");
    let pcap = dir.join("some.pcap");
    assert!(
        Command::new(bin)
            .arg("fixture")
            .arg(&pcap)
            .status()
            .unwrap()
            .success()
    );
    // The daemon's file, pointing at a closed port so nothing leaves this machine.
    let port = free_port();
    let cfg = dir.join("sensor.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\nsite = \"s1\"\nid = \"t1\"\n[capture]\ninterfaces = [\"lo\"]\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nconnect_timeout_s = 1\n"
        ),
    )
    .unwrap();
    for args in readme_commands() {
        let args: Vec<String> = args
            .iter()
            .map(|a| match a.as_str() {
                "some.pcap" | "capture.pcap" => pcap.display().to_string(),
                "/boot/sensor.toml" | "sensor.toml" => cfg.display().to_string(),
                // Outputs go to the temporary folder, never into the checkout.
                "report.html" | "r.html" => dir.join(a).display().to_string(),
                _ => a.clone(),
            })
            .collect();
        let mut child = Command::new(bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A long-running command (`run`) that is still running after 2 s has been accepted.
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if t0.elapsed() > Duration::from_secs(2) {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(st) = status {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(
                !matches!(st.code(), Some(2) | Some(3)),
                "README example `voipsensor {}` refused ({st}): {err}",
                args.join(" ")
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
