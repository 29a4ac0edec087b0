//! `voipsensor fixture OUT.pcap`: writes a synthetic capture from voipsensor's own
//! generator (the demo, or a long load capture for benchmarks and soak tests).

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use voipsensor::fixture::{self, Builder, LoadSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A dozen calls: answered, busy, rejected, cancelled, hold, early media, TCP, IPv6,
    /// VLAN, fragmented, ERSPAN.
    Demo,
    /// `--calls` concurrent calls for `--seconds`, streamed to disk.
    Long,
}

#[derive(clap::Args)]
pub struct Args {
    /// Output pcap file.
    pub out: PathBuf,
    /// Which synthetic traffic to write.
    #[arg(long, value_enum, default_value = "demo")]
    pub scenario: Scenario,
    /// Long: concurrent calls.
    #[arg(long, default_value_t = 50)]
    pub calls: u32,
    /// Long: capture length in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Long: length of each call; calls repeat back to back in each slot (default: the
    /// whole capture).
    #[arg(long)]
    pub call_seconds: Option<u32>,
    /// Long: seed of call ids, SSRCs and impairments.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.scenario {
        Scenario::Demo => {
            let mut b = Builder::new();
            let calls = fixture::demo(&mut b);
            b.write_pcap(&a.out)?;
            eprintln!(
                "{}: {} frames, {} calls (demo)",
                a.out.display(),
                b.len(),
                calls.len()
            );
        }
        Scenario::Long => {
            let spec = LoadSpec {
                calls: a.calls,
                seconds: a.seconds,
                call_seconds: a.call_seconds,
                seed: a.seed,
            };
            let s = fixture::write_load(&a.out, &spec)?;
            eprintln!(
                "{}: {} frames, {} calls, {} RTP packets ({} slots x {} s)",
                a.out.display(),
                s.frames,
                s.calls,
                s.rtp_packets,
                a.calls,
                a.seconds
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
