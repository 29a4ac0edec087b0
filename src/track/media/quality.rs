//! Quality: the E-model's R-factor and MOS of an interval, a stream's MOS summary, and a
//! call direction's quality for the call's final event.

use super::stream::{RemoteView, Stream, StreamKey};
use crate::rtp::loss_pattern::LossShape;
use crate::rtp::{codec, emodel};
use crate::track::event::{Codec, DirectionQuality};

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// RFC 3611 §4.7.2 burst and gap densities are fractions × 256.
pub(super) fn density_pct(d: u8) -> f64 {
    round3(f64::from(d) * 100.0 / 256.0)
}

/// R-factor and MOS-LQE of one interval. Codecs without G.113 Appendix I values (wideband
/// G.722, Opus, AMR-WB, video, events...) get no R/MOS (`null` in JSON) rather than a
/// guess; the codec is named in the same record so the gap is visible.
pub(super) fn mos_for(
    st: &Stream,
    expected: u64,
    lost: i64,
    burst_r: Option<f64>,
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
        // Loss burstier than random lowers Ie,eff's robustness (G.107 eq. 7-29).
        burst_r: burst_r.unwrap_or(1.0),
        delay_ms,
    });
    (Some(round3(r)), Some(round3(emodel::mos_from_r(r))))
}

/// MOS parts (min, sum, scored seconds) so far, including the second still being
/// accumulated (a call that ends mid-second still gets its last second's score).
fn mos_parts(st: &Stream, delay_ms: f64) -> (Option<f64>, f64, u32) {
    let (mut min, mut sum, mut n) = (st.mos_min, st.mos_sum, st.mos_n);
    if st.packets_in_second > 0 && st.event_pt != Some(st.pt) {
        let mut stats = st.stats;
        let f = stats.take_interval();
        if let (_, Some(m)) = mos_for(st, f.expected, f.lost, f.shape.burst_r(), delay_ms) {
            min = Some(min.map_or(m, |x: f64| x.min(m)));
            sum += m;
            n += 1;
        }
    }
    (min, sum, n)
}

/// One direction of a call summed over every stream that carried it: a port move on
/// resume, an SSRC change or a re-INVITE to another codec each add a stream.
#[derive(Debug, Clone, Default)]
pub(super) struct DirectionAcc {
    streams: u32,
    packets: u64,
    lost: i64,
    jitter_max_ms: f64,
    mos_min: Option<f64>,
    mos_sum: f64,
    mos_n: u32,
    shape: LossShape,
    /// The stream that carried most packets: its addresses, codec and far-end view name
    /// the direction.
    busiest: Option<(u64, StreamKey, Codec, RemoteView)>,
    /// The busiest stream's slot when added by [`DirectionAcc::add_at`]: a tie goes to the
    /// lowest slot (`None`: added earlier, as it ended, and keeps its place on a tie).
    busiest_slot: Option<u32>,
}

impl DirectionAcc {
    /// Adds stream `key` as of now (`settled`: its loss pattern was already finished).
    pub fn add(&mut self, key: &StreamKey, st: &Stream, delay_ms: f64) {
        self.add_ranked(None, key, st, delay_ms);
    }

    /// [`DirectionAcc::add`] for a stream still in slot `slot`: streams added in any
    /// order name the same busiest stream as a walk in slot order.
    pub fn add_at(&mut self, slot: u32, key: &StreamKey, st: &Stream, delay_ms: f64) {
        self.add_ranked(Some(slot), key, st, delay_ms);
    }

