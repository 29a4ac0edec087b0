//! Classic pcap files (tcpdump's format) read in blocks: the file is mapped into memory
//! and records are handed out as slices of the mapping; where it cannot be mapped, one
//! `read` fills a buffer of a few hundred KiB at a time instead.
//!
//! Why mapped: `read` copies every byte from the page cache, ~12 % of `replay`'s CPU on a
//! 1,000-call capture. The mapping is let go behind the reader ([`RELEASE_EVERY`]), so
//! resident memory holds a few MiB of it, not the file. As for any mapped reader, a file
//! truncated by another process while it is read ends the process (`SIGBUS`); captures
//! are read after they are written.
//!
//! Why not libpcap for these too: it reads every record with two `fread` calls through
//! stdio's 4 KiB buffer, copying each byte twice more than needed and streaming it through
//! the cache the tracker's tables live in; on a 1,000-call capture that was ~15 % of
//! `replay`'s CPU. This reader only takes what it can hand out exactly as libpcap would
//! (version 2.4, a link type the decoder knows, a sane snap length, every record whole and
//! within it); [`Blocks::open`] says `None` for any other file and [`Blocks::next_record`] stops
//! at any other record, and the caller goes on with libpcap from there
//! (`capture::file`), so a replay's results never depend on which reader ran.

// File bytes are untrusted input: no panic on them (same lints as the parsers).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::fs::File;
use std::io::{ErrorKind, Read};

/// Byte ranges of the 24-byte file header and the 16-byte record header.
mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION_MAJOR: Range<usize> = 4..6;
    pub const VERSION_MINOR: Range<usize> = 6..8;
    pub const SNAPLEN: Range<usize> = 16..20;
    pub const LINKTYPE: Range<usize> = 20..24;
    pub const FILE_HEADER_LEN: usize = 24;

    pub const TS_SEC: Range<usize> = 0..4;
    pub const TS_FRAC: Range<usize> = 4..8;
    pub const CAPLEN: Range<usize> = 8..12;
    pub const LEN: Range<usize> = 12..16;
    pub const RECORD_HEADER_LEN: usize = 16;
}

/// libpcap's largest snap length for the link types below (`MAXIMUM_SNAPLEN`).
const MAX_SNAPLEN: u32 = 262_144;
/// Bytes read ahead beyond one whole record: big enough that `read` calls are few, small
/// enough that the buffer stays in the L2 cache beside the tables.
const READ_AHEAD: usize = 256 << 10;

/// The 24-byte file header of a classic pcap file.
struct FileHeader<'a> {
    buffer: &'a [u8],
    big_endian: bool,
}

impl<'a> FileHeader<'a> {
    /// The header with its byte order and timestamp unit, when `buffer` starts with one.
    fn new_checked(buffer: &'a [u8]) -> Option<(FileHeader<'a>, bool)> {
        let magic: [u8; 4] = buffer.get(field::MAGIC)?.try_into().ok()?;
        let (big_endian, nanos) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => return None,
        };
        buffer.get(..field::FILE_HEADER_LEN)?;
        Some((FileHeader { buffer, big_endian }, nanos))
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        let b: [u8; 2] = self
            .buffer
            .get(r)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 2]);
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
        u32_in(self.buffer, r, self.big_endian)
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

fn u32_in(buf: &[u8], r: core::ops::Range<usize>, big_endian: bool) -> u32 {
    let b: [u8; 4] = buf.get(r).and_then(|s| s.try_into().ok()).unwrap_or([0; 4]);
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// libpcap's DLT for a file's LINKTYPE, for the link types the decoder knows; `None` for
/// the rest (libpcap then reads the file, and says whether it knows the type).
fn dlt_of(linktype: u32) -> Option<i32> {
    Some(match linktype {
        // LINKTYPE_RAW is DLT_RAW, 12 on Linux.
        101 => 12,
        0 | 1 | 108 | 113 | 228 | 229 | 276 => linktype as i32,
        _ => return None,
    })
}

/// One record as libpcap hands it out (with microsecond timestamps); its bytes are
/// [`Blocks::data`] until the next call to [`Blocks::next_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ts_sec: i64,
    pub ts_usec: i64,
    pub orig_len: u32,
    data: core::ops::Range<usize>,
}

