//! What a person reads when something is wrong: one line per fact, the exit code that
//! says which class of failure it was, and the README's table of codes.

use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voipsensor"));
    c.env_remove("RUST_LOG");
    c
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("voipsensor-msg-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_valid_config_exits_0_and_says_what_it_will_do_in_words() {
    let f = dir().join("ok.toml");
    std::fs::write(
        &f,
        "[sensor]\nsite = \"paris\"\nid = \"t1\"\n[mqtt]\nurl = \"mqtt://u:hunter2@broker:1884\"\n",
    )
    .unwrap();
    let o = bin().arg("check-config").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.trim(),
        format!(
            "{}: ok; publishes postcard payloads to mqtt://broker:1884 under voipsensor/v1/paris/t1/; \
             privacy off (numbers published as seen)",
            f.display()
        )
    );
    assert!(!out.contains("hunter2") && !stderr(&o).contains("hunter2"));
}

#[test]
fn an_interface_absent_now_is_a_warning_not_a_failure() {
    let f = dir().join("absent-if.toml");
    std::fs::write(
        &f,
        "[sensor]\nsite = \"paris\"\nid = \"t1\"\n[capture]\ninterfaces = [\"vsnope0\"]\n",
    )
    .unwrap();
    let o = bin().arg("check-config").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "voipsensor check-config: warning: {}: capture.interfaces = \"vsnope0\": no such interface \
             on this machine now; `run` waits for it (`voipsensor interfaces` lists those present)",
            f.display()
        )
    );
}

#[test]
fn an_invalid_config_exits_3_with_one_line() {
    let f = dir().join("bad.toml");
    std::fs::write(
        &f,
        "[sensor]\nsite = \"paris\"\n[mqtt]\nkeepalive_s = \"30\"\n",
    )
    .unwrap();
    let o = bin().arg("check-config").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o),
        format!(
            "voipsensor: {}:4: mqtt.keepalive_s = \"30\": wrong type (string); expected an integer\n",
            f.display()
        )
    );
}

#[test]
fn a_missing_capture_exits_4_and_keeps_the_os_cause() {
    let o = bin()
        .args(["replay", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        stderr(&o),
        "voipsensor: cannot open capture /nonexistent/x.pcap: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_truncated_capture_exits_4() {
    let d = dir();
    let full = d.join("full.pcap");
    assert!(bin().arg("fixture").arg(&full).status().unwrap().success());
    let bytes = std::fs::read(&full).unwrap();
    let cut = d.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 7]).unwrap();
    let o = bin()
        .arg("replay")
        .arg(&cut)
        .arg("--summary")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("truncated or corrupt"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn flags_that_do_nothing_together_exit_2_with_a_reason() {
    for (flag, val) in [("--pace", "1"), ("--site", "s1")] {
        let o = bin()
            .args(["replay", "/nonexistent/x.pcap", flag, val])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            format!(
                "voipsensor: {flag} does nothing without --broker: replay prints JSON lines unless it publishes\n"
            )
        );
    }
    let o = bin().args(["replay", "--no-such-flag"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_invalid_rust_log_is_reported_once_and_info_used() {
    let o = bin()
        .env("RUST_LOG", "bogus")
        .args(["replay", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(e.matches("RUST_LOG=\"bogus\"").count(), 1, "{e}");
    assert!(e.contains("logging at info"), "{e}");
}

#[test]
fn the_exit_code_table_is_in_help_and_in_the_readme() {
    let o = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for code in [
        "0  ok",
        "1  runtime failure",
        "2  usage",
        "3  configuration invalid",
        "4  input file",
        "5  broker refused",
        "RUST_LOG",
    ] {
        assert!(help.contains(code), "--help lacks {code:?}:\n{help}");
        assert!(readme.contains(code), "README lacks {code:?}");
    }
}

#[test]
fn input_that_is_not_a_payload_is_a_runtime_failure_exit_1() {
    let f = dir().join("garbage.txt");
    std::fs::write(&f, "zz not hex\n").unwrap();
    let o = bin().arg("decode").arg(&f).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = bin()
        .args(["decode", "/nonexistent/p.hex"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        stderr(&o),
        "voipsensor: cannot read /nonexistent/p.hex: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_bad_flag_value_names_the_flag_not_a_line_of_the_file() {
    let f = dir().join("flag.toml");
    std::fs::write(&f, "[sensor]\nsite = \"paris\"\nid = \"t1\"\n").unwrap();
    let o = bin()
        .args([
            "replay",
            "/nonexistent/x.pcap",
            "--broker",
            "http://u:hunter2@x",
            "--config",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o),
        "voipsensor: --broker (mqtt.url) = \"http://u:***@x\": not an MQTT URL; \
         allowed mqtt://[user:password@]host[:port] or mqtts://…\n"
    );
}
