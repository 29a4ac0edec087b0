//! `watch`'s check of the `calls` sequence per sensor: gaps (messages lost: a sensor's
//! outbox overflowed, or QoS 0) and duplicates (QoS 1 redeliveries), in words.

use std::collections::HashMap;

/// The last `seq` seen per sensor (`site/sensor`).
#[derive(Default)]
pub struct SeqCheck {
    last: HashMap<String, u64>,
}

impl SeqCheck {
    /// Records `seq` from `sensor`; returns what a person should know, if anything.
    pub fn see(&mut self, sensor: &str, seq: u64) -> Option<String> {
        let last = self.last.insert(sensor.to_string(), seq)?;
        if seq == last + 1 {
            None
        } else if seq == last {
            Some(format!(
                "{sensor}: duplicate calls message seq {seq} (QoS 1 redelivery)"
            ))
        } else if seq > last {
            let n = seq - last - 1;
            Some(format!(
                "{sensor}: {n} calls message(s) missing (seq {} to {}): the sensor dropped or the broker lost them",
                last + 1,
                seq - 1
            ))
        } else if seq == 1 {
            Some(format!(
                "{sensor}: sensor restarted (seq back to 1 after {last})"
            ))
        } else {
            // An older message redelivered after newer ones: keep the newest as the reference.
            self.last.insert(sensor.to_string(), last);
            Some(format!(
                "{sensor}: calls message seq {seq} arrived after {last} (redelivered out of order)"
            ))
        }
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
    }
}
