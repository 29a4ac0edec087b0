//! `voipsensor decode [FILE]`: payloads (postcard or JSON) → JSON lines.
//!
//! Input framings, detected from the content:
//! * text: one payload per line in hex, as `mosquitto_sub -F %x` prints them, optionally
//!   preceded by the topic and a space (`mosquitto_sub -F '%t %x'`; the topic is then added
//!   as a `topic` field); lines that are JSON are passed through;
//! * binary starting with a 0 byte: frames of a 4-byte big-endian length and the payload;
//! * binary starting with the schema version byte: one raw payload (`mosquitto_sub -C 1 -N`).

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use voipsensor::publish::payload::{SCHEMA_VERSION, to_json_lines};

#[derive(clap::Args)]
pub struct Args {
    /// File to read; standard input when absent or "-".
    pub file: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let mut input = Vec::new();
    match a.file.as_deref() {
        Some(p) if p.as_os_str() != "-" => {
            input = std::fs::read(p)
                .with_context(|| format!("cannot read {}", p.display()))
                .map_err(super::exit::input)?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut input)
                .context("cannot read standard input")?;
        }
    }
    let mut out = std::io::stdout().lock();
    let mut bad = 0usize;
    for (n, item) in frames(&input)?.into_iter().enumerate() {
        match item.and_then(|(topic, bytes)| lines(topic, &bytes)) {
            Ok(ls) => {
                for l in ls {
                    writeln!(out, "{l}")?;
                }
            }
            Err(e) => {
                bad += 1;
                eprintln!("voipsensor decode: payload {}: {e}", n + 1);
            }
        }
    }
    Ok(if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

type Frame = Result<(Option<String>, Vec<u8>)>;

fn lines(topic: Option<String>, bytes: &[u8]) -> Result<Vec<Value>> {
    let mut ls = to_json_lines(bytes)?;
    if let Some(t) = topic {
        for l in &mut ls {
            if let Value::Object(m) = l {
                m.insert("topic".into(), Value::String(t.clone()));
            }
        }
    }
    Ok(ls)
}

/// Splits the input into payloads per the framing rules above.
pub fn frames(input: &[u8]) -> Result<Vec<Frame>> {
    match input.first() {
        None => Ok(Vec::new()),
        Some(0) => {
            let mut out = Vec::new();
            let mut rest = input;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    bail!("truncated frame header ({} byte(s) left)", rest.len());
                }
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let body = rest
                    .get(4..4 + len)
                    .ok_or_else(|| anyhow!("frame of {len} bytes is truncated"))?;
                out.push(Ok((None, body.to_vec())));
                rest = &rest[4 + len..];
            }
            Ok(out)
        }
        Some(&SCHEMA_VERSION) => Ok(vec![Ok((None, input.to_vec()))]),
        Some(_) => {
            let text = std::str::from_utf8(input)
                .context("input is neither text (hex lines, JSON lines) nor framed binary")?;
            Ok(text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(hex_line)
                .collect())
        }
    }
}

fn hex_line(line: &str) -> Frame {
    let line = line.trim();
    if line.starts_with('{') || line.starts_with('[') {
        return Ok((None, line.as_bytes().to_vec()));
    }
    let (topic, hex) = match line.rsplit_once(' ') {
        Some((t, h)) => (Some(t.trim().to_string()), h),
        None => (None, line),
    };
    if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("not a hex payload line: {:?}", truncate(line));
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()?;
    Ok((topic, bytes))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
