//! Capture files: classic pcap read in blocks (`capture::blocks`), and libpcap for
//! everything else (pcapng, other versions) and from any record the block reader does not
//! take as it stands.

use super::blocks::{Blocks, Stop};
use crate::wire::LinkType;
use anyhow::{Context, Result, bail};
use embassy_time::Instant;
use std::path::Path;

pub struct CaptureFile {
    path: std::path::PathBuf,
    /// Until the block reader hands over; libpcap from then on.
    blocks: Option<Blocks>,
    cap: Option<pcap::Capture<pcap::Offline>>,
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
        let blocks = std::fs::File::open(path).ok().and_then(Blocks::open);
        let (cap, dlt) = match &blocks {
            Some(b) => (None, b.dlt()),
            None => {
                let cap = Self::libpcap(path)?;
                let dlt = cap.get_datalink().0;
                (Some(cap), dlt)
            }
        };
        let Some(link) = LinkType::from_dlt(dlt) else {
            bail!(
                "{}: link type {dlt} is not supported (Ethernet, Linux cooked SLL/SLL2, raw IP and BSD loopback are)",
                path.display()
            );
        };
        Ok(CaptureFile {
            path: path.to_path_buf(),
            blocks,
            cap,
            link,
            dlt,
            total_bytes: meta.len(),
            read_bytes: 24,
        })
    }

    fn libpcap(path: &Path) -> Result<pcap::Capture<pcap::Offline>> {
        pcap::Capture::from_file(path).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a readable pcap/pcapng capture: {e}",
                path.display()
            )
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
        if let Some(b) = &mut self.blocks {
            let next = b.next_record();
            match next {
                Ok(r) => {
                    let data = self.blocks.as_ref().map_or(&[][..], |b| b.data(&r));
                    self.read_bytes += 16 + data.len() as u64;
                    return Ok(Some(Frame {
                        ts: micros(r.ts_sec, r.ts_usec),
                        data,
                        orig_len: r.orig_len,
                    }));
                }
                Err(Stop::End) => return Ok(None),
                Err(Stop::HandOver) => {
                    // libpcap goes on from this record, and says what is wrong with it.
                    let done = b.records;
                    self.blocks = None;
                    let mut cap = Self::libpcap(&self.path)?;
                    for _ in 0..done {
                        cap.next_packet()
                            .context("capture changed while it was read")?;
                    }
                    self.cap = Some(cap);
                }
            }
        }
        let Some(cap) = &mut self.cap else {
            return Ok(None);
        };
        match cap.next_packet() {
            Ok(p) => {
                let h = p.header;
                self.read_bytes += 16 + h.caplen as u64;
                // `i64::from`: time_t and suseconds_t are 32-bit on armv7 (a no-op here).
                #[allow(clippy::useless_conversion)]
                let ts = micros(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec));
                Ok(Some(Frame {
                    ts,
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

/// A record's time as the tracker's instant; before 1970 is 1970.
fn micros(sec: i64, usec: i64) -> Instant {
    Instant::from_micros(sec.saturating_mul(1_000_000).saturating_add(usec).max(0) as u64)
}
