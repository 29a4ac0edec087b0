//! `voipsensor check-config FILE`: parse and validate a configuration, print the outcome.
//!
//! Fails (exit 3) on what can never work; warns (exit 0) on what may be fine on the
//! sensor itself (an interface this machine lacks now, an id derived from it).

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The TOML configuration file.
    pub file: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let cfg = voipsensor::config::load(&a.file)?;
    let file = a.file.display();
    for i in &cfg.capture.interfaces {
        if !std::path::Path::new("/sys/class/net").join(i).exists() {
            eprintln!(
                "voipsensor check-config: warning: {file}: capture.interfaces = {i:?}: no such interface \
                 on this machine now; `run` waits for it (`voipsensor interfaces` lists those present)"
            );
        }
    }
    // A derived id needs the capture NIC, which the machine checking the file may lack.
    let sensor = match cfg.sensor_id() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("voipsensor check-config: warning: {file}: {e}");
            "<derived-at-start>".into()
        }
    };
    let topics = format!("voipsensor/v1/{}/{sensor}", cfg.sensor.site);
    // Only non-secret facts (the URL holds no password: the config moved it out).
    println!(
        "{file}: ok; publishes {} payloads to {} under {topics}/; privacy {}",
        cfg.output.payload, cfg.mqtt.url, cfg.privacy.mode
    );
    Ok(ExitCode::SUCCESS)
}
