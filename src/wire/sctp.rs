//! SCTP (RFC 9260) as far as SIP over SCTP (RFC 4168) needs: the common header, the chunk
//! list, DATA chunks, and a bounded reassembly of fragmented DATA.
//!
//! SIP sends one message per DATA chunk (RFC 4168 §5.1), so an unfragmented chunk is one
//! message and needs no stream state. A message larger than the path MTU arrives as
//! fragments (B, middle, E flags) with consecutive TSNs; those are joined in a few fixed
//! buffers, and what does not fit (too many at once, too large, a missing piece) is dropped
//! and counted, never grown.

use super::DecodeError;
use super::tcp_stream::FlowKey;
use crate::view::read;
use byteorder::{ByteOrder, NetworkEndian};
use serde::{Deserialize, Serialize};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const VERIFICATION_TAG: Range<usize> = 4..8;
    pub const CHECKSUM: Range<usize> = 8..12;
    pub const CHUNKS: usize = 12;
    // Chunk header, relative to the chunk.
    pub const CHUNK_TYPE: usize = 0;
    pub const CHUNK_FLAGS: usize = 1;
    pub const CHUNK_LENGTH: Range<usize> = 2..4;
    // DATA chunk fields.
    pub const TSN: Range<usize> = 4..8;
    pub const STREAM_ID: Range<usize> = 8..10;
    pub const STREAM_SEQ: Range<usize> = 10..12;
    pub const PPID: Range<usize> = 12..16;
    pub const DATA: usize = 16;
}

/// Chunk type of DATA.
pub const CHUNK_DATA: u8 = 0;
/// DATA flags: last fragment, first fragment, unordered.
pub const FLAG_E: u8 = 0x01;
pub const FLAG_B: u8 = 0x02;
pub const FLAG_U: u8 = 0x04;
/// The IP protocol number.
pub const PROTO_SCTP: u8 = 132;
/// Bytes of the common header before the chunk list.
pub const HEADER_LEN: usize = field::CHUNKS;
/// SIP's registered port (RFC 4168 §4 uses 5060 for SCTP too).
pub const SIP_PORT: u16 = 5060;

/// CRC32c (Castagnoli), SCTP's checksum (RFC 9260 Appendix A).
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// An SCTP packet: common header and chunks.
#[derive(Debug, Clone, Copy)]
pub struct SctpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(SctpPacket, min_len field::CHUNKS);

