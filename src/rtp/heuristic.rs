//! Finding RTP without signalling: a per-datagram plausibility test and a small
//! per-candidate confirmation rule (same SSRC, sequence numbers moving forward by small
//! steps) so that one random datagram starting with `0x80` never creates a stream.

use super::packet::RtpPacket;

/// Ports that carry other UDP protocols whose first byte can look like RTP version 2.
const NOT_RTP_PORTS: [u16; 14] = [
    53, 67, 68, 123, 137, 138, 161, 162, 500, 514, 1900, 3478, 4500, 5353,
];
/// SIP's own ports (signalling, never media).
const SIP_PORTS: [u16; 2] = [5060, 5061];

/// Payload types a real RTP sender uses: RFC 3551's assigned static types (0..=34) and
/// the dynamic range (96..=127). 35..=63 are unassigned and 64..=95 are reserved so RTCP
/// (second byte 192..=223) can be told apart (RFC 5761 §4), so none appear in practice.
pub fn plausible_pt(pt: u8) -> bool {
    pt <= 34 || (96..=127).contains(&pt)
}

/// Whether a UDP payload between these ports is plausibly an RTP packet. Text protocols
/// (SIP, SSDP) already fail the version check (ASCII letters start with bits `01`), as do
/// STUN/TURN channel data, DTLS and QUIC short headers (`00`/`01`).
pub fn looks_like_rtp(payload: &[u8], src_port: u16, dst_port: u16) -> bool {
    let ports_ok = |p: u16| !NOT_RTP_PORTS.contains(&p) && !SIP_PORTS.contains(&p);
    // Media uses unprivileged ports (RFC 3550 §11 suggests 1024..=65535).
    if !ports_ok(src_port) || !ports_ok(dst_port) || (src_port < 1024 && dst_port < 1024) {
        return false;
    }
    let Ok(p) = RtpPacket::new_checked(payload) else {
        return false;
    };
    // Empty payloads are NAT keep-alives (RFC 6263), not worth a stream.
    plausible_pt(p.payload_type()) && !p.payload().is_empty()
}

/// [`looks_like_rtp`] without the port rules, for a packet carried inside another
/// protocol (TURN, RFC 4571 over TCP) whose ports are the carrier's.
pub fn looks_like_carried_rtp(packet: &[u8]) -> bool {
    RtpPacket::new_checked(packet)
        .is_ok_and(|p| plausible_pt(p.payload_type()) && !p.payload().is_empty())
}

/// Outcome of one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not yet enough consistent packets.
    Pending,
    /// This packet completes the required run: treat the flow as RTP.
    Confirmed,
}

/// Per-candidate state the tracker keeps for an unconfirmed flow (5-tuple).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    ssrc: u32,
    last_seq: u16,
    last_ts: u32,
    run: u8,
    needed: u8,
}

impl Candidate {
    /// Largest forward step in sequence numbers still counted as "consecutive-ish"
    /// (a few lost packets between observations).
    pub const MAX_SEQ_STEP: u16 = 10;
    /// Largest forward step in timestamp: 10 s at 8 kHz, 1 s at 90 kHz... generous, it only
    /// has to exclude random 32-bit values.
    pub const MAX_TS_STEP: u32 = 90_000;

    /// Starts from the first packet; `needed` packets in total confirm (≥ 2).
    pub fn new(first: &RtpPacket, needed: u8) -> Self {
        Candidate {
            ssrc: first.ssrc(),
            last_seq: first.sequence_number(),
            last_ts: first.timestamp(),
            run: 1,
            needed: needed.max(2),
        }
    }

    /// Feeds the next packet of the flow. A packet that breaks the run (other SSRC,
    /// backwards or far sequence/timestamp) starts a new run from itself. A repeat of the
    /// last packet (same SSRC, sequence step 0: a duplicating mirror, A,A,B,B,…) neither
    /// advances nor breaks the run.
    pub fn observe(&mut self, p: &RtpPacket) -> Verdict {
        let seq_step = p.sequence_number().wrapping_sub(self.last_seq);
        if seq_step == 0 && p.ssrc() == self.ssrc {
            return self.verdict();
        }
        let ts_step = p.timestamp().wrapping_sub(self.last_ts);
        let fits = p.ssrc() == self.ssrc
            && (1..=Self::MAX_SEQ_STEP).contains(&seq_step)
            && ts_step <= Self::MAX_TS_STEP;
        if fits {
            self.run = self.run.saturating_add(1);
        } else {
            self.ssrc = p.ssrc();
            self.run = 1;
        }
        self.last_seq = p.sequence_number();
        self.last_ts = p.timestamp();
        self.verdict()
    }

