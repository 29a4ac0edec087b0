//! RTCP (RFC 3550 §6) compound packets: iterator, per-packet view and parsed forms for
//! SR, RR, SDES, BYE, APP and XR (RFC 3611) with the VoIP Metrics block (§4.7).
//!
//! Everything is a view over the datagram: report blocks, SDES items and XR blocks are
//! iterated in place, so parsing allocates nothing.
// No panic on packet data by construction: every index, unwrap and expect here is a
// checked one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use super::{Error, Result, check_padding, first_octet_v2};
use crate::view::read::{be16, be32, be64, slice, u8_at};
use byteorder::{ByteOrder, NetworkEndian};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
pub const PT_XR: u8 = 207;

/// SDES item type for the canonical name (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

mod field {
    use core::ops::Range;
    /// V (2), P, count (5).
    pub const V_P_COUNT: usize = 0;
    pub const PACKET_TYPE: usize = 1;
    /// Packet length in 32-bit words minus one, header included.
    pub const LENGTH: Range<usize> = 2..4;
    pub const BODY: usize = 4;

    // Offsets in the body (after the 4-byte header).
    pub const SSRC: Range<usize> = 0..4;
    pub const SR_NTP: Range<usize> = 4..12;
    pub const SR_RTP_TS: Range<usize> = 12..16;
    pub const SR_PACKETS: Range<usize> = 16..20;
    pub const SR_OCTETS: Range<usize> = 20..24;
    pub const SR_BLOCKS: usize = 24;
    pub const RR_BLOCKS: usize = 4;
    pub const APP_NAME: Range<usize> = 4..8;
    pub const APP_DATA: usize = 8;
    pub const XR_BLOCKS: usize = 4;

    // One report block (§6.4.1).
    pub const RB_SSRC: Range<usize> = 0..4;
    /// Fraction lost (8), cumulative lost (24, signed).
    pub const RB_LOST: Range<usize> = 4..8;
    pub const RB_HIGHEST_SEQ: Range<usize> = 8..12;
    pub const RB_JITTER: Range<usize> = 12..16;
    pub const RB_LSR: Range<usize> = 16..20;
    pub const RB_DLSR: Range<usize> = 20..24;
    pub const RB_LEN: usize = 24;
}

/// One RTCP packet at the start of a compound datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    /// At least `4 * (length + 1)` bytes: the packets after it in the compound follow.
    buffer: T,
}

/// The view over a borrowed datagram.
pub type RtcpPacket<'a> = Packet<&'a [u8]>;

crate::view::checked_view!(Packet, Error);

