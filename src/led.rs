//! The status LED: which condition the sensor is in, decided sans-IO from what `run` knows
//! each second, and the kernel LED trigger that shows it (`/sys/class/leds/<led>/trigger`,
//! `delay_on`, `delay_off`). The kernel blinks the LED itself: nothing runs per blink.
use serde::Serialize;
use std::path::Path;

/// What the technician needs to know at a glance, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// sensor.toml is invalid (shown by `/init`, which does not start the sensor then).
    ConfigError,
    /// Started, no broker connection yet, within the grace period.
    Booting,
    /// The broker is configured but not connected (after the grace period).
    BrokerUnreachable,
    /// Connected, but no mirror frame for `quiet_s` seconds: check the SPAN cable/port.
    NoMirrorTraffic,
    Healthy,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::ConfigError => "config_error",
            Condition::Booting => "booting",
            Condition::BrokerUnreachable => "broker_unreachable",
            Condition::NoMirrorTraffic => "no_mirror_traffic",
            Condition::Healthy => "healthy",
        }
    }

    /// The trigger that shows it; five patterns, told apart by eye.
    pub fn pattern(self) -> Pattern {
        match self {
            Condition::Booting => Pattern::Timer {
                on_ms: 100,
                off_ms: 100,
            },
            Condition::ConfigError => Pattern::Timer {
                on_ms: 100,
                off_ms: 900,
            },
            Condition::BrokerUnreachable => Pattern::Timer {
                on_ms: 1000,
                off_ms: 1000,
            },
            Condition::NoMirrorTraffic => Pattern::Heartbeat,
            Condition::Healthy => Pattern::On,
        }
    }
}

/// What `run` knows each second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    pub config_ok: bool,
    /// `None`: no broker configured (JSON lines on stdout), nothing to be unreachable.
    pub broker_connected: Option<bool>,
    /// The broker has been connected at least once since start.
    pub ever_connected: bool,
    pub uptime_s: u64,
    /// Seconds since the last frame on any mirror interface; `None`: none yet.
    pub mirror_quiet_s: Option<u64>,
}

/// Seconds after start during which a missing broker connection is still "booting".
pub const BOOT_GRACE_S: u64 = 20;
/// Seconds without a mirror frame before "no mirror traffic".
pub const QUIET_S: u64 = 10;

pub fn condition(i: &Inputs) -> Condition {
    if !i.config_ok {
        return Condition::ConfigError;
    }
    match i.broker_connected {
        Some(false) if !i.ever_connected && i.uptime_s < BOOT_GRACE_S => {
            return Condition::Booting;
        }
        Some(false) => return Condition::BrokerUnreachable,
        _ => {}
    }
    match i.mirror_quiet_s {
        Some(q) if q < QUIET_S => Condition::Healthy,
        _ => Condition::NoMirrorTraffic,
    }
}

/// A kernel LED trigger setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `timer` with `delay_on` / `delay_off` in ms.
    Timer {
        on_ms: u32,
        off_ms: u32,
    },
    Heartbeat,
    /// `default-on`: steadily lit.
    On,
    /// `none` with brightness 0 (`[network] led = false`).
    Off,
}

