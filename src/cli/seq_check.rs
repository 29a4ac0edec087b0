//! `watch`'s check of the `calls` sequence per sensor: gaps (messages lost: a sensor's
//! outbox overflowed, or QoS 0) and duplicates (QoS 1 redeliveries), in words.

use std::collections::HashMap;

/// Per sensor: messages seen, missing (gaps), duplicates (any redelivery), restarts.
#[derive(Default, Clone, Copy)]
struct Tally {
    seen: u64,
    missing: u64,
    duplicates: u64,
    restarts: u64,
}

/// The last `seq` seen per sensor (`site/sensor`), and the counts so far.
#[derive(Default)]
pub struct SeqCheck {
    last: HashMap<String, u64>,
    tally: std::collections::BTreeMap<String, Tally>,
}

impl SeqCheck {
    /// Records `seq` from `sensor`; returns what a person should know, if anything.
    pub fn see(&mut self, sensor: &str, seq: u64) -> Option<String> {
        let t = self.tally.entry(sensor.to_string()).or_default();
        t.seen += 1;
        let last = self.last.insert(sensor.to_string(), seq)?;
        if seq == last + 1 {
            None
        } else if seq == last {
            t.duplicates += 1;
            Some(format!(
                "{sensor}: duplicate calls message seq {seq} (QoS 1 redelivery)"
            ))
        } else if seq > last {
            let n = seq - last - 1;
            t.missing += n;
            Some(format!(
                "{sensor}: {n} calls message(s) missing (seq {} to {}): the sensor dropped or the broker lost them",
                last + 1,
                seq - 1
            ))
        } else if seq == 1 {
            t.restarts += 1;
            Some(format!(
                "{sensor}: sensor restarted (seq back to 1 after {last})"
            ))
        } else {
            // An older message redelivered after newer ones: keep the newest as the reference.
            // (Counted as a duplicate: a gap it fills was already counted missing.)
            t.duplicates += 1;
            self.last.insert(sensor.to_string(), last);
            Some(format!(
                "{sensor}: calls message seq {seq} arrived after {last} (redelivered out of order)"
            ))
        }
    }
}

impl SeqCheck {
    /// One line per sensor: what arrived and what did not (printed when `watch` ends).
    pub fn summary(&self) -> Vec<String> {
        self.tally
            .iter()
            .map(|(s, t)| {
                format!(
                    "{s}: {} calls message(s), {} missing, {} duplicate(s), {} restart(s)",
                    t.seen, t.missing, t.duplicates, t.restarts
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::SeqCheck;

    #[test]
    fn gaps_duplicates_and_restarts_are_reported_per_sensor() {
        let mut c = SeqCheck::default();
        assert_eq!(c.see("s1/a", 1), None);
        assert_eq!(c.see("s1/b", 7), None);
        assert_eq!(c.see("s1/a", 2), None);
        assert_eq!(
            c.see("s1/a", 2).as_deref(),
            Some("s1/a: duplicate calls message seq 2 (QoS 1 redelivery)")
        );
        assert_eq!(
            c.see("s1/a", 5).as_deref(),
            Some(
                "s1/a: 2 calls message(s) missing (seq 3 to 4): the sensor dropped or the broker lost them"
            )
        );
        assert_eq!(c.see("s1/b", 8), None);
        assert_eq!(
            c.see("s1/a", 4).as_deref(),
            Some("s1/a: calls message seq 4 arrived after 5 (redelivered out of order)")
        );
        assert_eq!(c.see("s1/a", 6), None);
        assert_eq!(
            c.see("s1/a", 1).as_deref(),
            Some("s1/a: sensor restarted (seq back to 1 after 6)")
        );
        assert_eq!(
            c.summary(),
            [
                "s1/a: 7 calls message(s), 2 missing, 2 duplicate(s), 1 restart(s)",
                "s1/b: 2 calls message(s), 0 missing, 0 duplicate(s), 0 restart(s)"
            ]
        );
    }
}
