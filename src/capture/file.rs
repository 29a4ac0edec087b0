//! Capture files (pcap and pcapng, through libpcap).

use crate::wire::LinkType;
use anyhow::{Context, Result, bail};
use embassy_time::Instant;
use std::path::Path;

pub struct CaptureFile {
    cap: pcap::Capture<pcap::Offline>,
    link: LinkType,
    dlt: i32,
    /// File size, for progress.
    pub total_bytes: u64,
    /// Bytes of records read so far (headers included, an estimate for pcapng).
    pub read_bytes: u64,
}

/// One frame as read from the file.
pub struct Frame<'a> {
    pub ts: Instant,
    pub data: &'a [u8],
    /// Original length on the wire (longer than `data` when the capture was snapped).
    pub orig_len: u32,
}

impl CaptureFile {
    /// Opens a capture file; a missing file or one that is not a capture is a one-line error.
    pub fn open(path: &Path) -> Result<CaptureFile> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot open capture {}", path.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", path.display());
        }
        let cap = pcap::Capture::from_file(path).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a readable pcap/pcapng capture: {e}",
                path.display()
            )
        })?;
        let dlt = cap.get_datalink().0;
        let Some(link) = LinkType::from_dlt(dlt) else {
            bail!(
                "{}: link type {dlt} is not supported (Ethernet, Linux cooked SLL/SLL2, raw IP and BSD loopback are)",
                path.display()
            );
        };
        Ok(CaptureFile {
            cap,
            link,
            dlt,
            total_bytes: meta.len(),
            read_bytes: 24,
        })
    }

    pub fn link(&self) -> LinkType {
        self.link
    }
    pub fn dlt(&self) -> i32 {
        self.dlt
    }

    /// The next frame; `Ok(None)` at the end; an error for a truncated or corrupt file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>> {
        match self.cap.next_packet() {
            Ok(p) => {
                let h = p.header;
                self.read_bytes += 16 + h.caplen as u64;
                // `i64::from`: time_t and suseconds_t are 32-bit on armv7 (a no-op here).
                #[allow(clippy::useless_conversion)]
                let us = i64::from(h.ts.tv_sec)
                    .saturating_mul(1_000_000)
                    .saturating_add(i64::from(h.ts.tv_usec))
                    .max(0) as u64;
                Ok(Some(Frame {
                    ts: Instant::from_micros(us),
                    data: p.data,
                    orig_len: h.len,
                }))
            }
            Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(e) => bail!(
                "capture is truncated or corrupt after {} bytes: {e}",
                self.read_bytes
            ),
        }
    }
}
