//! Pseudonymisation of caller, callee and Call-ID before anything leaves the sensor.
//!
//! * `mask`: every letter and digit except the last `keep_digits` of them becomes `*`
//!   (separators such as `+`, `@`, `.` stay, so the shape remains readable). Masked Call-IDs no
//!   longer identify a call uniquely: use `hash` where the NOC must correlate events.
//! * `hash`: HMAC-SHA-256 keyed with a per-deployment secret, first 16 bytes in hex, so the
//!   same number or Call-ID always gives the same token at one deployment, and nobody without
//!   the secret can test guesses (phone numbers are too few for a plain hash to hide them).

use crate::track::event::{CallId, Event, User, fill};
use ring::hmac;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    None,
    Mask,
    Hash,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::None => "off (numbers published as seen)",
            Mode::Mask => "mask",
            Mode::Hash => "hash (HMAC-SHA-256)",
        })
    }
}

/// The rule applied to every published event.
pub struct Privacy {
    rule: Rule,
}

enum Rule {
    None,
    Mask(usize),
    Hash(hmac::Key),
}

impl std::fmt::Debug for Privacy {
    // The key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Rule::None => write!(f, "Privacy(none)"),
            Rule::Mask(n) => write!(f, "Privacy(mask, keep {n})"),
            Rule::Hash(_) => write!(f, "Privacy(hash, secret <redacted>)"),
        }
    }
}

impl Privacy {
    pub fn none() -> Privacy {
        Privacy { rule: Rule::None }
    }
    pub fn mask(keep_digits: usize) -> Privacy {
        Privacy {
            rule: Rule::Mask(keep_digits),
        }
    }
    pub fn hash(secret: &[u8]) -> Privacy {
        Privacy {
            rule: Rule::Hash(hmac::Key::new(hmac::HMAC_SHA256, secret)),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self.rule, Rule::None)
    }

    /// One value under the rule.
    pub fn apply_str(&self, s: &str) -> String {
        match &self.rule {
            Rule::None => s.to_string(),
            Rule::Mask(keep) => mask(s, *keep),
            Rule::Hash(key) => {
                if s.is_empty() {
                    return String::new();
                }
                let tag = hmac::sign(key, s.as_bytes());
                tag.as_ref()[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
        }
    }

    /// Rewrites the identifying fields of an event in place.
    pub fn apply(&self, ev: &mut Event) {
        if self.is_none() {
            return;
        }
        let call_id = |this: &Self, id: &mut CallId| {
            let v = this.apply_str(id);
            fill(id, &v);
        };
        match ev {
            Event::Call(c) => {
                call_id(self, &mut c.call_id);
                let user = |u: &mut User| {
                    let v = self.apply_str(u);
                    fill(u, &v);
                };
                user(&mut c.caller);
                user(&mut c.callee);
            }
            Event::RtpInterval(e) => e.call_id.iter_mut().for_each(|id| call_id(self, id)),
            Event::StreamEnd(e) => e.call_id.iter_mut().for_each(|id| call_id(self, id)),
            Event::Dtmf(e) => e.call_id.iter_mut().for_each(|id| call_id(self, id)),
            Event::MediaHealth(e) => e.call_id.iter_mut().for_each(|id| call_id(self, id)),
        }
    }
}

fn mask(s: &str, keep: usize) -> String {
    let total = s.chars().filter(|c| c.is_alphanumeric()).count();
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen + keep <= total { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keeps_the_last_digits_and_the_separators() {
        let p = Privacy::mask(4);
        assert_eq!(p.apply_str("+33140001234"), "+*******1234");
        assert_eq!(p.apply_str("12"), "12");
        assert_eq!(p.apply_str("ab12@host.x"), "****@*ost.x");
        assert_eq!(Privacy::mask(0).apply_str("100"), "***");
    }

    #[test]
    fn hash_is_stable_per_secret_and_hides_the_value() {
        let a = Privacy::hash(b"site-secret");
        let b = Privacy::hash(b"other-secret");
        let h = a.apply_str("+33140001234");
        assert_eq!(h.len(), 32);
        assert_eq!(h, a.apply_str("+33140001234"));
        assert_ne!(h, b.apply_str("+33140001234"));
        assert!(!h.contains("1234"));
        assert!(!format!("{a:?}").contains("site-secret"));
    }

    #[test]
    fn every_event_type_has_its_identifiers_rewritten() {
        let p = Privacy::hash(b"k");
        for mut ev in crate::publish::payload::tests::samples() {
            let before = crate::publish::json::to_line(&ev);
            p.apply(&mut ev);
            let after = crate::publish::json::to_line(&ev);
            assert!(!after.contains("a84b4c76e66710"), "{after}");
            assert!(!after.contains("+33140000001"), "{after}");
            assert_ne!(before, after);
        }
    }
}