impl<T: AsRef<[u8]>> Packet<T> {
    /// What `new_checked` checks (version 2; the length field fits in the buffer, trailing
    /// bytes, i.e. the next packets of a compound, are ignored): after it, no getter can
    /// index out of bounds.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        let b0 = first_octet_v2(buf, field::BODY)?;
        let len = self.len();
        if buf.len() < len {
            return Err(Error::Truncated);
        }
        if b0 & 0x20 != 0 {
            check_padding(u8_at(buf, len - 1), len - field::BODY)?;
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::V_P_COUNT) >> 6
    }
    pub fn padding(&self) -> bool {
        u8_at(self.buffer.as_ref(), field::V_P_COUNT) & 0x20 != 0
    }
    /// Report count (SR/RR), source count (SDES/BYE) or subtype (APP), 5 bits.
    pub fn count(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::V_P_COUNT) & 0x1f
    }
    pub fn packet_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::PACKET_TYPE)
    }
    /// Whole packet length in bytes, header included.
    pub fn len(&self) -> usize {
        let words = be16(self.buffer.as_ref(), field::LENGTH);
        4 * (usize::from(words) + 1)
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    /// First word after the header: the sender's SSRC for every type defined here.
    pub fn ssrc(&self) -> u32 {
        let body = slice(self.buffer.as_ref(), field::BODY..self.len());
        body.get(field::SSRC).map_or(0, NetworkEndian::read_u32)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// Bytes after the 4-byte header, without padding.
    pub fn body(&self) -> &'a [u8] {
        let buf = self.buffer.as_ref();
        let end = self.len();
        let pad = if self.padding() {
            usize::from(u8_at(buf, end - 1))
        } else {
            0
        };
        slice(buf, field::BODY..end - pad)
    }

    /// Parses the packet into its typed form.
    pub fn repr(&self) -> Result<RtcpRepr<'a>> {
        let body = self.body();
        let rc = usize::from(self.count());
        let be32 = |r: core::ops::Range<usize>| be32(body, r);
        match self.packet_type() {
            PT_SR => {
                let at = field::SR_BLOCKS;
                let blocks = body
                    .get(at..at + field::RB_LEN * rc)
                    .ok_or(Error::Truncated)?;
                Ok(RtcpRepr::SenderReport {
                    ssrc: be32(field::SSRC),
                    ntp: be64(body, field::SR_NTP),
                    rtp_ts: be32(field::SR_RTP_TS),
                    packet_count: be32(field::SR_PACKETS),
                    octet_count: be32(field::SR_OCTETS),
                    blocks: ReportBlocks { buf: blocks },
                })
            }
            PT_RR => {
                let at = field::RR_BLOCKS;
                let blocks = body
                    .get(at..at + field::RB_LEN * rc)
                    .ok_or(Error::Truncated)?;
                Ok(RtcpRepr::ReceiverReport {
                    ssrc: be32(field::SSRC),
                    blocks: ReportBlocks { buf: blocks },
                })
            }
            PT_SDES => Ok(RtcpRepr::SourceDescription(Sdes {
                buf: body,
                count: self.count(),
            })),
            PT_BYE => {
                let ssrcs = body.get(..4 * rc).ok_or(Error::Truncated)?;
                // Optional reason: length octet then text (§6.6).
                let reason = body
                    .get(4 * rc)
                    .and_then(|&n| body.get(4 * rc + 1..4 * rc + 1 + usize::from(n)));
                Ok(RtcpRepr::Bye { ssrcs, reason })
            }
            PT_APP => {
                let name = body.get(field::APP_NAME).ok_or(Error::Truncated)?;
                Ok(RtcpRepr::App {
                    subtype: self.count(),
                    ssrc: be32(field::SSRC),
                    name: name.try_into().map_err(|_| Error::Truncated)?,
                    data: body.get(field::APP_DATA..).unwrap_or(&[]),
                })
            }
            PT_XR => {
                let blocks = body.get(field::XR_BLOCKS..).ok_or(Error::Truncated)?;
                Ok(RtcpRepr::ExtendedReport {
                    ssrc: be32(field::SSRC),
                    blocks: XrBlocks { buf: blocks },
                })
            }
            pt => Ok(RtcpRepr::Other { packet_type: pt }),
        }
    }
}

