//! The spool: what was still queued when the sensor stopped with the broker down, written
//! to RAM-backed storage (default `/run/voipsensor/spool`, a tmpfs) so a supervised
//! restart sends it first; bounded in bytes, with what did not fit counted. A SD card is
//! never written per event: the spool is written once, at a clean stop.
//!
//! Format (one file, `outbox`): `VSSPOOL1`, then per message `leaf, class, qos, retain`
//! (one byte each), the payload length (u32 LE) and the payload. The status is never
//! spooled: the next start publishes its own.

use crate::publish::outbox::{Class, OutMsg};
use crate::publish::topic::Leaf;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"VSSPOOL1";
const HEADER: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    /// The spool folder (created if missing).
    pub dir: PathBuf,
    /// At most this many bytes are written.
    pub max_bytes: u64,
}

impl SpoolSettings {
    pub fn file(&self) -> PathBuf {
        self.dir.join("outbox")
    }
}

/// What [`encode`] kept and left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spooled {
    pub calls: u64,
    pub metrics: u64,
    pub lost_calls: u64,
    pub lost_metrics: u64,
}

fn leaf_code(l: Leaf) -> u8 {
    match l {
        Leaf::Status => 0,
        Leaf::Calls => 1,
        Leaf::Rtp => 2,
        Leaf::Health => 3,
        Leaf::Kpi => 4,
    }
}

fn leaf_of(b: u8) -> Option<Leaf> {
    Some(match b {
        0 => Leaf::Status,
        1 => Leaf::Calls,
        2 => Leaf::Rtp,
        3 => Leaf::Health,
        4 => Leaf::Kpi,
        _ => return None,
    })
}

fn class_of(b: u8) -> Option<Class> {
    Some(match b {
        0 => Class::Call,
        1 => Class::Metric,
        2 => Class::Health,
        _ => return None,
    })
}

fn class_code(c: Class) -> u8 {
    match c {
        Class::Call => 0,
        Class::Metric => 1,
        Class::Health => 2,
    }
}

/// The spool bytes for `msgs` (oldest first) within `max_bytes`: metrics are left out
/// first, then the oldest call events, as the outbox would drop them.
pub fn encode(msgs: &[OutMsg], max_bytes: u64) -> (Vec<u8>, Spooled) {
    let size = |m: &OutMsg| 8 + m.payload.len() as u64;
    let kept: Vec<&OutMsg> = msgs.iter().filter(|m| m.leaf != Leaf::Status).collect();
    let mut keep = vec![true; kept.len()];
    let mut total = HEADER as u64 + kept.iter().map(|m| size(m)).sum::<u64>();
    for pass in [Class::Metric, Class::Health, Class::Call] {
        for (i, m) in kept.iter().enumerate() {
            if total <= max_bytes {
                break;
            }
            if m.class == pass && keep[i] {
                keep[i] = false;
                total -= size(m);
            }
        }
    }
    let mut out = Vec::with_capacity(total as usize);
    let mut st = Spooled::default();
    if total > max_bytes {
        // Not even the header fits: nothing is written.
        keep.iter_mut().for_each(|k| *k = false);
    } else {
        out.extend_from_slice(MAGIC);
    }
    for (m, k) in kept.iter().zip(&keep) {
        let is_call = m.class == Class::Call;
        match (k, is_call) {
            (true, true) => st.calls += 1,
            (true, false) => st.metrics += 1,
            (false, true) => st.lost_calls += 1,
            (false, false) => st.lost_metrics += 1,
        }
        if *k {
            out.extend_from_slice(&[
                leaf_code(m.leaf),
                class_code(m.class),
                m.qos,
                u8::from(m.retain),
            ]);
            out.extend_from_slice(&(m.payload.len() as u32).to_le_bytes());
            out.extend_from_slice(&m.payload);
        }
    }
    (out, st)
}

/// The messages of a spool file, oldest first; a truncated or foreign file yields what
/// could be read before the damage, and whether there was damage.
pub fn decode(b: &[u8]) -> (Vec<OutMsg>, bool) {
    let mut out = Vec::new();
    let Some(mut rest) = b.strip_prefix(MAGIC.as_slice()) else {
        return (out, !b.is_empty());
    };
    while !rest.is_empty() {
        let Some((head, tail)) = rest.split_first_chunk::<8>() else {
            return (out, true);
        };
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let (Some(leaf), Some(class), Some(payload)) =
            (leaf_of(head[0]), class_of(head[1]), tail.get(..len))
        else {
            return (out, true);
        };
        let mut m = OutMsg::new(leaf, class, head[2].min(1), payload.to_vec());
        m.retain = head[3] != 0;
        out.push(m);
        rest = &tail[len..];
    }
    (out, false)
}

