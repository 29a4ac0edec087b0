//! `voipsensor publish-test` (hidden): publishes synthetic call events paced in wall time,
//! then stays connected until killed. Tests use it as the process to SIGKILL for the
//! Last Will, and as a smoke test of a broker setup.

use anyhow::Result;
use std::process::ExitCode;
use std::time::Duration;
use voipsensor::publish::Publisher;
use voipsensor::publish::payload::Format;
use voipsensor::track::event::{CallEvent, CallEventKind, Event, Ts, fill};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub broker: String,
    #[arg(long)]
    pub site: String,
    #[arg(long)]
    pub sensor: String,
    #[arg(long, value_enum, default_value = "postcard")]
    pub payload: Format,
    /// Call events to publish.
    #[arg(long, default_value_t = 3)]
    pub count: u32,
    /// Wall time between events.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Exit cleanly after publishing instead of waiting to be killed.
    #[arg(long)]
    pub exit: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let cfg = voipsensor::config::options_from_cli(&a.broker, &a.site, &a.sensor, a.payload)?;
    let mut settings = voipsensor::publish::PublishSettings::try_from(&cfg)?;
    settings.interfaces = vec!["publish-test".into()];
    let mut p = Publisher::start(settings)?;
    for i in 0..a.count {
        p.publish(&synthetic_call(i));
        std::thread::sleep(Duration::from_millis(a.interval_ms));
    }
    if a.exit {
        p.finish(Duration::from_secs(10))?;
        return Ok(ExitCode::SUCCESS);
    }
    // Readiness line for tests, then wait to be killed.
    println!("published {}", a.count);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A call event numbered `i` (test data only).
pub fn synthetic_call(i: u32) -> Event {
    let mut c = CallEvent::new(
        Ts(1_700_000_000_000_000 + u64::from(i) * 1_000_000),
        CallEventKind::Invite,
        core::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
        core::net::SocketAddr::from(([127, 0, 0, 2], 5060)),
    );
    fill(&mut c.call_id, &format!("test-call-{i}@127.0.0.1"));
    fill(&mut c.caller, "1000");
    fill(&mut c.callee, "2000");
    Event::Call(c)
}
