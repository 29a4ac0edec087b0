//! Per-second charts of one media direction: packets, loss, jitter and MOS, one point per
//! `rtp_interval` event (the figures the sensor publishes), DTMF digits on the time axis.
//! Drawn server-side as SVG; each series also carries its values (`data-v`) so a reader —
//! or a test — can check the points against the events.

use super::svg::{esc, num};
use crate::track::event::{DtmfEvent, RtpInterval};
use std::fmt::Write;

pub const W: u32 = 560;
pub const H: u32 = 80;
const LEFT: u32 = 54;
const RIGHT: u32 = 12;
const TOP: u32 = 14;
const BOTTOM: u32 = 18;

/// Which figure a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Packets,
    Lost,
    Jitter,
    Mos,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Packets, Metric::Lost, Metric::Jitter, Metric::Mos];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Packets => "packets",
            Metric::Lost => "lost",
            Metric::Jitter => "jitter_ms",
            Metric::Mos => "mos",
        }
    }

    fn value(self, i: &RtpInterval) -> Option<f64> {
        match self {
            Metric::Packets => Some(i.packets.into()),
            Metric::Lost => Some(i.lost.into()),
            Metric::Jitter => Some(i.jitter_ms),
            Metric::Mos => i.mos,
        }
    }
}

/// The time axis shared by every chart of a call: `[t0, t1)` in Unix microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    pub t0: u64,
    pub t1: u64,
}

impl Axis {
    fn x(&self, ts: u64) -> f64 {
        let span = self.t1.saturating_sub(self.t0).max(1) as f64;
        LEFT as f64 + (ts.saturating_sub(self.t0) as f64 / span) * f64::from(W - LEFT - RIGHT)
    }
}

/// A round upper bound for the y axis (1, 2, 5 × 10^n).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// One chart. Intervals are one stream's, in time order.
pub fn chart(metric: Metric, iv: &[RtpInterval], dtmf: &[DtmfEvent], axis: Axis) -> String {
    let pts: Vec<(u64, f64)> = iv
        .iter()
        .filter_map(|i| metric.value(i).map(|v| (i.ts.0, v)))
        .collect();
    let (lo, hi) = match metric {
        Metric::Mos => (1.0, 5.0),
        _ => {
            let min = pts.iter().map(|p| p.1).fold(0.0, f64::min);
            let max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
            (if min < 0.0 { -nice_max(-min) } else { 0.0 }, nice_max(max))
        }
    };
    let y = |v: f64| {
        let f = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        f64::from(TOP) + (1.0 - f) * f64::from(H - TOP - BOTTOM)
    };
    let mut s = String::with_capacity(400 + pts.len() * 24);
    let _ = write!(
        s,
        r#"<svg class='chart' data-metric='{m}' width='{W}' height='{H}' viewBox='0 0 {W} {H}'><text class='title' x='{LEFT}' y='10'>{m}</text><text class='ax e' x='{ax}' y='{yt}'>{hi}</text><text class='ax e' x='{ax}' y='{yb}'>{lo}</text><path class='axis' d='M{LEFT},{TOP}V{yb0}H{xr}'/>"#,
        m = metric.name(),
        ax = LEFT - 4,
        yt = TOP + 4,
        yb = H - BOTTOM,
        yb0 = H - BOTTOM,
        xr = W - RIGHT,
        hi = num(hi, 2),
        lo = num(lo, 2),
    );
    let secs = axis.t1.saturating_sub(axis.t0) / 1_000_000;
    let _ = write!(
        s,
        r#"<text class='ax e' x='{xr}' y='{H}'>{secs} s</text>"#,
        xr = W - RIGHT
    );
    for d in dtmf {
        let x = num(axis.x(d.ts.0), 1);
        let _ = write!(
            s,
            r#"<g class='dtmf'><line x1='{x}' y1='{TOP}' x2='{x}' y2='{yb}'/><text x='{x}' y='{TOP}'>{}</text></g>"#,
            esc(&d.digit.to_string()),
            yb = H - BOTTOM
        );
    }
    let mut points = String::with_capacity(pts.len() * 12);
    let mut values = String::with_capacity(pts.len() * 6);
    for (k, (ts, v)) in pts.iter().enumerate() {
        if k > 0 {
            points.push(' ');
            values.push(',');
        }
        let _ = write!(points, "{},{}", num(axis.x(*ts), 1), num(y(*v), 1));
        values.push_str(&num(*v, 3));
    }
    let _ = write!(
        s,
        r#"<polyline class='series' data-n='{}' data-v='{values}' points='{points}'/></svg>"#,
        pts.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::event::Ts;

    fn iv(sec: u64, packets: u32, lost: i32, mos: Option<f64>) -> RtpInterval {
        RtpInterval {
            ts: Ts((1_700_000_000 + sec) * 1_000_000),
            packets,
            lost,
            jitter_ms: 1.25,
            mos,
            ..Default::default()
        }
    }

    fn axis() -> Axis {
        Axis {
            t0: 1_700_000_000_000_000,
            t1: 1_700_000_010_000_000,
        }
    }

    #[test]
    fn one_point_per_interval_with_its_value() {
        let v = [
            iv(0, 50, 0, Some(4.4)),
            iv(1, 48, 2, Some(4.1)),
            iv(2, 50, -1, None),
        ];
        let s = chart(Metric::Packets, &v, &[], axis());
        assert!(s.contains(r#"data-n='3' data-v='50,48,50'"#), "{s}");
        let s = chart(Metric::Lost, &v, &[], axis());
        assert!(s.contains(r#"data-v='0,2,-1'"#), "{s}");
        // A second without MOS (codec without E-model figures) has no MOS point.
        let s = chart(Metric::Mos, &v, &[], axis());
        assert!(s.contains(r#"data-n='2' data-v='4.4,4.1'"#), "{s}");
    }

    #[test]
    fn points_run_left_to_right_inside_the_plot() {
        let v = [iv(0, 50, 0, None), iv(9, 50, 0, None)];
        let s = chart(Metric::Packets, &v, &[], axis());
        let pts = s
            .split("points='")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap();
        let xs: Vec<f64> = pts
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(xs[0], f64::from(LEFT));
        assert!(xs[1] > xs[0] && xs[1] <= f64::from(W - RIGHT));
    }

    #[test]
    fn dtmf_digits_sit_on_the_time_axis() {
        let d = DtmfEvent {
            ts: Ts(1_700_000_005_000_000),
            call_id: None,
            ssrc: 1,
            src: None,
            dst: None,
            digit: '#',
            event_code: 11,
            duration_ms: 100,
            volume: 10,
        };
        let s = chart(Metric::Packets, &[iv(0, 50, 0, None)], &[d], axis());
        assert!(s.contains(r#"<g class='dtmf'>"#) && s.contains(">#</text>"));
    }

    #[test]
    fn y_axis_rounds_up() {
        assert_eq!(nice_max(47.0), 50.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(120.0), 200.0);
    }
}
