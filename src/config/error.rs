//! Configuration errors as one line each: `FILE:LINE: section.key = value: what is wrong;
//! what is allowed`. Lines come from toml's spans (the parse error's own span, or the
//! span of the offending key found in a spanned [`DeTable`]); secrets are never echoed.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use toml::de::{DeTable, DeValue};

/// Keys whose values are never printed.
const SECRET_KEYS: [&str; 2] = ["mqtt.password", "privacy.secret"];

#[derive(Debug)]
pub enum ConfigError {
    /// A file the configuration needs cannot be read.
    Io {
        path: PathBuf,
        what: String,
        err: std::io::Error,
    },
    /// An error located in the file: `line` is 1-based when known.
    Located {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A value that breaks a rule (before it is located in a file, e.g. from a flag).
    Invalid {
        key: String,
        value: String,
        wrong: String,
        allowed: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, what, err } => {
                write!(f, "cannot read {what} {}: {err}", path.display())
            }
            ConfigError::Located {
                path,
                line: Some(l),
                message,
            } => write!(f, "{}:{l}: {message}", path.display()),
            ConfigError::Located {
                path,
                line: None,
                message,
            } => write!(f, "{}: {message}", path.display()),
            ConfigError::Invalid {
                key,
                value,
                wrong,
                allowed,
            } => write!(f, "{key} = {value}: {wrong}; {allowed}"),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn invalid(
    key: &str,
    value: impl fmt::Display,
    wrong: impl Into<String>,
    allowed: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        wrong: wrong.into(),
        allowed: allowed.into(),
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// One line of toml/serde wording (its first line, without the source excerpt).
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// The dotted key path whose key or value span holds `at` (deepest match), with the
/// span of its value.
fn key_at(table: &DeTable<'_>, at: usize, prefix: &str) -> Option<(String, Range<usize>)> {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        // A `[section]`'s span is its header only: look inside every table.
        if let DeValue::Table(t) = v.get_ref()
            && let Some(deeper) = key_at(t, at, &path)
        {
            return Some(deeper);
        }
        if k.span().contains(&at) || v.span().contains(&at) {
            return Some((path, v.span()));
        }
    }
    None
}

/// The span of the key `path` (dotted) or, if absent, of its nearest present section.
fn find_key(table: &DeTable<'_>, path: &str) -> Option<Range<usize>> {
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == head)?;
    if rest.is_empty() {
        return Some(k.span());
    }
    match v.get_ref() {
        DeValue::Table(t) => find_key(t, rest).or(Some(k.span())),
        _ => Some(k.span()),
    }
}

/// The value as written in the file, or `<redacted>` for a secret.
fn shown(key: &str, text: &str, span: Range<usize>) -> String {
    if SECRET_KEYS.contains(&key) {
        return "<redacted>".into();
    }
    text.get(span).unwrap_or("?").trim().to_string()
}

/// Words for serde's type names.
fn kind(serde: &str) -> String {
    let s = serde.trim();
    let w = match s {
        "u8" | "u16" | "u32" | "u64" | "i64" | "usize" => "an integer",
        "a boolean" | "bool" => "true or false",
        "a string" => "a quoted string",
        "a sequence" => "an array",
        _ => return s.to_string(),
    };
    w.to_string()
}

/// Backtick-quoted words of a serde message, in order.
fn ticked(msg: &str) -> Vec<&str> {
    msg.split('`').skip(1).step_by(2).collect()
}

/// A toml parse or deserialization error as one located line.
pub(super) fn from_toml(e: &toml::de::Error, text: &str, path: PathBuf) -> ConfigError {
    let msg = first_line(e.message());
    let Some(span) = e.span() else {
        return ConfigError::Located {
            path,
            line: None,
            message: msg.to_string(),
        };
    };
    let line = Some(line_of(text, span.start));
    let located = |message: String| ConfigError::Located {
        path: path.clone(),
        line,
        message,
    };
    // Syntax errors come before any table exists.
    let Ok(doc) = DeTable::parse(text) else {
        return located(format!("{msg} (TOML syntax)"));
    };
    let doc = doc.into_inner();
    let Some((key, vspan)) = key_at(&doc, span.start, "") else {
        return located(msg.to_string());
    };
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let words = ticked(rest);
        let field = words.first().copied().unwrap_or("?");
        let allowed = &words[1.min(words.len())..];
        let section = key.rsplit_once('.').map_or("", |(s, _)| s);
        let best = allowed
            .iter()
            .map(|a| (strsim::jaro_winkler(field, a), *a))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, a)| a);
        let section_words = if section.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{section}]")
        };
        let what = match best {
            Some(b) => format!("unknown key {section_words}; did you mean `{b}`?"),
            None => format!(
                "unknown key {section_words}; allowed: {}",
                allowed.join(", ")
            ),
        };
        let value = shown(&key, text, vspan);
        if value.starts_with('[') {
            // A whole `[section]` whose name is wrong.
            let what = what.replace("key", "section");
            return located(format!("[{key}]: {what}"));
        }
        return located(format!("{key} = {value}: {what}"));
    }
    let value = shown(&key, text, vspan);
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let words = ticked(rest);
        let allowed: Vec<String> = words.iter().skip(1).map(|w| format!("\"{w}\"")).collect();
        return located(format!(
            "{key} = {value}: unknown value; allowed: {}",
            allowed.join(", ")
        ));
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (got, want) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let got = got.split([' ', '`']).next().unwrap_or(got);
        return located(format!(
            "{key} = {value}: wrong type ({got}); expected {}",
            kind(want)
        ));
    }
    if let Some(rest) = msg.strip_prefix("invalid value: ") {
        let (_, want) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let max = match want.trim() {
            "u8" => "255",
            "u16" => "65535",
            "u32" => "4294967295",
            _ => "",
        };
        return located(if max.is_empty() {
            format!("{key} = {value}: invalid; expected {}", kind(want))
        } else {
            format!("{key} = {value}: out of range; allowed at most {max}")
        });
    }
    located(format!("{key} = {value}: {msg}"))
}