impl<T: AsRef<[u8]>> SctpPacket<T> {
    pub fn src_port(&self) -> u16 {
        read::be16(self.buffer.as_ref(), field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        read::be16(self.buffer.as_ref(), field::DST_PORT)
    }
    pub fn verification_tag(&self) -> u32 {
        read::be32(self.buffer.as_ref(), field::VERIFICATION_TAG)
    }
    /// The CRC32c as sent (stored little-endian, RFC 9260 Appendix A).
    pub fn checksum(&self) -> u32 {
        u32::from_le_bytes(
            read::slice(self.buffer.as_ref(), field::CHECKSUM)
                .try_into()
                .unwrap_or_default(),
        )
    }
    /// The chunk list after the common header.
    pub fn chunks(&self) -> &[u8] {
        self.buffer.as_ref().get(field::CHUNKS..).unwrap_or(&[])
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    /// Writes the common header (the chunks must already be in place) and its CRC32c.
    pub fn emit(&mut self, src_port: u16, dst_port: u16, verification_tag: u32) {
        let b = self.buffer.as_mut();
        NetworkEndian::write_u16(&mut b[field::SRC_PORT], src_port);
        NetworkEndian::write_u16(&mut b[field::DST_PORT], dst_port);
        NetworkEndian::write_u32(&mut b[field::VERIFICATION_TAG], verification_tag);
        b[field::CHECKSUM].fill(0);
        let crc = CRC32C.checksum(b);
        b[field::CHECKSUM].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The chunks of a chunk list, each with its padding cut off; stops at the first chunk whose
/// length is impossible (counted by the caller as malformed via [`Chunks::malformed`]).
pub struct Chunks<'a> {
    rest: &'a [u8],
    pub malformed: bool,
}

impl<'a> Chunks<'a> {
    pub fn new(list: &'a [u8]) -> Chunks<'a> {
        Chunks {
            rest: list,
            malformed: false,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let len = match self.rest.get(field::CHUNK_LENGTH) {
            Some(l) => usize::from(NetworkEndian::read_u16(l)),
            None => 0,
        };
        if len < 4 || len > self.rest.len() {
            self.malformed = true;
            self.rest = &[];
            return None;
        }
        let chunk = self.rest.get(..len).unwrap_or_default();
        self.rest = self.rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some(chunk)
    }
}

/// A DATA chunk (without padding).
#[derive(Debug, Clone, Copy)]
pub struct DataChunk<T: AsRef<[u8]>> {
    buffer: T,
}

super::checked_view!(DataChunk, DecodeError);

impl<T: AsRef<[u8]>> DataChunk<T> {
    /// A DATA chunk whose length field covers at least its header and lies in the buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let b = self.buffer.as_ref();
        if b.len() < field::DATA {
            return Err(DecodeError::Truncated);
        }
        if read::u8_at(b, field::CHUNK_TYPE) != CHUNK_DATA {
            return Err(DecodeError::NotIpTransport);
        }
        let len = usize::from(read::be16(b, field::CHUNK_LENGTH));
        if len < field::DATA {
            return Err(DecodeError::Malformed);
        }
        if len > b.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(())
    }
    pub fn flags(&self) -> u8 {
        read::u8_at(self.buffer.as_ref(), field::CHUNK_FLAGS)
    }
    pub fn tsn(&self) -> u32 {
        read::be32(self.buffer.as_ref(), field::TSN)
    }
    pub fn stream_id(&self) -> u16 {
        read::be16(self.buffer.as_ref(), field::STREAM_ID)
    }
    pub fn stream_seq(&self) -> u16 {
        read::be16(self.buffer.as_ref(), field::STREAM_SEQ)
    }
    pub fn ppid(&self) -> u32 {
        read::be32(self.buffer.as_ref(), field::PPID)
    }
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let len = usize::from(read::be16(b, field::CHUNK_LENGTH));
        read::slice(b, field::DATA..len)
    }
}

/// What one DATA chunk is: its header fields; [`DataRepr::emit`] writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRepr {
    pub flags: u8,
    pub tsn: u32,
    pub stream_id: u16,
    pub stream_seq: u16,
    pub ppid: u32,
}

impl DataRepr {
    /// Bytes the chunk takes with `payload`, padding included.
    pub fn buffer_len(payload: usize) -> usize {
        (field::DATA + payload).next_multiple_of(4)
    }

    #[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
    /// Writes the chunk and `payload` (and zero padding) at the start of `buf`.
    pub fn emit(&self, payload: &[u8], buf: &mut [u8]) {
        let len = field::DATA + payload.len();
        buf[field::CHUNK_TYPE] = CHUNK_DATA;
        buf[field::CHUNK_FLAGS] = self.flags;
        NetworkEndian::write_u16(&mut buf[field::CHUNK_LENGTH], len as u16);
        NetworkEndian::write_u32(&mut buf[field::TSN], self.tsn);
        NetworkEndian::write_u16(&mut buf[field::STREAM_ID], self.stream_id);
        NetworkEndian::write_u16(&mut buf[field::STREAM_SEQ], self.stream_seq);
        NetworkEndian::write_u32(&mut buf[field::PPID], self.ppid);
        buf[field::DATA..len].copy_from_slice(payload);
        buf[len..Self::buffer_len(payload.len())].fill(0);
    }
}

/// SCTP counters (in `summary` under `sctp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SctpCounters {
    pub packets: u64,
    pub data_chunks: u64,
    /// Chunks other than DATA (INIT, SACK, HEARTBEAT, ...): nothing to read.
    pub control_chunks: u64,
    /// Chunk lists or DATA chunks that do not parse.
    pub malformed: u64,
    /// Fragments (DATA without both B and E) seen, and messages rebuilt from them.
    pub fragments: u64,
    pub reassembled: u64,
    /// Fragments dropped: no buffer free, message over [`SCTP_MESSAGE_MAX`], a piece missing.
    pub fragments_dropped: u64,
    /// Messages that were not SIP on other ports than 5060 (another SCTP user: M3UA,
    /// Diameter, ...).
    pub not_sip: u64,
}

/// Fragmented messages rebuilt at once.
pub const SCTP_SLOTS: usize = 4;
/// Largest message rebuilt from fragments (a SIP message with a big body fits).
pub const SCTP_MESSAGE_MAX: usize = 16 * 1024;

struct Slot {
    key: Option<(FlowKey, u16)>,
    next_tsn: u32,
    len: usize,
    /// When it was started (a counter, for evicting the oldest).
    age: u64,
}

/// The bounded fragment buffers; every byte allocated at construction.
pub struct SctpReassembler {
    slots: [Slot; SCTP_SLOTS],
    bufs: Box<[u8]>,
    clock: u64,
}

impl Default for SctpReassembler {
    fn default() -> Self {
        SctpReassembler::new()
    }
}

impl SctpReassembler {
    pub fn new() -> SctpReassembler {
        SctpReassembler {
            slots: core::array::from_fn(|_| Slot {
                key: None,
                next_tsn: 0,
                len: 0,
                age: 0,
            }),
            bufs: vec![0; SCTP_SLOTS * SCTP_MESSAGE_MAX].into_boxed_slice(),
            clock: 0,
        }
    }

