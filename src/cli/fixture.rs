//! `voipsensor fixture OUT.pcap`: writes a synthetic capture from voipsensor's own
//! generator (the demo, a load capture for benchmarks and soak tests, or a load capture
//! with a flood mixed in).

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use voipsensor::fixture::{self, Builder, Flood, FloodKind, LoadOptions, LoadSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A dozen calls: answered, busy, rejected, cancelled, hold, early media, TCP, IPv6,
    /// VLAN, fragmented, ERSPAN.
    Demo,
    /// `--calls` concurrent calls for `--seconds`, streamed to disk. Every flood below is
    /// this load plus `--flood-count` hostile units spread evenly over the capture.
    Long,
    /// Unit = an INVITE without SDP with a new Call-ID (fills the call table).
    FloodCallIds,
    /// Unit = an INVITE with an SDP offer and a new Call-ID (calls + expected media).
    FloodCallIdsSdp,
    /// Unit = INVITE + 200 OK with SDP: answered calls whose media never comes.
    FloodInvitePairs,
    /// Unit = an RTP packet with a new SSRC, all on one port pair.
    FloodSsrcsOnePort,
    /// Unit = an RTP packet with a new SSRC on a new port pair (fills the stream table).
    FloodSsrcsPorts,
    /// Unit = a TCP segment on a new flow to 5060 holding half an INVITE, never finished.
    FloodTcpPartial,
    /// Unit = the first IPv4 fragment of a SIP datagram, never completed.
    FloodFragments,
    /// Unit = a 1-byte TCP segment; one connection carries SIP OPTIONS byte by byte.
    FloodTinyTcp,
}

impl Scenario {
    fn flood(self) -> Option<FloodKind> {
        Some(match self {
            Scenario::Demo | Scenario::Long => return None,
            Scenario::FloodCallIds => FloodKind::CallIds,
            Scenario::FloodCallIdsSdp => FloodKind::CallIdsSdp,
            Scenario::FloodInvitePairs => FloodKind::InvitePairs,
            Scenario::FloodSsrcsOnePort => FloodKind::SsrcsOnePort,
            Scenario::FloodSsrcsPorts => FloodKind::SsrcsPorts,
            Scenario::FloodTcpPartial => FloodKind::TcpPartial,
            Scenario::FloodFragments => FloodKind::Fragments,
            Scenario::FloodTinyTcp => FloodKind::TinyTcp,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    /// G.711 µ-law, PT 0, 160-byte payloads.
    Pcmu,
    /// G.711 A-law, PT 8.
    Pcma,
    /// G.722, PT 9 (8 kHz RTP clock), 160-byte payloads.
    G722,
    /// Opus, PT 111, 48 kHz clock, 80-byte payloads.
    Opus,
    /// Signalling only: calls with SDP but no RTP (churn millions of calls cheaply).
    None,
}

#[derive(clap::Args)]
pub struct Args {
    /// Output pcap file.
    pub out: PathBuf,
    /// Which synthetic traffic to write.
    #[arg(long, value_enum, default_value = "demo")]
    pub scenario: Scenario,
    /// Long/flood: concurrent calls (each a full SIP dialog with RTP both ways, 20 ms).
    #[arg(long, default_value_t = 50)]
    pub calls: u32,
    /// Long/flood: capture length in seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Long/flood: length of each call (at least 3); calls repeat back to back in each
    /// slot, so `--calls N --seconds S --call-seconds C` churns about N*S/C calls
    /// (default: one call per slot for the whole capture).
    #[arg(long)]
    pub call_seconds: Option<u32>,
    /// Long/flood: seed of call ids, SSRCs and impairments (same seed, same bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Long/flood: codec of the calls' RTP.
    #[arg(long, value_enum, default_value = "pcmu")]
    pub codec: Codec,
    /// Long/flood: probability an RTP packet is lost.
    #[arg(long, default_value_t = 0.002)]
    pub loss: f64,
    /// Long/flood: extra delay per RTP packet, uniform in [0, J) ms (above 20 ms it
    /// reorders as well).
    #[arg(long, default_value_t = 2.0)]
    pub jitter_ms: f64,
    /// Long/flood: probability an RTP packet arrives after its successor.
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// Long/flood: probability an RTP packet arrives twice.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate: f64,
    /// Long/flood: 802.1Q VLAN id on every frame.
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Flood: hostile units spread evenly over the capture (see each scenario for a unit).
    #[arg(long, default_value_t = 100_000)]
    pub flood_count: u64,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.scenario == Scenario::Demo {
        let mut b = Builder::new();
        let calls = fixture::demo(&mut b);
        b.write_pcap(&a.out)?;
        eprintln!(
            "{}: {} frames, {} calls (demo)",
            a.out.display(),
            b.len(),
            calls.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let spec = LoadSpec {
        calls: a.calls,
        seconds: a.seconds,
        call_seconds: a.call_seconds,
        seed: a.seed,
    };
    let opt = LoadOptions {
        codec: match a.codec {
            Codec::Pcmu => fixture::Codec::Pcmu,
            Codec::Pcma => fixture::Codec::Pcma,
            Codec::G722 => fixture::Codec::G722,
            Codec::Opus => fixture::Codec::Opus,
            Codec::None => fixture::Codec::None,
        },
        loss: a.loss,
        jitter_ms: a.jitter_ms,
        reorder: a.reorder,
        duplicate: a.duplicate,
        vlan: a.vlan,
        flood: a.scenario.flood().map(|kind| Flood {
            kind,
            count: a.flood_count,
        }),
    };
    let s = fixture::write_load_with(&a.out, &spec, &opt)?;
    eprintln!(
        "{}: {} frames, {} calls, {} RTP packets, {} flood frames ({} slots x {} s)",
        a.out.display(),
        s.frames,
        s.calls,
        s.rtp_packets,
        s.flood_frames,
        a.calls,
        a.seconds
    );
    Ok(ExitCode::SUCCESS)
}