/// Why [`Blocks::next_record`] gave no record.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The file ended after a whole record.
    End,
    /// A record this reader does not take as it stands (truncated, longer than the snap
    /// length) or a read error: libpcap goes on from this record.
    HandOver,
}

/// Mapped bytes already handed out are dropped from this process's page tables (not from
/// the page cache) in steps of this many: resident memory stays flat however big the file.
const RELEASE_EVERY: usize = 256 << 10;

/// The bytes records are sliced from.
enum Buf {
    /// The whole file, mapped: `released..` still mapped in.
    Mapped { map: memmap2::Mmap, released: usize },
    /// A buffer `read` fills (a file that cannot be mapped).
    Read(Box<[u8]>),
}

impl Buf {
    fn bytes(&self) -> &[u8] {
        match self {
            Buf::Mapped { map, .. } => map,
            Buf::Read(b) => b,
        }
    }
}

/// A classic pcap file being read in blocks.
pub struct Blocks {
    file: File,
    buf: Buf,
    /// `buf[start..end]` is read and not yet handed out.
    start: usize,
    end: usize,
    eof: bool,
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
    dlt: i32,
    /// Records handed out so far (where libpcap must go on from after a hand-over).
    pub records: u64,
}

impl Blocks {
    /// `Some` when `file` is a classic pcap file this reader takes whole-heartedly (read from
    /// its start); `None` for anything else, the file position then unspecified.
    pub fn open(file: File) -> Option<Blocks> {
        Self::open_as(file, true)
    }

    /// [`Blocks::open`], mapping the file if `map` and the kernel lets it, else reading it.
    fn open_as(mut file: File, map: bool) -> Option<Blocks> {
        let mut head = [0u8; field::FILE_HEADER_LEN];
        file.read_exact(&mut head).ok()?;
        let (h, nanos) = FileHeader::new_checked(&head)?;
        let snaplen = h.u32_at(field::SNAPLEN);
        // libpcap replaces a snap length of 0 or above its maximum: leave those to it.
        if h.u16_at(field::VERSION_MAJOR) != 2
            || h.u16_at(field::VERSION_MINOR) != 4
            || !(1..=MAX_SNAPLEN).contains(&snaplen)
        {
            return None;
        }
        let dlt = dlt_of(h.u32_at(field::LINKTYPE))?;
        // SAFETY: the mapping is read only and private; what it shows can only change if
        // another process rewrites the file meanwhile (see the module's note).
        let mapped = map.then(|| unsafe { memmap2::Mmap::map(&file) });
        let mapped = mapped.and_then(Result::ok).filter(|m| {
            // Sequential: read ahead further and drop pages sooner.
            m.len() >= field::FILE_HEADER_LEN && m.advise(memmap2::Advice::Sequential).is_ok()
        });
        let (buf, start, end, eof) = match mapped {
            Some(map) => {
                let end = map.len();
                let buf = Buf::Mapped { map, released: 0 };
                (buf, field::FILE_HEADER_LEN, end, true)
            }
            None => {
                let cap = field::RECORD_HEADER_LEN + snaplen as usize + READ_AHEAD;
                (Buf::Read(vec![0u8; cap].into_boxed_slice()), 0, 0, false)
            }
        };
        Some(Blocks {
            file,
            buf,
            start,
            end,
            eof,
            big_endian: h.big_endian,
            nanos,
            snaplen,
            dlt,
            records: 0,
        })
    }

    /// libpcap's DLT for the file's link type.
    pub fn dlt(&self) -> i32 {
        self.dlt
    }