/// Iterates the packets of a compound RTCP datagram; stops after the first malformed one
/// (yielding its error), since its length cannot be trusted to find the next.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Compound<'a> {
    pub fn new(datagram: &'a [u8]) -> Self {
        Compound { rest: datagram }
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RtcpPacket::new_checked(self.rest) {
            Ok(p) => {
                self.rest = self.rest.get(p.len()..).unwrap_or(&[]);
                Some(Ok(p))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Parsed RTCP packet.
#[derive(Debug, Clone, Copy)]
pub enum RtcpRepr<'a> {
    SenderReport {
        ssrc: u32,
        /// 64-bit NTP timestamp.
        ntp: u64,
        rtp_ts: u32,
        packet_count: u32,
        octet_count: u32,
        blocks: ReportBlocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        blocks: ReportBlocks<'a>,
    },
    SourceDescription(Sdes<'a>),
    Bye {
        /// `4 * count` bytes of SSRC/CSRC.
        ssrcs: &'a [u8],
        reason: Option<&'a [u8]>,
    },
    App {
        subtype: u8,
        ssrc: u32,
        name: [u8; 4],
        data: &'a [u8],
    },
    ExtendedReport {
        ssrc: u32,
        blocks: XrBlocks<'a>,
    },
    Other {
        packet_type: u8,
    },
}

/// One SR/RR report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed (negative with duplicates).
    pub cumulative_lost: i32,
    pub ext_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from `ssrc` (0: none).
    pub lsr: u32,
    /// Delay since that SR, 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    /// `b` is one whole block (`ReportBlocks` hands out exactly 24 bytes).
    fn parse(b: &[u8]) -> ReportBlock {
        let be32 = |r: core::ops::Range<usize>| be32(b, r);
        let w1 = be32(field::RB_LOST);
        // Sign-extend the 24-bit cumulative count.
        let cum = ((w1 << 8) as i32) >> 8;
        ReportBlock {
            ssrc: be32(field::RB_SSRC),
            fraction_lost: (w1 >> 24) as u8,
            cumulative_lost: cum,
            ext_highest_seq: be32(field::RB_HIGHEST_SEQ),
            jitter: be32(field::RB_JITTER),
            lsr: be32(field::RB_LSR),
            dlsr: be32(field::RB_DLSR),
        }
    }
    /// Fraction lost as 0.0..=1.0.
    pub fn fraction_lost_ratio(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }
    /// Jitter in ms given the stream's clock rate.
    pub fn jitter_ms(&self, clock_rate: u32) -> Option<f64> {
        (clock_rate != 0).then(|| f64::from(self.jitter) * 1000.0 / f64::from(clock_rate))
    }
}

/// The report blocks of an SR or RR, checked to be whole.
#[derive(Debug, Clone, Copy)]
pub struct ReportBlocks<'a> {
    buf: &'a [u8],
}

impl<'a> ReportBlocks<'a> {
    pub fn len(&self) -> usize {
        self.buf.len() / field::RB_LEN
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

impl<'a> Iterator for ReportBlocks<'a> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let b = self.buf.get(..field::RB_LEN)?;
        self.buf = self.buf.get(field::RB_LEN..).unwrap_or(&[]);
        Some(ReportBlock::parse(b))
    }
}

/// SDES chunks: each is an SSRC followed by items, ended by a zero octet and padded to
/// a 32-bit boundary (§6.5).
#[derive(Debug, Clone, Copy)]
pub struct Sdes<'a> {
    buf: &'a [u8],
    count: u8,
}

impl<'a> Sdes<'a> {
    /// Every `(ssrc, item type, value)` in order; stops at the first malformed item.
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems {
            buf: self.buf,
            pos: 0,
            chunk_ssrc: None,
            chunks_left: self.count,
        }
    }
    /// The first CNAME: `(ssrc, cname)`.
    pub fn cname(&self) -> Option<(u32, &'a [u8])> {
        self.items()
            .find(|&(_, t, _)| t == SDES_CNAME)
            .map(|(s, _, v)| (s, v))
    }
}

#[derive(Debug, Clone)]
pub struct SdesItems<'a> {
    buf: &'a [u8],
    pos: usize,
    chunk_ssrc: Option<u32>,
    chunks_left: u8,
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = (u32, u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let ssrc = match self.chunk_ssrc {
                Some(s) => s,
                None => {
                    if self.chunks_left == 0 {
                        return None;
                    }
                    let s = NetworkEndian::read_u32(self.buf.get(self.pos..self.pos + 4)?);
                    self.pos += 4;
                    self.chunks_left -= 1;
                    self.chunk_ssrc = Some(s);
                    s
                }
            };
            let ty = *self.buf.get(self.pos)?;
            if ty == 0 {
                // End of chunk: skip the null octet(s) to the next 32-bit boundary.
                self.pos = (self.pos + 4) & !3;
                self.chunk_ssrc = None;
                continue;
            }
            let len = usize::from(*self.buf.get(self.pos + 1)?);
            let val = self.buf.get(self.pos + 2..self.pos + 2 + len)?;
            self.pos += 2 + len;
            return Some((ssrc, ty, val));
        }
    }
}

