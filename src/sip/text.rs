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
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

pub(crate) fn find(s: &[u8], b: u8) -> Option<usize> {
    memchr::memchr(b, s)
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
/// Quoted strings honour backslash escapes (RFC 3261 quoted-pair).
pub(crate) fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut in_quote = false;
    let mut in_angle = false;
    let mut escaped = false;
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