/// A rule broken in the file, located at its key (or its section when the key is missing).
pub(super) fn locate(e: ConfigError, text: &str, path: PathBuf) -> ConfigError {
    // A file named by a key (`mqtt.ca_file`, `privacy.secret_file`, …) that cannot be read.
    if let ConfigError::Io {
        path: ref file,
        ref what,
        ref err,
    } = e
        && what.contains('.')
    {
        let doc = DeTable::parse(text).ok();
        let line = doc
            .as_ref()
            .and_then(|d| find_key(d.get_ref(), what))
            .map(|s| line_of(text, s.start));
        return ConfigError::Located {
            path,
            line,
            message: format!(
                "{what} = {:?}: cannot read it: {err}; a readable file (relative paths are from the configuration's folder)",
                file.display().to_string()
            ),
        };
    }
    let ConfigError::Invalid { ref key, .. } = e else {
        return e;
    };
    let line = DeTable::parse(text)
        .ok()
        .and_then(|d| find_key(d.get_ref(), key))
        .map(|s| line_of(text, s.start));
    ConfigError::Located {
        path,
        line,
        message: e.to_string(),
    }
}

/// A rule broken by a value a command-line flag set: named by the flag (and its key).
/// `Err` gives the error back when no flag set that key.
pub(super) fn by_flag(e: ConfigError, flags: &[(&str, &str)]) -> Result<ConfigError, ConfigError> {
    match e {
        ConfigError::Invalid {
            key,
            value,
            wrong,
            allowed,
        } => match flags.iter().find(|(k, _)| *k == key) {
            Some((_, flag)) => Ok(ConfigError::Invalid {
                key: format!("{flag} ({key})"),
                value,
                wrong,
                allowed,
            }),
            None => Err(ConfigError::Invalid {
                key,
                value,
                wrong,
                allowed,
            }),
        },
        other => Err(other),
    }
}
