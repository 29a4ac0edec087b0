//! The warning set a technician sees: what is raised, what cleared, from one second's
//! figures. Raised and cleared are reported once, on the change.

use crate::capture::dedup::DupWindow;
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
    if h.mirror_window.doubled() {
        out.push(mirror_duplicates(&h.name, h.mirror_window));
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

/// A large share of one interface's frames arrive twice, byte for byte.
pub fn mirror_duplicates(name: &str, w: DupWindow) -> Warning {
    Warning {
        code: "mirror_duplicates",
        message: format!(
            "every frame arrives twice on {name} ({} of {} frames recently were byte-identical copies): the SPAN session mirrors both directions of two ports, or the same VLAN twice; mirror one direction of each port, or the port or its VLAN (the copies are dropped meanwhile unless keep_duplicates)",
            w.duplicates, w.frames
        ),
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

    #[test]
    fn an_interface_whose_frames_arrive_twice_names_the_span_mistake() {
        let mut h = IfHealth::new("eth1");
        h.state = IfState::Capturing;
        h.mirror_window = DupWindow {
            frames: 1000,
            duplicates: 20,
        };
        let mut out = Vec::new();
        interface(&h, None, 10, &mut out);
        assert!(out.is_empty(), "a few copies are no diagnosis: {out:?}");
        h.mirror_window.duplicates = 500;
        interface(&h, None, 10, &mut out);
        assert_eq!(out[0].code, "mirror_duplicates");
        assert!(
            out[0].message.contains("every frame arrives twice on eth1")
                && out[0]
                    .message
                    .contains("both directions of two ports, or the same VLAN twice"),
            "{}",
            out[0].message
        );
    }
}