    pub const fn memory_bytes() -> usize {
        SCTP_SLOTS * SCTP_MESSAGE_MAX
    }

    /// Every user message of the packet's DATA chunks, whole or rebuilt, in order, with
    /// its PPID, to `f`, which says whether it was SIP (else counted `not_sip`). `flow` is
    /// the packet's addresses and ports.
    pub fn packet(
        &mut self,
        flow: FlowKey,
        chunks: &[u8],
        c: &mut SctpCounters,
        mut f: impl FnMut(u32, &[u8]) -> bool,
    ) {
        c.packets += 1;
        let mut it = Chunks::new(chunks);
        for chunk in it.by_ref() {
            let Ok(d) = DataChunk::new_checked(chunk) else {
                if chunk.first() == Some(&CHUNK_DATA) {
                    c.malformed += 1;
                } else {
                    c.control_chunks += 1;
                }
                continue;
            };
            c.data_chunks += 1;
            let flags = d.flags() & (FLAG_B | FLAG_E);
            if flags == FLAG_B | FLAG_E {
                c.not_sip += u64::from(!f(d.ppid(), d.payload()));
                continue;
            }
            c.fragments += 1;
            if let Some(msg_slot) = self.fragment(flow, &d, flags, c)
                && let Some(s) = self.slots.get_mut(msg_slot)
            {
                let at = msg_slot * SCTP_MESSAGE_MAX;
                c.reassembled += 1;
                let msg = self.bufs.get(at..at + s.len).unwrap_or_default();
                c.not_sip += u64::from(!f(d.ppid(), msg));
                s.key = None;
            }
        }
        c.malformed += u64::from(it.malformed);
    }

