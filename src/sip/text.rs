//! Byte-string helpers shared by the SIP and SDP parsers. SIP text is ASCII
//! framing around opaque octets, so everything here works on `&[u8]`.

/// Linear whitespace, including the CR/LF left inside folded header values.
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_lws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_lws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// RFC 3261 `token` characters (header names, methods, parameter names).
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN.get(usize::from(b)).copied().unwrap_or(false)
}

/// RFC 3261 `token` bytes, by value: checked for every byte of every header name.
// Evaluated at compile time: an index out of range fails the build, not a packet.
#[allow(clippy::indexing_slicing)]
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

pub(crate) fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

pub(crate) fn find(s: &[u8], b: u8) -> Option<usize> {
    memchr::memchr(b, s)
}

/// `s.split(|&b| b == b'\n')`, by `memchr`.
pub(crate) fn split_lines(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    core::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// First occurrence of `needle` (an empty needle is found at 0).
pub(crate) fn find_sub(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Parses an unsigned decimal with no sign or spaces; `None` on overflow.
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(v)
}

/// Index of the first `sep` that is not inside a quoted string or `<...>`.
/// Quoted strings honour backslash escapes (RFC 3261 quoted-pair). `sep` is neither `"`,
/// `<`, `>` nor `\`. Jumps between the bytes that matter (`memchr`): it runs over every
/// Via, From, To and parameter list of every message.
pub(crate) fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut i = 0;
    let mut in_angle = false;
    loop {
        let rest = s.get(i..)?;
        let at = i + if in_angle {
            memchr::memchr2(b'"', b'>', rest)?
        } else {
            memchr::memchr3(sep, b'"', b'<', rest)?
        };
        match s.get(at)? {
            b'"' => i = after_quoted(s, at + 1)?,
            b'<' => {
                in_angle = true;
                i = at + 1;
            }
            b'>' => {
                in_angle = false;
                i = at + 1;
            }
            _ => return Some(at),
        }
    }
}

/// The index after the `"` that closes a quoted string whose contents start at `from`;
/// `None` if it never closes.
fn after_quoted(s: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let rest = s.get(from..)?;
        let at = from + memchr::memchr2(b'\\', b'"', rest)?;
        if *s.get(at)? == b'"' {
            return Some(at + 1);
        }
        from = at + 2; // a quoted-pair: the escaped byte is skipped
    }
}

/// Splits `s` on unquoted `sep`, trimming each piece and skipping empty ones.
pub(crate) struct SplitUnquoted<'a> {
    rest: Option<&'a [u8]>,
    sep: u8,
}

impl<'a> SplitUnquoted<'a> {
    pub(crate) fn new(s: &'a [u8], sep: u8) -> Self {
        SplitUnquoted { rest: Some(s), sep }
    }
}

impl<'a> Iterator for SplitUnquoted<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let s = self.rest?;
            let piece = match find_unquoted(s, self.sep) {
                Some(i) => {
                    self.rest = s.get(i + 1..);
                    s.get(..i).unwrap_or_default()
                }
                None => {
                    self.rest = None;
                    s
                }
            };
            let piece = trim(piece);
            if !piece.is_empty() {
                return Some(piece);
            }
        }
    }
}

/// Looks up `name` (case-insensitive) in a `;`-separated parameter list such as
/// `;tag=abc;lr`. A parameter without `=` yields an empty value.
pub(crate) fn param<'a>(params: &'a [u8], name: &str) -> Option<&'a [u8]> {
    SplitUnquoted::new(params, b';').find_map(|p| {
        let (k, v) = match find(p, b'=') {
            Some(i) => (p.get(..i)?, p.get(i + 1..)?),
            None => (p, &[][..]),
        };
        trim(k)
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| trim(v))
    })
}

/// Strips one pair of surrounding double quotes, if present.
pub(crate) fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-by-byte scanner `find_unquoted` replaced, as the reference.
    fn find_unquoted_bytewise(s: &[u8], sep: u8) -> Option<usize> {
        let (mut in_quote, mut in_angle, mut escaped) = (false, false, false);
        for (i, &b) in s.iter().enumerate() {
            if in_quote {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quote = false;
                }
                continue;
            }
            match b {
                b'"' => in_quote = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                _ if b == sep && !in_angle => return Some(i),
                _ => {}
            }
        }
        None
    }

    #[test]
    fn find_unquoted_agrees_with_a_byte_by_byte_scan_on_every_short_string() {
        // Every string of up to 7 bytes over the bytes that matter, both separators.
        let alphabet = b"a,;\"<>\\";
        let mut checked = 0;
        for len in 0..=7u32 {
            for n in 0..alphabet.len().pow(len) {
                let (mut v, mut n) = (Vec::new(), n);
                for _ in 0..len {
                    v.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                for sep in [b',', b';'] {
                    assert_eq!(
                        find_unquoted(&v, sep),
                        find_unquoted_bytewise(&v, sep),
                        "{:?} sep {}",
                        String::from_utf8_lossy(&v),
                        sep as char
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1_000_000, "{checked}");
    }

    #[test]
    fn split_lines_splits_as_slice_split_does() {
        for s in [
            "",
            "\n",
            "a",
            "a\n",
            "\na",
            "a\n\nb\r\n",
            "v=0\r\no=x\r\n\r\n",
        ] {
            let want: Vec<&[u8]> = s.as_bytes().split(|&b| b == b'\n').collect();
            assert_eq!(split_lines(s.as_bytes()).collect::<Vec<_>>(), want, "{s:?}");
        }
    }

    #[test]
    fn token_bytes_are_rfc_3261s() {
        let token: Vec<u8> = (0..=255u8).filter(|&b| is_token(b)).collect();
        let mut want: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        want.extend(b"-.!%*_+`'~");
        want.sort();
        assert_eq!(token, want);
    }
}
