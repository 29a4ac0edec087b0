//! Per-second MOS, loss and jitter of one charted stream, drawn server-side as SVG with the
//! call report's chart (`report::chart`): the same look, no script, nothing fetched.

use super::state::StreamSeries;
use crate::report::chart::{Axis, Metric, chart};
use crate::track::event::RtpInterval;

/// The figures of one charted stream.
pub const METRICS: [Metric; 3] = [Metric::Mos, Metric::Lost, Metric::Jitter];

/// The charts of one stream (MOS, lost, jitter), on a shared time axis.
pub fn stream_charts(s: &StreamSeries, axis: Axis) -> String {
    let iv: Vec<RtpInterval> = s
        .points
        .iter()
        .map(|p| RtpInterval {
            ts: p.ts,
            packets: p.packets,
            lost: p.lost,
            jitter_ms: f64::from(p.jitter_ms),
            mos: (!p.mos.is_nan()).then_some(f64::from(p.mos)),
            ..RtpInterval::default()
        })
        .collect();
    METRICS.iter().map(|m| chart(*m, &iv, &[], axis)).collect()
}

/// The time axis covering every stream of a call.
pub fn axis(streams: &[StreamSeries]) -> Axis {
    let ts = streams.iter().flat_map(|s| s.points.iter().map(|p| p.ts.0));
    let t0 = ts.clone().min().unwrap_or(0);
    let t1 = ts.max().unwrap_or(0) + 1_000_000;
    Axis { t0, t1 }
}

/// CSS for the charts (the report's classes).
pub const CSS: &str = ".chart{display:block;margin:4px 0;background:#fff}.chart .series{fill:none;stroke:#1565c0;stroke-width:1.5}.chart .axis{fill:none;stroke:#999}.chart text{font:10px sans-serif;fill:#444}.chart .e{text-anchor:end}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noc::state::Point;
    use crate::track::event::Ts;

    #[test]
    fn one_point_per_second_in_each_chart() {
        let s = StreamSeries {
            ssrc: 1,
            src: None,
            dst: None,
            codec: "PCMU".into(),
            points: (0..5)
                .map(|k| Point {
                    ts: Ts(1_700_000_000_000_000 + k * 1_000_000),
                    packets: 50,
                    lost: k as i32,
                    jitter_ms: 1.5,
                    mos: if k == 2 { f32::NAN } else { 4.2 },
                })
                .collect(),
        };
        let svg = stream_charts(&s, axis(std::slice::from_ref(&s)));
        assert_eq!(svg.matches("<svg class='chart'").count(), 3);
        assert!(svg.contains("data-metric='mos'") && svg.contains("data-metric='lost'"));
        // The second without a MOS is a gap in the MOS line, not a zero.
        assert!(svg.contains("data-v='0,1,2,3,4'"), "{svg}");
    }
}
