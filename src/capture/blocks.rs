//! Classic pcap files (tcpdump's format) read in blocks: a window of a few hundred KiB of
//! the file is mapped into memory at a time and records are handed out as slices of it; where
//! the file cannot be mapped, one `read` fills a buffer of a few hundred KiB instead.
//!
//! Why mapped: `read` copies every byte from the page cache, ~12 % of `replay`'s CPU on a
//! 1,000-call capture. Why a window, not the whole file: the kernel maps a file's pages in
//! folios of up to 2 MiB, so a whole-file mapping holds 0.5–2.5 MiB resident, varying from
//! run to run; a window bounds it ([`MAP_WINDOW`]). As for any mapped reader, a file
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

/// Bytes of the file mapped at a time beyond one whole record: what the `read` buffer
/// holds, so resident memory is as before. Four `mmap` calls per MiB cost far less than the
/// copy they replace (1,000-call capture: system time 0.11-0.18 -> 0.05-0.10 s).
const MAP_WINDOW: usize = READ_AHEAD;

/// The bytes records are sliced from.
enum Buf {
    /// A window of the file from offset `at`, mapped.
    Mapped { map: memmap2::Mmap, at: u64 },
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
        let cap = field::RECORD_HEADER_LEN + snaplen as usize;
        let mut b = Blocks {
            file,
            buf: Buf::Read(Box::default()),
            start: 0,
            end: 0,
            eof: false,
            big_endian: h.big_endian,
            nanos,
            snaplen,
            dlt,
            records: 0,
        };
        let at = field::FILE_HEADER_LEN as u64;
        match map.then(|| b.map_window(at, b.window_len())).flatten() {
            Some(m) => b.buf = m,
            None => b.buf = Buf::Read(vec![0u8; cap + READ_AHEAD].into_boxed_slice()),
        }
        Some(b)
    }

    /// Maps up to `len` bytes of the file from offset `at` (fewer where it ends) as the
    /// buffer, all of it handed out from `start` on; `None` when the kernel will not map it
    /// (a pipe, some network filesystems) or there is nothing left.
    fn map_window(&mut self, at: u64, len: usize) -> Option<Buf> {
        let size = self.file.metadata().ok()?.len();
        let len = usize::try_from(size.checked_sub(at)?).ok()?.min(len);
        if len == 0 {
            // Nothing to map: the file ended at a record's boundary.
            self.eof = true;
            return None;
        }
        // SAFETY: read only; what it shows can only change if another process rewrites the
        // file meanwhile (see the module's note). The old window is unmapped when replaced,
        // after every slice of it was let go (`data` borrows `self`).
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(at)
                .len(len)
                .populate()
                .map(&self.file)
        }
        .ok()?;
        self.eof = at + len as u64 == size;
        (self.start, self.end) = (0, map.len());
        Some(Buf::Mapped { map, at })
    }

    /// Bytes mapped at a time: one whole record beyond [`MAP_WINDOW`], so a record that
    /// does not fit in what is left always fits in the next window.
    fn window_len(&self) -> usize {
        field::RECORD_HEADER_LEN + self.snaplen as usize + MAP_WINDOW
    }

    /// libpcap's DLT for the file's link type.
    pub fn dlt(&self) -> i32 {
        self.dlt
    }

    /// Bytes buffered and not yet handed out: at least `want`, unless the file ends first.
    #[inline]
    fn fill(&mut self, want: usize) -> Result<usize, ()> {
        let have = self.end - self.start;
        if have >= want || self.eof {
            return Ok(have);
        }
        self.refill(want)
    }

    /// [`Blocks::fill`] when the buffer needs a `read`.
    #[cold]
    fn refill(&mut self, want: usize) -> Result<usize, ()> {
        if let Buf::Mapped { at, .. } = self.buf {
            // The next window starts at the first byte not yet handed out.
            let len = self.window_len();
            // Unmapped first: never two windows resident at once. If the next one cannot
            // be mapped, libpcap goes on from the record not yet handed out.
            self.buf = Buf::Read(Box::default());
            let next = self.map_window(at + self.start as u64, len);
            if let Some(m) = next {
                self.buf = m;
            } else if !self.eof {
                return Err(());
            }
            return Ok(self.end - self.start);
        }
        while self.end - self.start < want && !self.eof {
            let Buf::Read(buf) = &mut self.buf else {
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
    fn records_straddling_many_reads_or_windows_come_out_whole() {
        // Far more than one buffer or window: every record crosses a refill or a remap at
        // some point; the file ends at a record's boundary.
        let mut b = header(LE_US, 2000, 113);
        let n = 3 * READ_AHEAD.max(MAP_WINDOW) / 400;
        for i in 0..n {
            b.extend(record(i as u32, 7, &vec![i as u8; 1 + i % 1999], 2000));
        }
        for mut r in both("many", &b) {
            let mut windows = std::collections::HashSet::new();
            for i in 0..n {
                let a = r.next_record().unwrap();
                assert_eq!(a.ts_sec, i as i64);
                assert_eq!(r.data(&a).len(), 1 + i % 1999);
                assert!(r.data(&a).iter().all(|&x| x == i as u8));
                if let Buf::Mapped { map, at } = &r.buf {
                    // Never more of the file mapped than a window and a record.
                    assert!(map.len() <= MAP_WINDOW + 2016);
                    windows.insert(*at);
                }
            }
            assert_eq!(r.next_record(), Err(Stop::End));
            let mapped = matches!(r.buf, Buf::Mapped { .. });
            assert!(!mapped || windows.len() >= 3, "{} windows", windows.len());
        }
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