/// Sets `led` (a `/sys/class/leds/<name>` directory) to `p`. The `delay_*` files exist
/// only once the `timer` trigger is set, so they are written after it.
pub fn apply(led: &Path, p: Pattern) -> std::io::Result<()> {
    let w = |f: &str, v: &str| std::fs::write(led.join(f), v);
    match p {
        Pattern::Timer { on_ms, off_ms } => {
            w("trigger", "timer")?;
            w("delay_on", &on_ms.to_string())?;
            w("delay_off", &off_ms.to_string())
        }
        Pattern::Heartbeat => w("trigger", "heartbeat"),
        Pattern::On => w("trigger", "default-on"),
        Pattern::Off => {
            w("trigger", "none")?;
            w("brightness", "0")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Inputs {
        Inputs {
            config_ok: true,
            broker_connected: Some(true),
            ever_connected: true,
            uptime_s: 100,
            mirror_quiet_s: Some(0),
        }
    }

    #[test]
    fn connected_with_recent_mirror_frames_is_healthy() {
        assert_eq!(condition(&up()), Condition::Healthy);
        let i = Inputs {
            mirror_quiet_s: Some(QUIET_S - 1),
            ..up()
        };
        assert_eq!(condition(&i), Condition::Healthy);
    }

    #[test]
    fn no_frame_for_the_quiet_period_or_ever_is_no_mirror_traffic() {
        for q in [Some(QUIET_S), Some(3600), None] {
            let i = Inputs {
                mirror_quiet_s: q,
                ..up()
            };
            assert_eq!(condition(&i), Condition::NoMirrorTraffic, "{q:?}");
        }
    }

    #[test]
    fn a_missing_broker_is_booting_during_the_grace_then_unreachable() {
        let i = Inputs {
            broker_connected: Some(false),
            ever_connected: false,
            uptime_s: 3,
            ..up()
        };
        assert_eq!(condition(&i), Condition::Booting);
        let i = Inputs {
            uptime_s: BOOT_GRACE_S,
            ..i
        };
        assert_eq!(condition(&i), Condition::BrokerUnreachable);
        // Lost after having been connected: unreachable at once, traffic or not.
        let i = Inputs {
            broker_connected: Some(false),
            uptime_s: 5,
            ..up()
        };
        assert_eq!(condition(&i), Condition::BrokerUnreachable);
    }

    #[test]
    fn without_a_broker_only_the_mirror_counts() {
        let i = Inputs {
            broker_connected: None,
            ever_connected: false,
            ..up()
        };
        assert_eq!(condition(&i), Condition::Healthy);
    }

    #[test]
    fn a_bad_config_wins_over_everything() {
        let i = Inputs {
            config_ok: false,
            broker_connected: Some(false),
            ..up()
        };
        assert_eq!(condition(&i), Condition::ConfigError);
    }

    #[test]
    fn the_five_conditions_have_five_distinct_patterns_and_names() {
        use Condition::*;
        let all = [
            ConfigError,
            Booting,
            BrokerUnreachable,
            NoMirrorTraffic,
            Healthy,
        ];
        for (k, a) in all.iter().enumerate() {
            for b in &all[k + 1..] {
                assert_ne!(a.pattern(), b.pattern(), "{a:?} {b:?}");
                assert_ne!(a.as_str(), b.as_str());
            }
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }

    /// A directory shaped like `/sys/class/leds/<led>`: the real file interface.
    fn fake_led(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vs-led-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["trigger", "delay_on", "delay_off", "brightness"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        d
    }

    fn read(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).unwrap()
    }

    #[test]
    fn the_writer_sets_trigger_and_delays_in_the_led_directory() {
        let d = fake_led("writer");
        apply(&d, Condition::BrokerUnreachable.pattern()).unwrap();
        assert_eq!(
            (
                read(&d, "trigger"),
                read(&d, "delay_on"),
                read(&d, "delay_off")
            ),
            ("timer".into(), "1000".into(), "1000".into())
        );
        apply(&d, Condition::Booting.pattern()).unwrap();
        assert_eq!(
            (read(&d, "delay_on"), read(&d, "delay_off")),
            ("100".into(), "100".into())
        );
        apply(&d, Condition::NoMirrorTraffic.pattern()).unwrap();
        assert_eq!(read(&d, "trigger"), "heartbeat");
        apply(&d, Condition::Healthy.pattern()).unwrap();
        assert_eq!(read(&d, "trigger"), "default-on");
        apply(&d, Pattern::Off).unwrap();
        assert_eq!(
            (read(&d, "trigger"), read(&d, "brightness")),
            ("none".into(), "0".into())
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_missing_led_directory_is_an_error_not_a_panic() {
        let d = std::env::temp_dir().join("vs-led-absent-dir/none");
        assert!(apply(&d, Pattern::On).is_err());
    }
}
