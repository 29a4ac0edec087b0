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
    let sensor = cfg.sensor_id()?;
    let topics = voipsensor::publish::topic::Topics::new(&cfg.sensor.site, &sensor)?;
    // Only non-secret facts: the configuration's Debug is redacted, but a summary reads better.
    println!(
        "{}: ok; publishes {:?} to {} under {}/; privacy {:?}",
        a.file.display(),
        cfg.output.payload,
        cfg.mqtt.url,
        topics.base(),
        cfg.privacy.mode
    );
    Ok(ExitCode::SUCCESS)
}
