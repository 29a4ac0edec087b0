//! Quality: the E-model's R-factor and MOS of an interval, a stream's MOS summary, and a
//! call direction's quality for the call's final event.

use super::stream::{Stream, StreamKey};
use crate::rtp::{codec, emodel};
use crate::track::event::DirectionQuality;

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// R-factor and MOS-LQE of one interval. Codecs without G.113 Appendix I values (wideband
/// G.722, Opus, AMR-WB, video, events...) get no R/MOS (`null` in JSON) rather than a
/// guess; the codec is named in the same record so the gap is visible.
pub(super) fn mos_for(
    st: &Stream,
    expected: u64,
    lost: i64,
    delay_ms: f64,
) -> (Option<f64>, Option<f64>) {
    let Some((ie, bpl)) = codec::impairment(&st.codec) else {
        return (None, None);
    };
    let loss_pct = if expected > 0 && lost > 0 {
        (lost as f64 * 100.0 / expected as f64).min(100.0)
    } else {
        0.0
    };
    let r = emodel::r_factor(&emodel::EModelInput {
        ie,
        bpl,
        ppl: loss_pct,
        burst_r: 1.0,
        delay_ms,
    });
    (Some(round3(r)), Some(round3(emodel::mos_from_r(r))))
}

/// MOS summary (min, mean) so far, including the second still being accumulated (a call
/// that ends mid-second still gets its last second's score).
pub(super) fn mos_summary(st: &Stream, delay_ms: f64) -> (Option<f64>, Option<f64>) {
    let (mut min, mut sum, mut n) = (st.mos_min, st.mos_sum, st.mos_n);
    if st.packets_in_second > 0 && st.event_pt != Some(st.pt) {
        let mut stats = st.stats;
        let f = stats.take_interval();
        if let (_, Some(m)) = mos_for(st, f.expected, f.lost, delay_ms) {
            min = Some(min.map_or(m, |x: f64| x.min(m)));
            sum += m;
            n += 1;
        }
    }
    (min, (n > 0).then(|| round3(sum / n as f64)))
}

/// One direction of a call as of now, from its stream `key`.
pub(super) fn direction_quality(key: &StreamKey, st: &Stream, delay_ms: f64) -> DirectionQuality {
    let t = st.stats.totals();
    let (mos_min, mos_mean) = mos_summary(st, delay_ms);
    DirectionQuality {
        src: Some(key.src),
        dst: Some(key.dst),
        codec: st.codec.clone(),
        packets: t.packets,
        lost: t.lost,
        jitter_max_ms: round3(t.jitter_max_ms),
        mos_min,
        mos_mean,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::track::event::{Codec, fill};

    #[test]
    fn g711_without_loss_scores_the_e_models_best_and_loss_lowers_it() {
        let mut st_codec = Codec::new();
        fill(&mut st_codec, "PCMU");
        let mut mm = media_with_call();
        send(&mut mm, CALLER, CALLEE, 1, 1, 1_000_000);
        let st = mm.streams.iter().next().unwrap().1;
        assert_eq!(st.codec, st_codec);
        let (r, mos) = mos_for(st, 50, 0, emodel::DEFAULT_DELAY_MS);
        let (r_lossy, mos_lossy) = mos_for(st, 50, 5, emodel::DEFAULT_DELAY_MS);
        assert!(r.unwrap() > 90.0 && mos.unwrap() > 4.3, "{r:?} {mos:?}");
        assert!(r_lossy < r && mos_lossy < mos);
    }

    #[test]
    fn a_closed_call_reports_each_direction_by_its_busiest_stream() {
        let mut m = media_with_call();
        send(&mut m, CALLER, CALLEE, 1, 10, 1_000_000);
        send(&mut m, CALLER, CALLEE, 2, 30, 1_000_000); // an SSRC change, carrying more
        send(&mut m, CALLEE, CALLER, 3, 20, 1_000_000);
        let (to_callee, to_caller) = m.close_call(1, "call_ended");
        let (to_callee, to_caller) = (to_callee.unwrap(), to_caller.unwrap());
        assert_eq!(
            (to_callee.packets, to_callee.src, to_callee.dst),
            (30, Some(at(CALLER)), Some(at(CALLEE)))
        );
        assert_eq!((to_caller.packets, to_caller.src), (20, Some(at(CALLEE))));
        assert_eq!(to_callee.codec.as_str(), "PCMU");
        assert!(
            to_callee.mos_mean.is_some(),
            "the second still open is scored"
        );
        assert_eq!(m.close_call(2, "call_ended"), (None, None), "another call");
    }
}
