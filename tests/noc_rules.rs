//! The shipped alert rules and Grafana dashboard: promtool accepts the rules and their unit
//! tests pass, and every metric name they use is one `voipsensor noc` exports.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use voipsensor::fixture::{self, Builder};
use voipsensor::noc::Noc;
use voipsensor::noc::state::Limits;
use voipsensor::publish::payload::{
    Format, Health, Kpi, Message, OutboxStats, RtpBatch, State, Status, encode,
};
use voipsensor::track::event::{Event, MediaHealth, MediaProblem, Ts};

fn monitoring(f: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("monitoring")
        .join(f)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(monitoring(""))
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    if !common::need_tool("promtool", "prometheus") {
        return;
    }
    let out = promtool(&["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS: 10 rules found"), "{out}");
    let out = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    // Each alert is exercised by the unit tests.
    let rules = std::fs::read_to_string(monitoring("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(monitoring("alerts.test.yml")).unwrap();
    for name in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "{name} has no promtool test"
        );
    }
}

/// A NOC fed one of everything a sensor publishes: the demo capture's events, a status, a
/// health record with warnings and drops, a kpi period, a media problem and a payload that does not decode.
fn fed_noc() -> Noc {
    let dir = std::env::temp_dir().join(format!("vs-noc-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("demo.pcap");
    let mut b = Builder::new();
    fixture::demo(&mut b);
    b.write_pcap(&pcap).unwrap();
    let (events, _) = common::replay(&pcap);
    std::fs::remove_dir_all(&dir).ok();
    let mut noc = Noc::new(Limits::default());
    let base = "voipsensor/v1/s1/t1";
    let status = Message::Status(Status {
        state: State::Online,
        site: "s1".into(),
        sensor: "t1".into(),
        version: "0.1.0".into(),
        interfaces: vec!["eth1".into()],
        vlans: vec![],
        encapsulations: vec![],
        started: Ts(1),
        clock_synced: false,
        error: None,
    });
    noc.on_message(
        &format!("{base}/status"),
        &encode(&status, Format::Postcard),
        100,
    );
    let mut seq = 0;
    for e in events {
        let (leaf, m) = match e {
            Event::RtpInterval(i) => (
                "rtp",
                Message::Rtp(RtpBatch {
                    seq: 0,
                    ts: i.ts,
                    part: 0,
                    parts: 1,
                    intervals: vec![i],
                }),
            ),
            e => {
                seq += 1;
                ("calls", Message::Event { seq, event: e })
            }
        };
        noc.on_message(&format!("{base}/{leaf}"), &encode(&m, Format::Json), 101);
    }
    let problem = Message::Event {
        seq: seq + 1,
        event: Event::MediaHealth(MediaHealth {
            ts: Ts(1_700_000_000_000_000),
            problem: MediaProblem::OneWayMedia,
            call_id: None,
            src: None,
            dst: None,
            silent_ms: 5000,
        }),
    };
    noc.on_message(
        &format!("{base}/calls"),
        &encode(&problem, Format::Postcard),
        102,
    );
    let health = Message::Health(Health {
        ts: Ts(1_700_000_010_000_000),
        uptime_s: 10,
        connected: true,
        reconnects: 1,
        outbox: OutboxStats {
            dropped_metrics: 4,
            ..Default::default()
        },
        counters_json: r#"{"capture":{"total":{"dropped_kernel":3,"dropped_interface":0},"duplicates":7},"warnings":[{"code":"unidirectional_mirror","message":"mirror looks unidirectional"}]}"#.into(),
    });
    noc.on_message(
        &format!("{base}/health"),
        &encode(&health, Format::Postcard),
        103,
    );
    let kpi = Message::Kpi(Kpi {
        ts: Ts(1_700_000_060_000_000),
        period_s: 60,
        attempted: 12,
        answered: 8,
        failed: 2,
        cancelled: 2,
        abandoned: 0,
        failed_by_code: vec![(403, 1), (486, 1)],
        asr_pct: Some(66.7),
        ner_pct: Some(100.0),
        acd_s: Some(4.0),
        pdd_mean_ms: Some(100.0),
    });
    noc.on_message(&format!("{base}/kpi"), &encode(&kpi, Format::Json), 104);
    // And one that does not decode.
    noc.on_message(&format!("{base}/calls"), b"\xff\x00", 105);
    noc
}

/// Sample names in an exposition (`name{…} value` or `name value`).
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_string())
        .collect()
}

/// Every `voipsensor_…` identifier in a file.
fn names_used(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("voipsensor_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_metric_the_rules_and_the_dashboard_use_is_exported() {
    let exported = sample_names(&fed_noc().metrics.encode());
    for f in ["alerts.yml", "alerts.test.yml", "grafana-dashboard.json"] {
        let used = names_used(&std::fs::read_to_string(monitoring(f)).unwrap());
        assert!(used.len() >= 5, "{f}: {used:?}");
        let missing: Vec<_> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{f} uses metrics /metrics does not have: {missing:?}\nexported: {exported:?}"
        );
    }
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_in_every_panel() {
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 15);
    for p in panels {
        let t = p["targets"].as_array().unwrap();
        assert!(
            !t.is_empty()
                && t.iter()
                    .all(|x| x["expr"].as_str().is_some_and(|e| !e.is_empty())),
            "{p}"
        );
    }
}