    /// Bytes buffered and not yet handed out: at least `want`, unless the file ends first.
    fn fill(&mut self, want: usize) -> Result<usize, ()> {
        while self.end - self.start < want && !self.eof {
            let Buf::Read(buf) = &mut self.buf else {
                // A mapping is all there from the start (`eof`).
                return Err(());
            };
            if self.end == buf.len() {
                // Move what is left to the front; the buffer holds a whole record and more.
                buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let Some(room) = buf.get_mut(self.end..) else {
                return Err(());
            };
            match self.file.read(room) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
        Ok(self.end - self.start)
    }

    /// The next record, or why there is none.
    pub fn next_record(&mut self) -> Result<Record, Stop> {
        let hl = field::RECORD_HEADER_LEN;
        match self.fill(hl) {
            Ok(0) => return Err(Stop::End),
            Ok(n) if n >= hl => {}
            _ => return Err(Stop::HandOver),
        }
        self.release_behind();
        let at = self.start;
        let rec = self.buf.bytes().get(at..at + hl).ok_or(Stop::HandOver)?;
        let be = self.big_endian;
        let caplen = u32_in(rec, field::CAPLEN, be);
        if caplen > self.snaplen {
            return Err(Stop::HandOver);
        }
        let whole = hl + caplen as usize;
        // `fill` may move the buffered bytes to the front: read the header after it.
        if self.fill(whole).map_err(|_| Stop::HandOver)? < whole {
            return Err(Stop::HandOver);
        }
        let at = self.start;
        let rec = self.buf.bytes().get(at..at + whole).ok_or(Stop::HandOver)?;
        // As libpcap: 32-bit signed fields; nanoseconds cut to microseconds.
        let ts_sec = i64::from(u32_in(rec, field::TS_SEC, be) as i32);
        let frac = i64::from(u32_in(rec, field::TS_FRAC, be) as i32);
        let ts_usec = if self.nanos { frac / 1000 } else { frac };
        let orig_len = u32_in(rec, field::LEN, be);
        self.start += whole;
        self.records += 1;
        Ok(Record {
            ts_sec,
            ts_usec,
            orig_len,
            data: at + hl..at + whole,
        })
    }

    /// The bytes of `r`, the record [`Blocks::next_record`] returned last.
    pub fn data(&self, r: &Record) -> &[u8] {
        self.buf.bytes().get(r.data.clone()).unwrap_or(&[])
    }

    /// Lets go of the mapped pages before the record about to be read, every
    /// [`RELEASE_EVERY`] bytes (whole pages; the page cache keeps them).
    fn release_behind(&mut self) {
        let Buf::Mapped { map, released } = &mut self.buf else {
            return;
        };
        if self.start - *released < RELEASE_EVERY {
            return;
        }
        let upto = self.start - self.start % page_size();
        // SAFETY: `released..upto` lies before every byte still to be handed out, and no
        // slice of it outlives the `next_record` call that handed it out (`data` borrows
        // `self`); a private read-only file mapping reads the file again if touched.
        // Refused (not Linux): the pages stay mapped, as with any mapped file; not retried.
        let _ = unsafe {
            map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                *released,
                upto - *released,
            )
        };
        *released = upto;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(magic: [u8; 4], snaplen: u32, linktype: u32) -> Vec<u8> {
        let mut h = magic.to_vec();
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&linktype.to_le_bytes());
        h
    }

    fn record(sec: u32, frac: u32, data: &[u8], len: u32) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [sec, frac, data.len() as u32, len] {
            r.extend_from_slice(&v.to_le_bytes());
        }
        r.extend_from_slice(data);
        r
    }

    fn file(tag: &str, bytes: &[u8]) -> File {
        let p = std::env::temp_dir().join(format!("vs-blocks-{tag}-{}", std::process::id()));
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        let f = File::open(&p).unwrap();
        let _ = std::fs::remove_file(&p);
        f
    }

    /// The file's reader both ways: mapped, and read into a buffer.
    fn both(tag: &str, bytes: &[u8]) -> [Blocks; 2] {
        let mapped = Blocks::open(file(tag, bytes)).unwrap();
        assert!(
            matches!(mapped.buf, Buf::Mapped { .. }),
            "a regular file is mapped"
        );
        let read = Blocks::open_as(file(tag, bytes), false).unwrap();
        assert!(matches!(read.buf, Buf::Read(_)));
        [mapped, read]
    }

    const LE_US: [u8; 4] = [0xd4, 0xc3, 0xb2, 0xa1];
    const LE_NS: [u8; 4] = [0x4d, 0x3c, 0xb2, 0xa1];

