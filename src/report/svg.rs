//! Text helpers shared by the ladder, the charts and the page: escaping and number format.

/// Escapes text for HTML and SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A figure with at most `dp` decimals and no trailing zeros (`1.5`, `50`, `0.125`):
/// short, and the same bytes for the same value on every run.
pub fn num(v: f64, dp: usize) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{v:.dp$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn numbers_are_short_and_stable() {
        assert_eq!(num(1.5, 3), "1.5");
        assert_eq!(num(50.0, 2), "50");
        assert_eq!(num(-0.0001, 2), "0");
        assert_eq!(num(4.40999, 2), "4.41");
    }
}
