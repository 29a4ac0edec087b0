//! `voipsensor check-config FILE`: parse and validate a configuration, print the outcome.

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
    // A derived id needs the capture NIC, which the machine checking the file may lack.
    let sensor = match cfg.sensor_id() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("voipsensor check-config: note: {e}");
            "<derived-at-start>".into()
        }
    };
    let topics = format!("voipsensor/v1/{}/{sensor}", cfg.sensor.site);
    // Only non-secret facts: the configuration's Debug is redacted, but a summary reads better.
    println!(
        "{}: ok; publishes {:?} to {} under {}/; privacy {:?}",
        a.file.display(),
        cfg.output.payload,
        cfg.mqtt.url,
        topics,
        cfg.privacy.mode
    );
    Ok(ExitCode::SUCCESS)
}
