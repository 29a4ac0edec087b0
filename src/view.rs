//! The constructors every view in smoltcp's shape has (`new_unchecked`, `new_checked`,
//! `into_inner`), written once for the parsers of every layer (`wire`, `rtp`).
// No panic on packet data by construction: every index, unwrap and expect here is a
// checked one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

/// Constructors for `$view<T: AsRef<[u8]>> { buffer: T }`, whose own
/// `check_len(&self) -> Result<(), $err>` says whether every getter is in bounds.
macro_rules! checked_view {
    ($view:ident, $err:ty) => {
        impl<T: AsRef<[u8]>> $view<T> {
            /// Wraps `buffer` unchecked: for writing a header, never for reading packet data.
            pub const fn new_unchecked(buffer: T) -> Self {
                $view { buffer }
            }
            /// Wraps `buffer` once `check_len` accepts it; no getter can then panic.
            pub fn new_checked(buffer: T) -> ::core::result::Result<Self, $err> {
                let view = $view { buffer };
                view.check_len()?;
                Ok(view)
            }
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}
pub(crate) use checked_view;

/// Checked field reads for the views' getters: a view built by `new_checked` always has the
/// bytes, so the fallback (0) is never seen on packet data, yet nothing can index out of
/// bounds either (`clippy::indexing_slicing` is denied in the parsers).
pub(crate) mod read {
    use byteorder::{ByteOrder, NetworkEndian};
    use core::ops::Range;

    #[inline]
    pub fn u8_at(buf: &[u8], at: usize) -> u8 {
        buf.get(at).copied().unwrap_or(0)
    }
    #[inline]
    pub fn be16(buf: &[u8], r: Range<usize>) -> u16 {
        buf.get(r).map_or(0, NetworkEndian::read_u16)
    }
    #[inline]
    pub fn be32(buf: &[u8], r: Range<usize>) -> u32 {
        buf.get(r).map_or(0, NetworkEndian::read_u32)
    }
    #[inline]
    pub fn be64(buf: &[u8], r: Range<usize>) -> u64 {
        buf.get(r).map_or(0, NetworkEndian::read_u64)
    }
    /// `buf[r]`, empty when out of bounds.
    #[inline]
    pub fn slice(buf: &[u8], r: Range<usize>) -> &[u8] {
        buf.get(r).unwrap_or(&[])
    }
}