    #[test]
    fn records_come_out_whole_with_libpcap_s_timestamps() {
        let mut b = header(LE_NS, 65535, 1);
        b.extend(record(1_700_000_000, 123_456_789, &[1, 2, 3], 60));
        b.extend(record(1_700_000_001, 999, &[4; 100], 100));
        for mut r in both("ns", &b) {
            assert_eq!(r.dlt(), 1);
            let a = r.next_record().unwrap();
            assert_eq!(
                (a.ts_sec, a.ts_usec, r.data(&a), a.orig_len),
                (1_700_000_000, 123_456, &[1u8, 2, 3][..], 60)
            );
            let a = r.next_record().unwrap();
            assert_eq!((a.ts_usec, r.data(&a).len()), (0, 100));
            assert_eq!(r.next_record(), Err(Stop::End));
            assert_eq!(r.records, 2);
        }
    }

    #[test]
    fn records_straddling_many_reads_come_out_whole() {
        // Far more than one buffer: every record crosses a refill at some point.
        let mut b = header(LE_US, 2000, 113);
        let n = 3 * READ_AHEAD / 1000;
        for i in 0..n {
            b.extend(record(i as u32, 7, &vec![i as u8; 1 + i % 1999], 2000));
        }
        for mut r in both("many", &b) {
            for i in 0..n {
                let a = r.next_record().unwrap();
                assert_eq!(a.ts_sec, i as i64);
                assert_eq!(r.data(&a).len(), 1 + i % 1999);
                assert!(r.data(&a).iter().all(|&x| x == i as u8));
            }
            assert_eq!(r.next_record(), Err(Stop::End));
        }
    }

    #[test]
    fn the_mapping_is_let_go_behind_the_reader() {
        let mut b = header(LE_US, 2000, 1);
        let n = 3 * RELEASE_EVERY / 1000;
        for i in 0..n {
            b.extend(record(i as u32, 0, &[i as u8; 1000], 1000));
        }
        let [mut r, _] = both("release", &b);
        let released = |r: &Blocks| match r.buf {
            Buf::Mapped { released, .. } => released,
            Buf::Read(_) => unreachable!(),
        };
        let mut last = 0;
        for i in 0..n {
            let a = r.next_record().unwrap();
            // Never past a byte not yet handed out, never more than a step behind.
            let rel = released(&r);
            assert!(rel <= a.data.start && rel >= last);
            assert!(a.data.start - rel <= RELEASE_EVERY + 1016 + page_size());
            assert_eq!(r.data(&a), &[i as u8; 1000][..]);
            last = rel;
        }
        assert!(last >= 2 * RELEASE_EVERY, "released {last}");
    }

    #[test]
    fn a_truncated_or_oversized_record_is_handed_over_after_the_good_ones() {
        let mut b = header(LE_US, 100, 1);
        b.extend(record(1, 0, &[0; 50], 50));
        let mut cut = b.clone();
        cut.extend(&record(2, 0, &[0; 50], 50)[..30]);
        for mut r in both("cut", &cut) {
            assert!(r.next_record().is_ok());
            assert_eq!(r.next_record(), Err(Stop::HandOver));
            assert_eq!(r.records, 1);
        }
        let mut big = b.clone();
        big.extend(record(2, 0, &[0; 101], 101));
        for mut r in both("big", &big) {
            assert!(r.next_record().is_ok());
            assert_eq!(r.next_record(), Err(Stop::HandOver));
        }
        let mut half_header = b;
        half_header.extend([0u8; 7]);
        for mut r in both("half", &half_header) {
            assert!(r.next_record().is_ok());
            assert_eq!(r.next_record(), Err(Stop::HandOver));
        }
    }

    #[test]
    fn other_files_are_left_to_libpcap() {
        // pcapng, another version, an unknown link type, snap length 0.
        let ng = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a];
        assert!(Blocks::open(file("ng", &[&ng[..], &[0; 20]].concat())).is_none());
        let mut v = header(LE_US, 100, 1);
        v[6] = 3;
        assert!(Blocks::open(file("v23", &v)).is_none());
        assert!(Blocks::open(file("lt", &header(LE_US, 100, 147))).is_none());
        assert!(Blocks::open(file("snap0", &header(LE_US, 0, 1))).is_none());
        assert!(Blocks::open(file("short", &LE_US)).is_none());
        // LINKTYPE_RAW is libpcap's DLT_RAW.
        assert_eq!(
            Blocks::open(file("raw", &header(LE_US, 100, 101)))
                .unwrap()
                .dlt(),
            12
        );
    }
}
