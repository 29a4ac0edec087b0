//! The constructors every view in smoltcp's shape has (`new_unchecked`, `new_checked`,
//! `into_inner`), written once for the parsers of every layer (`wire`, `rtp`).

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