/// Writes the spool (replacing any older one, through a temporary file and a rename so a
/// crash never leaves half a file under the real name).
pub fn write(s: &SpoolSettings, msgs: &[OutMsg]) -> std::io::Result<Spooled> {
    let (bytes, st) = encode(msgs, s.max_bytes);
    std::fs::create_dir_all(&s.dir)?;
    let tmp = s.dir.join("outbox.tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, s.file())?;
    Ok(st)
}

/// Reads and removes the spool left by the previous run (none: empty).
pub fn take(s: &SpoolSettings) -> std::io::Result<(Vec<OutMsg>, bool)> {
    let f = s.file();
    let bytes = match std::fs::read(&f) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(e),
    };
    std::fs::remove_file(&f)?;
    Ok(decode(&bytes))
}

/// The default spool folder: RAM-backed on every systemd system (and the image).
pub fn default_dir() -> &'static Path {
    Path::new("/run/voipsensor/spool")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(leaf: Leaf, class: Class, b: u8, n: usize) -> OutMsg {
        OutMsg::new(leaf, class, u8::from(class == Class::Call), vec![b; n])
    }

    #[test]
    fn spooled_messages_read_back_equal_and_the_status_is_left_out() {
        let mut status = msg(Leaf::Status, Class::Call, 9, 4);
        status.retain = true;
        let msgs = vec![
            msg(Leaf::Calls, Class::Call, 1, 10),
            status,
            msg(Leaf::Rtp, Class::Metric, 2, 20),
            msg(Leaf::Health, Class::Health, 3, 5),
        ];
        let (bytes, st) = encode(&msgs, 1 << 20);
        assert_eq!(&bytes[..8], b"VSSPOOL1");
        assert_eq!(
            st,
            Spooled {
                calls: 1,
                metrics: 2,
                ..Spooled::default()
            }
        );
        let (back, damaged) = decode(&bytes);
        assert!(!damaged);
        let want: Vec<OutMsg> = msgs
            .into_iter()
            .filter(|m| m.leaf != Leaf::Status)
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn over_the_cap_metrics_go_first_then_the_oldest_calls_and_all_is_counted() {
        let msgs = vec![
            msg(Leaf::Calls, Class::Call, 1, 10),
            msg(Leaf::Rtp, Class::Metric, 2, 10),
            msg(Leaf::Calls, Class::Call, 3, 10),
            msg(Leaf::Calls, Class::Call, 4, 10),
        ];
        // Header 8 + two calls of 8 + 10.
        let (bytes, st) = encode(&msgs, 8 + 2 * 18);
        assert_eq!(bytes.len(), 8 + 2 * 18);
        assert_eq!((st.calls, st.lost_calls, st.lost_metrics), (2, 1, 1));
        let (back, _) = decode(&bytes);
        assert_eq!(
            back.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
            [3, 4]
        );
    }

    #[test]
    fn a_truncated_or_foreign_spool_yields_what_precedes_the_damage() {
        let msgs = vec![
            msg(Leaf::Calls, Class::Call, 1, 10),
            msg(Leaf::Calls, Class::Call, 2, 10),
        ];
        let (bytes, _) = encode(&msgs, 1 << 20);
        let (back, damaged) = decode(&bytes[..bytes.len() - 3]);
        assert!(damaged);
        assert_eq!(back.len(), 1);
        assert_eq!(decode(b"GIF89a..."), (Vec::new(), true));
        let mut bad = bytes.clone();
        bad[8] = 77; // no such leaf
        assert_eq!(decode(&bad), (Vec::new(), true));
    }

    #[test]
    fn a_spool_is_taken_once() {
        let dir = std::env::temp_dir().join(format!("vs-spool-unit-{}", std::process::id()));
        let s = SpoolSettings {
            dir: dir.clone(),
            max_bytes: 1 << 20,
        };
        let st = write(&s, &[msg(Leaf::Calls, Class::Call, 1, 3)]).unwrap();
        assert_eq!(st.calls, 1);
        assert_eq!(take(&s).unwrap().0.len(), 1);
        assert_eq!(take(&s).unwrap().0.len(), 0, "removed once read");
        std::fs::remove_dir_all(dir).ok();
    }
}