    fn add_ranked(&mut self, slot: Option<u32>, key: &StreamKey, st: &Stream, delay_ms: f64) {
        let mut stats = st.stats;
        stats.finish();
        let t = stats.totals();
        let (min, sum, n) = mos_parts(st, delay_ms);
        self.streams += 1;
        self.packets += t.packets;
        self.lost += t.lost;
        self.jitter_max_ms = self.jitter_max_ms.max(t.jitter_max_ms);
        if let Some(m) = min {
            self.mos_min = Some(self.mos_min.map_or(m, |x: f64| x.min(m)));
        }
        self.mos_sum += sum;
        self.mos_n += n;
        self.shape.merge(&t.shape);
        let better = match (&self.busiest, self.busiest_slot, slot) {
            (None, ..) => true,
            (Some(b), Some(old), Some(new)) if b.0 == t.packets => new < old,
            (Some(b), ..) => b.0 < t.packets,
        };
        if better {
            self.busiest = Some((t.packets, *key, st.codec.clone(), st.rtcp));
            self.busiest_slot = slot;
        }
    }

    /// The direction's quality for the call's final event; `None` without any stream.
    pub fn quality(&self) -> Option<DirectionQuality> {
        let (_, key, codec, rtcp) = self.busiest.as_ref()?;
        let xr = rtcp.xr;
        Some(DirectionQuality {
            src: Some(key.src),
            dst: Some(key.dst),
            codec: codec.clone(),
            packets: self.packets,
            lost: self.lost,
            jitter_max_ms: round3(self.jitter_max_ms),
            mos_min: self.mos_min,
            mos_mean: (self.mos_n > 0).then(|| round3(self.mos_sum / f64::from(self.mos_n))),
            streams: self.streams,
            burst_r: self.shape.burst_r().map(round3),
            rtcp_fraction_lost: rtcp.fraction_lost,
            rtcp_jitter_ms: rtcp.jitter_ms.map(round3),
            rtcp_rtt_ms: rtcp.rtt_ms.map(round3),
            rtcp_xr_mos_lq: xr.and_then(|x| x.mos_lq()),
            rtcp_xr_burst_density_pct: xr.map(|x| density_pct(x.burst_density)),
            rtcp_xr_gap_density_pct: xr.map(|x| density_pct(x.gap_density)),
        })
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
        let (r, mos) = mos_for(st, 50, 0, None, emodel::DEFAULT_DELAY_MS);
        let (r_lossy, mos_lossy) = mos_for(st, 50, 5, None, emodel::DEFAULT_DELAY_MS);
        let (_, mos_bursty) = mos_for(st, 50, 5, Some(2.5), emodel::DEFAULT_DELAY_MS);
        assert!(
            mos_bursty < mos_lossy,
            "bursty {mos_bursty:?} random {mos_lossy:?}"
        );
        assert!(r.unwrap() > 90.0 && mos.unwrap() > 4.3, "{r:?} {mos:?}");
        assert!(r_lossy < r && mos_lossy < mos);
    }

    #[test]
    fn a_closed_call_sums_every_stream_of_a_direction_named_by_its_busiest() {
        let mut m = media_with_call();
        send(&mut m, CALLER, CALLEE, 1, 10, 1_000_000);
        send(&mut m, CALLER, CALLEE, 2, 30, 1_000_000); // an SSRC change, carrying more
        send(&mut m, CALLEE, CALLER, 3, 20, 1_000_000);
        let (to_callee, to_caller) = m.close_call(call(1), "call_ended");
        let (to_callee, to_caller) = (to_callee.unwrap(), to_caller.unwrap());
        assert_eq!(
            (
                to_callee.packets,
                to_callee.streams,
                to_callee.src,
                to_callee.dst
            ),
            (40, 2, Some(at(CALLER)), Some(at(CALLEE)))
        );
        assert_eq!(
            (to_caller.packets, to_caller.streams, to_caller.src),
            (20, 1, Some(at(CALLEE)))
        );
        assert_eq!(to_callee.codec.as_str(), "PCMU");
        assert!(
            to_callee.mos_mean.is_some(),
            "the second still open is scored"
        );
        assert_eq!(
            m.close_call(call(2), "call_ended"),
            (None, None),
            "another call"
        );
    }
}