/// XR report blocks (RFC 3611 §3): `(block type, type-specific byte, contents)`.
#[derive(Debug, Clone, Copy)]
pub struct XrBlocks<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for XrBlocks<'a> {
    type Item = (u8, u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let bt = *self.buf.first()?;
        let ts = *self.buf.get(1)?;
        let len = 4 * usize::from(self.buf.get(2..4).map_or(0, NetworkEndian::read_u16));
        let Some(body) = self.buf.get(4..4 + len) else {
            self.buf = &[];
            return None;
        };
        self.buf = self.buf.get(4 + len..).unwrap_or(&[]);
        Some((bt, ts, body))
    }
}

impl<'a> XrBlocks<'a> {
    /// The first VoIP Metrics block.
    pub fn voip_metrics(self) -> Option<VoipMetrics> {
        self.filter(|&(bt, _, _)| bt == VoipMetrics::BLOCK_TYPE)
            .find_map(|(_, _, b)| VoipMetrics::parse(b).ok())
    }
}

/// RFC 3611 §4.7 VoIP Metrics report block, raw fields with unit helpers. "Unavailable"
/// encodings (127 for levels/R/MOS, 0 for delays) become `None` in the helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoipMetrics {
    pub ssrc: u32,
    /// Fraction of packets lost, 1/256.
    pub loss_rate: u8,
    /// Fraction discarded (late/early) by the jitter buffer, 1/256.
    pub discard_rate: u8,
    pub burst_density: u8,
    pub gap_density: u8,
    /// ms.
    pub burst_duration: u16,
    /// ms.
    pub gap_duration: u16,
    /// ms.
    pub round_trip_delay: u16,
    /// ms.
    pub end_system_delay: u16,
    /// dBm0, signed.
    pub signal_level: i8,
    /// dBm0, signed.
    pub noise_level: i8,
    /// Residual echo return loss, dB.
    pub rerl: u8,
    pub gmin: u8,
    pub r_factor: u8,
    pub ext_r_factor: u8,
    /// MOS × 10.
    pub mos_lq: u8,
    /// MOS × 10.
    pub mos_cq: u8,
    pub rx_config: u8,
    /// ms.
    pub jb_nominal: u16,
    pub jb_maximum: u16,
    pub jb_abs_max: u16,
}

impl VoipMetrics {
    pub const BLOCK_TYPE: u8 = 7;
    /// Block contents after the 4-byte block header.
    pub const LEN: usize = 32;

    pub fn parse(b: &[u8]) -> Result<VoipMetrics> {
        if b.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        // Length checked above: every offset below is inside the block.
        let o = |i: usize| u8_at(b, i);
        let be16 = |at: usize| be16(b, at..at + 2);
        Ok(VoipMetrics {
            ssrc: be32(b, 0..4),
            loss_rate: o(4),
            discard_rate: o(5),
            burst_density: o(6),
            gap_density: o(7),
            burst_duration: be16(8),
            gap_duration: be16(10),
            round_trip_delay: be16(12),
            end_system_delay: be16(14),
            signal_level: o(16) as i8,
            noise_level: o(17) as i8,
            rerl: o(18),
            gmin: o(19),
            r_factor: o(20),
            ext_r_factor: o(21),
            mos_lq: o(22),
            mos_cq: o(23),
            rx_config: o(24),
            jb_nominal: be16(26),
            jb_maximum: be16(28),
            jb_abs_max: be16(30),
        })
    }
    pub fn loss_ratio(&self) -> f64 {
        f64::from(self.loss_rate) / 256.0
    }
    pub fn discard_ratio(&self) -> f64 {
        f64::from(self.discard_rate) / 256.0
    }
    pub fn r(&self) -> Option<u8> {
        (self.r_factor != 127).then_some(self.r_factor)
    }
    pub fn mos_lq(&self) -> Option<f64> {
        (self.mos_lq != 127).then(|| f64::from(self.mos_lq) / 10.0)
    }
    pub fn mos_cq(&self) -> Option<f64> {
        (self.mos_cq != 127).then(|| f64::from(self.mos_cq) / 10.0)
    }
    pub fn round_trip_ms(&self) -> Option<u16> {
        (self.round_trip_delay != 0).then_some(self.round_trip_delay)
    }
    pub fn signal_dbm0(&self) -> Option<i8> {
        (self.signal_level != 127).then_some(self.signal_level)
    }
    pub fn noise_dbm0(&self) -> Option<i8> {
        (self.noise_level != 127).then_some(self.noise_level)
    }
}