    fn verdict(&self) -> Verdict {
        if self.run >= self.needed {
            Verdict::Confirmed
        } else {
            Verdict::Pending
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sipp_g711a_rtp_only.pcap first packet header + 4 payload bytes, ports 5000 → 2006.
    const PCMA: [u8; 16] = [
        0x80, 0x88, 0xe6, 0xfd, 0x00, 0x00, 0x00, 0xf0, 0xde, 0xe0, 0xee, 0x8f, 0xd5, 0xd5, 0xd5,
        0xd5,
    ];

    fn pkt(seq: u16, ts: u32, ssrc: u32) -> [u8; 16] {
        let mut b = PCMA;
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b[4..8].copy_from_slice(&ts.to_be_bytes());
        b[8..12].copy_from_slice(&ssrc.to_be_bytes());
        b
    }

    #[test]
    fn accepts_real_g711_packet() {
        assert!(looks_like_rtp(&PCMA, 5000, 2006));
    }

    #[test]
    fn rejects_sip_stun_dns_and_rtcp() {
        assert!(!looks_like_rtp(
            b"INVITE sip:bob@example.com SIP/2.0\r\n",
            5062,
            5062
        ));
        assert!(!looks_like_rtp(
            b"SIP/2.0 200 OK\r\nVia: x\r\n",
            5062,
            40000
        ));
        // STUN binding request: type 0x0001, magic cookie.
        let stun = [
            0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        assert!(!looks_like_rtp(&stun, 40000, 3478));
        assert!(!looks_like_rtp(&stun, 40000, 40002));
        // DNS response whose ID happens to start with 0x80: rejected by port.
        assert!(!looks_like_rtp(&PCMA, 53, 40000));
        // RTCP RR (second byte 201) is not RTP.
        let mut rr = PCMA;
        rr[1] = 201;
        assert!(!looks_like_rtp(&rr, 40001, 40003));
        // Privileged ports on both sides.
        assert!(!looks_like_rtp(&PCMA, 800, 900));
    }

    #[test]
    fn rejects_unassigned_pt_and_empty_payload() {
        let mut b = PCMA;
        b[1] = 50;
        assert!(!looks_like_rtp(&b, 40000, 40002));
        assert!(!looks_like_rtp(&PCMA[..12], 40000, 40002));
        assert!(plausible_pt(0) && plausible_pt(34) && plausible_pt(101) && !plausible_pt(72));
    }

    #[test]
    fn confirms_after_consecutive_packets_of_one_ssrc() {
        let a = pkt(100, 0, 7);
        let mut c = Candidate::new(&RtpPacket::new_checked(&a).unwrap(), 3);
        let b = pkt(101, 160, 7);
        assert_eq!(
            c.observe(&RtpPacket::new_checked(&b).unwrap()),
            Verdict::Pending
        );
        let d = pkt(103, 480, 7); // one lost in between: still consecutive-ish
        assert_eq!(
            c.observe(&RtpPacket::new_checked(&d).unwrap()),
            Verdict::Confirmed
        );
    }

    #[test]
    fn random_headers_restart_the_run() {
        let a = pkt(100, 0, 7);
        let mut c = Candidate::new(&RtpPacket::new_checked(&a).unwrap(), 3);
        for (seq, ts, ssrc) in [(101, 160, 8), (5000, 320, 8), (5001, 123_456_789, 8)] {
            let b = pkt(seq, ts, ssrc);
            assert_eq!(
                c.observe(&RtpPacket::new_checked(&b).unwrap()),
                Verdict::Pending
            );
        }
        assert_eq!(c.ssrc(), 8);
    }

    #[test]
    fn repeated_packets_neither_advance_nor_break_the_run() {
        let mut c = Candidate::new(&RtpPacket::new_checked(&pkt(100, 0, 7)).unwrap(), 3);
        let mut verdicts = Vec::new();
        for (seq, ts) in [(100, 0), (101, 160), (101, 160), (102, 320)] {
            let b = pkt(seq, ts, 7);
            verdicts.push(c.observe(&RtpPacket::new_checked(&b).unwrap()));
        }
        use Verdict::*;
        assert_eq!(verdicts, [Pending, Pending, Pending, Confirmed]);
    }
}
