//! The warning set a technician sees: what is raised, what cleared, from one second's
//! figures. Raised and cleared are reported once, on the change.

use crate::capture::health::{IfHealth, IfState};
use crate::track::mirror::Warning;

/// A change in the warning set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Raised(Warning),
    Cleared(Warning),
}

/// The changes from `old` to `new`, by code: raised in `new`'s order, then cleared.
pub fn changes(old: &[Warning], new: &[Warning]) -> Vec<Change> {
    let raised = new
        .iter()
        .filter(|w| !old.iter().any(|o| o.code == w.code))
        .cloned()
        .map(Change::Raised);
    let cleared = old
        .iter()
        .filter(|o| !new.iter().any(|w| w.code == o.code))
        .cloned()
        .map(Change::Cleared);
    raised.chain(cleared).collect()
}

/// The warnings about one capture interface.
pub fn interface(
    h: &IfHealth,
    quiet_for_s: Option<u64>,
    no_traffic_s: u64,
    out: &mut Vec<Warning>,
) {
    if let Some(q) = quiet_for_s
        && q >= no_traffic_s
    {
        out.push(Warning {
            code: "no_mirror_traffic",
            message: format!(
                "no mirror traffic on {} for {} s (link {}): check the SPAN session and the cable",
                h.name, q, h.link
            ),
        });
    }
    if h.state != IfState::Capturing {
        out.push(Warning {
            code: "interface_down",
            message: h
                .error
                .clone()
                .unwrap_or_else(|| format!("{}: not capturing", h.name)),
        });
    }
}

pub fn capture_loss() -> Warning {
    Warning {
        code: "capture_loss",
        message: "the capture is dropping packets: metrics carry capture_loss".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(code: &'static str) -> Warning {
        Warning {
            code,
            message: code.into(),
        }
    }

    #[test]
    fn only_changes_are_reported() {
        let a = [w("capture_loss"), w("interface_down")];
        let b = [w("interface_down"), w("no_mirror_traffic")];
        assert_eq!(
            changes(&a, &b),
            [
                Change::Raised(w("no_mirror_traffic")),
                Change::Cleared(w("capture_loss"))
            ]
        );
        assert!(changes(&b, &b).is_empty());
    }

    #[test]
    fn a_quiet_interface_warns_after_the_threshold_and_a_down_one_says_why() {
        let mut h = IfHealth::new("eth1");
        h.state = IfState::Capturing;
        let mut out = Vec::new();
        interface(&h, Some(9), 10, &mut out);
        assert!(out.is_empty());
        interface(&h, Some(10), 10, &mut out);
        assert_eq!(out[0].code, "no_mirror_traffic");
        assert!(
            out[0].message.contains("eth1 for 10 s"),
            "{}",
            out[0].message
        );
        h.state = IfState::Absent;
        h.error = Some("eth1: no such interface".into());
        let mut out = Vec::new();
        interface(&h, None, 10, &mut out);
        assert_eq!(
            out,
            [Warning {
                code: "interface_down",
                message: "eth1: no such interface".into()
            }]
        );
    }
}