/// Round-trip time from a report block seen arriving at the SR sender (RFC 3550 §6.4.1:
/// `A - LSR - DLSR`, all in 1/65536 s). `None` when no SR was received (LSR 0) or the
/// clocks make it negative.
pub fn rtt_ms(lsr: u32, dlsr: u32, arrival_ntp_middle32: u32) -> Option<f64> {
    if lsr == 0 {
        return None;
    }
    let rtt = arrival_ntp_middle32.wrapping_sub(lsr).wrapping_sub(dlsr);
    // More than half the 16-bit-second range means it wrapped below zero.
    if rtt >= 0x8000_0000 {
        return None;
    }
    Some(f64::from(rtt) * 1000.0 / 65536.0)
}

/// Seconds from the NTP epoch (1900) to the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Middle 32 bits of the NTP timestamp for a Unix time in µs, for `rtt_ms`.
pub fn ntp_middle32(unix_us: u64) -> u32 {
    let secs = unix_us / 1_000_000 + NTP_UNIX_OFFSET;
    let frac16 = (unix_us % 1_000_000) * 65536 / 1_000_000;
    (((secs & 0xffff) << 16) | frac16) as u32
}

/// Middle 32 bits of a 64-bit NTP timestamp (what LSR echoes).
pub fn ntp_to_middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> heapless::Vec<u8, 256> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// ndpi_rtcp_compound.pcap frame 1: SR (1 block) + SDES CNAME.
    const SR_SDES: &str = "81c8000c5d931534dd3ac1704d614df800007d00000000c800007d0000000000000000010000000000000000000000000000000081ca000e5d931534010835643933313533340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d000000";
    /// Frame 4 (t = 4.028126 s): RR answering frame 1's SR + SDES.
    const RR_SDES: &str = "81c9000701932db45d931534000000010000bf8b00000006c1704d610004051c81ca000e01932db40107313933326462340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d00000000";
    /// rtpproxy_rtp_rtcp.pcap: SR without blocks + SDES.
    const SR0_SDES: &str = "80c80006f3cb200183ab03a1eb020b3a000094200000009e00009b8881ca0005f3cb2001010a6f75744368616e6e656c00000000";

    #[test]
    fn iterates_compound_sr_and_sdes() {
        let b = hex(SR_SDES);
        let pkts: heapless::Vec<RtcpPacket, 4> = Compound::new(&b).map(|p| p.unwrap()).collect();
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[0].packet_type(), PT_SR);
        assert_eq!(pkts[1].packet_type(), PT_SDES);
        match pkts[0].repr().unwrap() {
            RtcpRepr::SenderReport {
                ssrc,
                ntp,
                rtp_ts,
                packet_count,
                octet_count,
                blocks,
            } => {
                assert_eq!(ssrc, 0x5d93_1534);
                assert_eq!(ntp, 0xdd3a_c170_4d61_4df8);
                assert_eq!(rtp_ts, 32000);
                assert_eq!((packet_count, octet_count), (200, 32000));
                assert_eq!(blocks.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        match pkts[1].repr().unwrap() {
            RtcpRepr::SourceDescription(s) => {
                let (ssrc, cname) = s.cname().unwrap();
                assert_eq!(ssrc, 0x5d93_1534);
                assert_eq!(cname, b"5d931534");
                // Second item: NOTE (type 7).
                let note = s.items().nth(1).unwrap();
                assert_eq!(note.1, 7);
                assert!(note.2.starts_with(b"FreeSWITCH.org"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_receiver_report_block() {
        let b = hex(RR_SDES);
        let rr = Compound::new(&b).next().unwrap().unwrap();
        let RtcpRepr::ReceiverReport { ssrc, mut blocks } = rr.repr().unwrap() else {
            panic!()
        };
        assert_eq!(ssrc, 0x0193_2db4);
        let blk = blocks.next().unwrap();
        assert_eq!(
            blk,
            ReportBlock {
                ssrc: 0x5d93_1534,
                fraction_lost: 0,
                cumulative_lost: 1,
                ext_highest_seq: 0xbf8b,
                jitter: 6,
                lsr: 0xc170_4d61,
                dlsr: 0x0004_051c,
            }
        );
        assert!(blocks.next().is_none());
        assert_eq!(blk.jitter_ms(8000), Some(0.75));
    }

    #[test]
    fn rtt_from_real_sr_rr_exchange() {
        // The RR (frame 4) echoes frame 1's SR; it was captured 4.028126 s after the SR
        // on the SR sender's link, so A = SR NTP + 4.028126 s. DLSR = 4.01996 s.
        let sr = hex(SR_SDES);
        let RtcpRepr::SenderReport { ntp, .. } =
            Compound::new(&sr).next().unwrap().unwrap().repr().unwrap()
        else {
            panic!()
        };
        let lsr = ntp_to_middle32(ntp);
        assert_eq!(lsr, 0xc170_4d61);
        let arrival = lsr.wrapping_add((4.028126f64 * 65536.0).round() as u32);
        let rtt = rtt_ms(lsr, 0x0004_051c, arrival).unwrap();
        assert!((rtt - 8.16).abs() < 0.05, "{rtt}");
        assert_eq!(rtt_ms(0, 5, 10), None);
        assert_eq!(rtt_ms(1000, 500, 1200), None);
    }

    #[test]
    fn sign_extends_negative_cumulative_lost() {
        let mut b = hex(RR_SDES);
        // cumulative lost = 0xfffffe = -2
        b[13] = 0xff;
        b[14] = 0xff;
        b[15] = 0xfe;
        let rr = RtcpPacket::new_checked(&b).unwrap();
        let RtcpRepr::ReceiverReport { mut blocks, .. } = rr.repr().unwrap() else {
            panic!()
        };
        assert_eq!(blocks.next().unwrap().cumulative_lost, -2);
    }

    #[test]
    fn sr_without_blocks_and_short_cname() {
        let b = hex(SR0_SDES);
        let mut it = Compound::new(&b);
        let sr = it.next().unwrap().unwrap();
        let RtcpRepr::SenderReport {
            blocks,
            packet_count,
            ..
        } = sr.repr().unwrap()
        else {
            panic!()
        };
        assert!(blocks.is_empty());
        assert_eq!(packet_count, 0x9e);
        let RtcpRepr::SourceDescription(s) = it.next().unwrap().unwrap().repr().unwrap() else {
            panic!()
        };
        assert_eq!(s.cname(), Some((0xf3cb_2001, &b"outChannel"[..])));
        assert!(it.next().is_none());
    }

    #[test]
    fn rejects_truncated_and_wrong_version() {
        let b = hex(SR_SDES);
        assert_eq!(
            RtcpPacket::new_checked(&b[..40]).unwrap_err(),
            Error::Truncated
        );
        let mut v = b.clone();
        v[0] = 0x41;
        assert_eq!(RtcpPacket::new_checked(&v).unwrap_err(), Error::BadVersion);
        // Report count says 2 blocks but the length holds one.
        let mut c = b.clone();
        c[0] = 0x82;
        let p = RtcpPacket::new_checked(&c).unwrap();
        assert_eq!(p.repr().unwrap_err(), Error::Truncated);
        // A compound whose second packet is cut stops with an error.
        let mut it = Compound::new(&b[..60]);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn parses_bye_with_reason_and_app() {
        let bye = [
            0x81, 0xcb, 0x00, 0x03, 0x12, 0x34, 0x56, 0x78, 0x04, b'd', b'o', b'n', b'e', 0, 0, 0,
        ];
        let RtcpRepr::Bye { ssrcs, reason } =
            RtcpPacket::new_checked(&bye).unwrap().repr().unwrap()
        else {
            panic!()
        };
        assert_eq!(ssrcs, &[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(reason, Some(&b"done"[..]));
        let app = [
            0x83, 0xcc, 0x00, 0x03, 0, 0, 0, 9, b'A', b'B', b'C', b'D', 1, 2, 3, 4,
        ];
        let RtcpRepr::App {
            subtype,
            ssrc,
            name,
            data,
        } = RtcpPacket::new_checked(&app).unwrap().repr().unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (subtype, ssrc, &name, data),
            (3, 9, b"ABCD", &[1u8, 2, 3, 4][..])
        );
    }

    #[test]
    fn parses_xr_voip_metrics_block() {
        // Hand-built per RFC 3611 §4.7: XR header, sender SSRC, BT=7 block (length 8).
        let mut x: heapless::Vec<u8, 48> = heapless::Vec::new();
        x.extend_from_slice(&[0x80, 0xcf, 0x00, 0x0a, 0x11, 0x22, 0x33, 0x44])
            .unwrap();
        x.extend_from_slice(&[7, 0, 0, 8, 0xaa, 0xbb, 0xcc, 0xdd])
            .unwrap();
        x.extend_from_slice(&[
            13, 0, 64, 2, // loss 5 %, discard 0, burst/gap density
            0x00, 0x78, 0x07, 0xd0, // burst 120 ms, gap 2000 ms
            0x00, 0x2a, 0x00, 0x50, // RTT 42 ms, end system delay 80 ms
            0xe2, 0xba, 127, 127, // signal -30, noise -70 dBm0, RERL/Gmin n/a
            80, 127, 40, 41, // R 80, ext R n/a, MOS-LQ 4.0, MOS-CQ 4.1
            0, 0, 0x00, 0x3c, // rx config, reserved, JB nominal 60 ms
            0x00, 0x78, 0x00, 0xc8, // JB max 120, abs max 200
        ])
        .unwrap();
        let p = RtcpPacket::new_checked(&x).unwrap();
        let RtcpRepr::ExtendedReport { ssrc, blocks } = p.repr().unwrap() else {
            panic!()
        };
        assert_eq!(ssrc, 0x1122_3344);
        let m = blocks.voip_metrics().unwrap();
        assert_eq!(m.ssrc, 0xaabb_ccdd);
        assert!((m.loss_ratio() - 13.0 / 256.0).abs() < 1e-12);
        assert_eq!((m.burst_duration, m.gap_duration), (120, 2000));
        assert_eq!(m.round_trip_ms(), Some(42));
        assert_eq!(m.end_system_delay, 80);
        assert_eq!((m.signal_dbm0(), m.noise_dbm0()), (Some(-30), Some(-70)));
        assert_eq!((m.r(), m.ext_r_factor), (Some(80), 127));
        assert_eq!((m.mos_lq(), m.mos_cq()), (Some(4.0), Some(4.1)));
        assert_eq!((m.jb_nominal, m.jb_maximum, m.jb_abs_max), (60, 120, 200));
    }

    #[test]
    fn ntp_middle_bits_of_unix_time() {
        // 2005-01-14 17:58:11.5 UTC: NTP seconds 0xc59286b3 → low 16 bits 0x86b3.
        let us = 1_105_725_491_500_000;
        assert_eq!(ntp_middle32(us), 0x86b3_8000);
    }

    /// Every prefix of the real compounds above with each byte in turn set to 0x00 and
    /// 0xff: whatever `new_checked` accepts parses without a panic.
    #[test]
    fn corrupted_and_cut_compounds_never_panic() {
        for base in [SR_SDES, RR_SDES, SR0_SDES] {
            let base = hex(base);
            for n in 0..=base.len() {
                for at in 0..n.max(1) {
                    for v in [0x00, 0xff] {
                        let mut b = base[..n].to_vec();
                        if let Some(x) = b.get_mut(at) {
                            *x = v;
                        }
                        for p in Compound::new(&b).flatten() {
                            let _ = (p.ssrc(), p.body());
                            match p.repr() {
                                Ok(RtcpRepr::SenderReport { blocks, .. })
                                | Ok(RtcpRepr::ReceiverReport { blocks, .. }) => {
                                    let _ = blocks.count();
                                }
                                Ok(RtcpRepr::SourceDescription(sdes)) => {
                                    let _ = sdes.items().count();
                                }
                                Ok(RtcpRepr::ExtendedReport { blocks, .. }) => {
                                    let _ = blocks.voip_metrics();
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    }
}