    /// Stores one fragment; returns the slot of a message it completed.
    fn fragment(
        &mut self,
        flow: FlowKey,
        d: &DataChunk<&[u8]>,
        flags: u8,
        c: &mut SctpCounters,
    ) -> Option<usize> {
        let key = Some((flow, d.stream_id()));
        let payload = d.payload();
        let i = if flags & FLAG_B != 0 {
            self.clock += 1;
            // A new message on this stream replaces an unfinished one; else a free slot,
            // else the oldest.
            let i = self
                .slots
                .iter()
                .position(|s| s.key == key)
                .or_else(|| self.slots.iter().position(|s| s.key.is_none()))
                .unwrap_or_else(|| {
                    let oldest = self.slots.iter().enumerate().min_by_key(|(_, s)| s.age);
                    oldest.map_or(0, |(i, _)| i)
                });
            // `i` indexes `slots` (found in it, or 0 of a non-empty array).
            let s = self.slots.get_mut(i)?;
            if s.key.is_some() {
                c.fragments_dropped += 1; // the unfinished message it held
            }
            *s = Slot {
                key,
                next_tsn: d.tsn(),
                len: 0,
                age: self.clock,
            };
            i
        } else {
            match self
                .slots
                .iter()
                .position(|s| s.key == key && s.next_tsn == d.tsn())
            {
                Some(i) => i,
                None => {
                    c.fragments_dropped += 1;
                    return None;
                }
            }
        };
        let s = self.slots.get_mut(i)?;
        let at = i * SCTP_MESSAGE_MAX + s.len;
        // Over the message limit (the slot's buffer ends there): drop the message.
        let dst = (s.len + payload.len() <= SCTP_MESSAGE_MAX)
            .then(|| self.bufs.get_mut(at..at + payload.len()))
            .flatten();
        let Some(dst) = dst else {
            s.key = None;
            c.fragments_dropped += 1;
            return None;
        };
        dst.copy_from_slice(payload);
        s.len += payload.len();
        s.next_tsn = d.tsn().wrapping_add(1);
        (flags & FLAG_E != 0).then_some(i)
    }
}

#[allow(clippy::indexing_slicing)] // writing: the caller sized the buffer; never packet data
/// Builds one SCTP packet of DATA chunks (for the fixture and tests).
pub fn emit_packet(
    src_port: u16,
    dst_port: u16,
    vtag: u32,
    chunks: &[(DataRepr, &[u8])],
) -> Vec<u8> {
    let len = field::CHUNKS
        + chunks
            .iter()
            .map(|(_, p)| DataRepr::buffer_len(p.len()))
            .sum::<usize>();
    let mut buf = vec![0u8; len];
    let mut at = field::CHUNKS;
    for (r, p) in chunks {
        r.emit(p, &mut buf[at..]);
        at += DataRepr::buffer_len(p.len());
    }
    SctpPacket::new_unchecked(&mut buf[..]).emit(src_port, dst_port, vtag);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sip_sctp.pcap, frame 3 (100 Giving a try): the SCTP common header and DATA chunk
    /// header, then the start of the SIP text. Ports 5060 → 5060, one unfragmented DATA
    /// chunk (flags 0x03: B, E) of 0x17d bytes, TSN 0xd9853388, SSN 0x9f8e, PPID 0.
    const FRAME3_HEAD: [u8; 32] = [
        0x13, 0xc4, 0x13, 0xc4, 0xf7, 0xab, 0x41, 0xd3, 0xb8, 0xf8, 0x33, 0xa9, 0x00, 0x03, 0x01,
        0x7d, 0xd9, 0x85, 0x33, 0x88, 0x00, 0x00, 0x9f, 0x8e, 0x00, 0x00, 0x00, 0x00, b'S', b'I',
        b'P', b'/',
    ];

    fn flow() -> FlowKey {
        FlowKey {
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
        }
    }

    #[test]
    fn parses_the_common_header_and_a_data_chunk_header() {
        let p = SctpPacket::new_checked(&FRAME3_HEAD[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (5060, 5060));
        assert_eq!(p.verification_tag(), 0xf7ab_41d3);
        let chunk = p.chunks();
        // The chunk says 0x17d bytes; only its head is here: truncated, not a panic.
        assert_eq!(
            DataChunk::new_checked(chunk).unwrap_err(),
            DecodeError::Truncated
        );
        let mut whole = chunk.to_vec();
        whole.resize(0x17d, b' ');
        let d = DataChunk::new_checked(&whole[..]).unwrap();
        assert_eq!(d.flags(), FLAG_B | FLAG_E);
        assert_eq!(
            (d.tsn(), d.stream_id(), d.stream_seq(), d.ppid()),
            (0xd985_3388, 0, 0x9f8e, 0)
        );
        assert!(d.payload().starts_with(b"SIP/"));
        assert!(SctpPacket::new_checked(&FRAME3_HEAD[..11]).is_err());
    }

    #[test]
    fn emit_round_trips_with_a_valid_crc32c() {
        let r = DataRepr {
            flags: FLAG_B | FLAG_E,
            tsn: 7,
            stream_id: 1,
            stream_seq: 2,
            ppid: 0,
        };
        let pkt = emit_packet(5060, 5060, 0xdead_beef, &[(r, b"OPTIONS")]);
        assert_eq!(pkt.len(), 12 + 24);
        let p = SctpPacket::new_checked(&pkt[..]).unwrap();
        assert_eq!(p.verification_tag(), 0xdead_beef);
        let mut zeroed = pkt.clone();
        zeroed[8..12].fill(0);
        assert_eq!(p.checksum(), CRC32C.checksum(&zeroed));
        let chunks: Vec<&[u8]> = Chunks::new(p.chunks()).collect();
        assert_eq!(chunks.len(), 1);
        let d = DataChunk::new_checked(chunks[0]).unwrap();
        assert_eq!((d.tsn(), d.stream_id(), d.stream_seq()), (7, 1, 2));
        assert_eq!(d.payload(), b"OPTIONS");
    }

    #[test]
    fn crc32c_matches_rfc_3720_s_test_vector() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(CRC32C.checksum(&[0u8; 32]), 0x8a91_36aa);
    }

    fn frag(flags: u8, tsn: u32, payload: &[u8]) -> Vec<u8> {
        let r = DataRepr {
            flags,
            tsn,
            stream_id: 0,
            stream_seq: 0,
            ppid: 0,
        };
        emit_packet(5060, 5060, 1, &[(r, payload)])
    }

    fn run(r: &mut SctpReassembler, c: &mut SctpCounters, pkt: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        r.packet(flow(), &pkt[12..], c, |_, m| {
            out.push(m.to_vec());
            true
        });
        out
    }

    #[test]
    fn fragments_with_consecutive_tsns_are_joined() {
        let (mut r, mut c) = (SctpReassembler::new(), SctpCounters::default());
        assert!(run(&mut r, &mut c, &frag(FLAG_B, 10, b"INVITE ")).is_empty());
        assert!(run(&mut r, &mut c, &frag(0, 11, b"sip:a ")).is_empty());
        let m = run(&mut r, &mut c, &frag(FLAG_E, 12, b"SIP/2.0"));
        assert_eq!(m, [b"INVITE sip:a SIP/2.0".to_vec()]);
        assert_eq!((c.fragments, c.reassembled, c.fragments_dropped), (3, 1, 0));
    }

    #[test]
    fn a_missing_piece_or_an_oversize_message_is_dropped_and_counted() {
        let (mut r, mut c) = (SctpReassembler::new(), SctpCounters::default());
        run(&mut r, &mut c, &frag(FLAG_B, 10, b"INVITE "));
        assert!(run(&mut r, &mut c, &frag(FLAG_E, 12, b"SIP/2.0")).is_empty());
        assert_eq!(c.fragments_dropped, 1);
        let big = vec![b'x'; 9000];
        run(&mut r, &mut c, &frag(FLAG_B, 20, &big));
        assert!(run(&mut r, &mut c, &frag(FLAG_E, 21, &big)).is_empty());
        // The orphan end, the unfinished INVITE the new message replaced, the oversize one.
        assert_eq!(c.fragments_dropped, 3);
    }

    #[test]
    fn bundled_chunks_and_a_bad_chunk_length_do_not_panic() {
        let r1 = DataRepr {
            flags: FLAG_B | FLAG_E,
            tsn: 1,
            stream_id: 0,
            stream_seq: 0,
            ppid: 0,
        };
        let r2 = DataRepr { tsn: 2, ..r1 };
        let pkt = emit_packet(5060, 5060, 1, &[(r1, b"A"), (r2, b"BB")]);
        let (mut r, mut c) = (SctpReassembler::new(), SctpCounters::default());
        assert_eq!(run(&mut r, &mut c, &pkt), [b"A".to_vec(), b"BB".to_vec()]);
        let mut bad = pkt.clone();
        bad[12 + 2..12 + 4].copy_from_slice(&0xffffu16.to_be_bytes());
        assert!(run(&mut r, &mut c, &bad).is_empty());
        assert_eq!(c.malformed, 1);
    }
}
