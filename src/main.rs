//! The `voipsensor` command line: thin edges around the sans-IO library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cli;

#[derive(Parser)]
#[command(
    name = "voipsensor",
    version,
    about = "Passive SIP/RTP monitoring sensor for a switch mirror port",
    after_help = cli::exit::TABLE
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a capture file through the tracker; print JSON lines (or publish to MQTT).
    Replay(cli::replay::Args),
    /// Call report of a capture: SIP ladder and per-second quality charts in one HTML file.
    Report(cli::report::Args),
    /// Live sensor on mirror-port interfaces: JSON lines on stdout, or MQTT.
    Run(cli::run::Args),
    /// List capture interfaces with link state and addresses.
    Interfaces(cli::interfaces::Args),
    /// Would the sensor work here? Config, interfaces, capabilities, MQTT CONNECT and round trip, NTP; a verdict each.
    Selftest(cli::selftest::Args),
    /// Write a synthetic demo/test capture (SIP calls with RTP) made by voipsensor's own fixture builder.
    Fixture(cli::fixture::Args),
    /// Decode postcard payloads (file or stdin: hex lines from `mosquitto_sub -F %x`, or framed) to JSON lines.
    Decode(cli::decode::Args),
    /// Subscribe to the voipsensor topic tree and print every message as JSON lines.
    Watch(cli::watch::Args),
    /// NOC side: subscribe to the tree, serve /metrics (Prometheus), a fleet page and site pages.
    Noc(cli::noc::Args),
    /// Parse and validate a configuration file.
    CheckConfig(cli::check_config::Args),
    /// For the appliance's /init: sensor.toml as shell variables, or the error (and --report it).
    BootConfig(cli::boot_config::Args),
    #[command(hide = true)]
    PublishTest(cli::publish_test::Args),
}

fn main() -> ExitCode {
    let bad_filter = cli::log_filter::init();
    let cli = Cli::parse();
    if let Some(why) = bad_filter {
        log::warn!("{why}");
    }
    let res = match cli.cmd {
        Cmd::Replay(a) => cli::replay::run(a),
        Cmd::Report(a) => cli::report::run(a),
        Cmd::Run(a) => cli::run::run(a),
        Cmd::Interfaces(a) => cli::interfaces::run(a),
        Cmd::Selftest(a) => cli::selftest::run(a),
        Cmd::Fixture(a) => cli::fixture::run(a),
        Cmd::Decode(a) => cli::decode::run(a),
        Cmd::Watch(a) => cli::watch::run(a),
        Cmd::Noc(a) => cli::noc::run(a),
        Cmd::CheckConfig(a) => cli::check_config::run(a),
        Cmd::BootConfig(a) => cli::boot_config::run(a),
        Cmd::PublishTest(a) => cli::publish_test::run(a),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            // The one report of a fatal error, with its OS cause (`{:#}`).
            eprintln!("voipsensor: {e:#}");
            cli::exit::Exit::of(&e).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag and positional of every subcommand says what it does in `--help`.
    #[test]
    fn every_argument_of_every_command_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.is_hide_set() {
                    continue;
                }
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        walk(&cmd, "voipsensor", &mut missing);
        assert!(missing.is_empty(), "no help for: {missing:?}");
    }
}
