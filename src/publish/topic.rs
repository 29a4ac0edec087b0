//! The topic tree: `voipsensor/v1/{site}/{sensor}/{status|calls|rtp|health|kpi}`.
//!
//! `v1` versions the tree itself; payload schema changes are versioned by the payload's
//! leading byte instead, so a NOC can subscribe to `voipsensor/v1/#` for good.

use std::fmt;

/// First two levels of every topic.
pub const ROOT: &str = "voipsensor/v1";
/// Longest site or sensor name accepted (bytes); keeps topics short on slow WAN links.
pub const NAME_MAX: usize = 64;

/// The five leaves under a sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leaf {
    /// Retained online/offline record (also the Last Will).
    Status,
    /// Call events and per-call records (QoS 1, in order).
    Calls,
    /// Per-second stream metrics, batched (QoS 0).
    Rtp,
    /// Sensor health every 10 s.
    Health,
    /// Call KPIs every minute.
    Kpi,
}

impl Leaf {
    pub const ALL: [Leaf; 5] = [
        Leaf::Status,
        Leaf::Calls,
        Leaf::Rtp,
        Leaf::Health,
        Leaf::Kpi,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Leaf::Status => "status",
            Leaf::Calls => "calls",
            Leaf::Rtp => "rtp",
            Leaf::Health => "health",
            Leaf::Kpi => "kpi",
        }
    }

    pub fn parse(s: &str) -> Option<Leaf> {
        Leaf::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Why a site or sensor name is not usable as one topic level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} is not a valid MQTT topic level: {} (allowed: 1 to {NAME_MAX} bytes, \
             no '/', '+', '#', NUL, whitespace or control characters, not starting with '$')",
            self.what, self.value, self.reason
        )
    }
}

impl std::error::Error for NameError {}

/// Checks one topic level against MQTT rules (no wildcards, separators or NUL) and ours
/// (short, no whitespace or control characters, no leading `$` reserved for brokers).
pub fn validate_name(what: &'static str, value: &str) -> Result<(), NameError> {
    let err = |reason| {
        Err(NameError {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return err("empty");
    }
    if value.len() > NAME_MAX {
        return err("too long");
    }
    if value.starts_with('$') {
        return err("starts with '$' (reserved for broker topics)");
    }
    for ch in value.chars() {
        match ch {
            '/' => return err("contains '/'"),
            '+' | '#' => return err("contains a wildcard"),
            '\0' => return err("contains NUL"),
            c if c.is_control() => return err("contains a control character"),
            c if c.is_whitespace() => return err("contains whitespace"),
            _ => {}
        }
    }
    Ok(())
}

/// The topics of one sensor, built once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
    status: String,
    calls: String,
    rtp: String,
    health: String,
    kpi: String,
}

impl Topics {
    pub fn new(site: &str, sensor: &str) -> Result<Topics, NameError> {
        validate_name("site", site)?;
        validate_name("sensor", sensor)?;
        let base = format!("{ROOT}/{site}/{sensor}");
        let t = |l: Leaf| format!("{base}/{}", l.as_str());
        Ok(Topics {
            status: t(Leaf::Status),
            calls: t(Leaf::Calls),
            rtp: t(Leaf::Rtp),
            health: t(Leaf::Health),
            kpi: t(Leaf::Kpi),
            base,
        })
    }

    /// `voipsensor/v1/{site}/{sensor}`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, leaf: Leaf) -> &str {
        match leaf {
            Leaf::Status => &self.status,
            Leaf::Calls => &self.calls,
            Leaf::Rtp => &self.rtp,
            Leaf::Health => &self.health,
            Leaf::Kpi => &self.kpi,
        }
    }
}

/// Subscription filter for `watch`: a missing site or sensor matches all (`+`).
pub fn filter(site: Option<&str>, sensor: Option<&str>) -> Result<String, NameError> {
    if let Some(s) = site {
        validate_name("site", s)?;
    }
    if let Some(s) = sensor {
        validate_name("sensor", s)?;
    }
    Ok(format!(
        "{ROOT}/{}/{}/#",
        site.unwrap_or("+"),
        sensor.unwrap_or("+")
    ))
}

/// Splits a received topic into (site, sensor, leaf) when it belongs to the tree.
pub fn parse(topic: &str) -> Option<(&str, &str, Leaf)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let mut it = rest.split('/');
    let site = it.next()?;
    let sensor = it.next()?;
    let leaf = Leaf::parse(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    Some((site, sensor, leaf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_documented_tree() {
        let t = Topics::new("paris-01", "vs-0a1b2c3d4e5f").unwrap();
        assert_eq!(
            t.get(Leaf::Calls),
            "voipsensor/v1/paris-01/vs-0a1b2c3d4e5f/calls"
        );
        assert_eq!(
            t.get(Leaf::Status),
            "voipsensor/v1/paris-01/vs-0a1b2c3d4e5f/status"
        );
        assert_eq!(
            parse(t.get(Leaf::Kpi)),
            Some(("paris-01", "vs-0a1b2c3d4e5f", Leaf::Kpi))
        );
    }

    #[test]
    fn names_breaking_mqtt_topic_rules_are_rejected_with_the_reason() {
        for bad in ["", "a/b", "a+", "#", "a\0b", "a b", "$SYS", &"x".repeat(65)] {
            let e = validate_name("site", bad).unwrap_err();
            assert!(e.to_string().contains("site"), "{e}");
        }
        assert!(validate_name("sensor", "t1").is_ok());
        assert!(validate_name("sensor", "büro_3.west").is_ok());
    }

    #[test]
    fn watch_filter_uses_wildcards_for_missing_levels() {
        assert_eq!(filter(None, None).unwrap(), "voipsensor/v1/+/+/#");
        assert_eq!(filter(Some("s1"), None).unwrap(), "voipsensor/v1/s1/+/#");
        assert!(filter(Some("s/1"), None).is_err());
    }
}
