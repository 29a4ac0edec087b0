//! Replay pacing: event time mapped onto wall time at a speed, for tests and demos.

use std::time::{Duration, Instant};

pub struct Pace {
    speed: f64,
    origin: Option<(u64, Instant)>,
}

impl Pace {
    /// `None` unless `speed` is positive.
    pub fn new(speed: Option<f64>) -> Option<Pace> {
        speed.filter(|s| *s > 0.0).map(|speed| Pace {
            speed,
            origin: None,
        })
    }

    /// Sleeps until an event at `t_us` (packet time) is due: `(t - first) / speed` of wall
    /// time after the first one.
    pub fn wait_for(&mut self, t_us: u64) {
        let (t0, w0) = *self.origin.get_or_insert((t_us, Instant::now()));
        let due = w0 + Duration::from_secs_f64(t_us.saturating_sub(t0) as f64 / 1e6 / self.speed);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}
