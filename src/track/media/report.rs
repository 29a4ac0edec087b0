//! Reports: a stream's MOS, its `stream_end` summary, and the per-direction quality a
//! call's final event carries.

use super::stream::{Stream, StreamKey};
use super::{dtmf, interval};
use crate::rtp::{codec, emodel};
use crate::track::counters::Counters;
use crate::track::event::{DirectionQuality, Event, EventSink, StreamEnd, Text, Ts, fill};
use embassy_time::Instant;

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
fn mos_summary(st: &Stream, delay_ms: f64) -> (Option<f64>, Option<f64>) {
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

/// Ends stream `key`: reports its last second and any digit cut short, then its
/// `stream_end` (when confirmed), which is also returned.
pub(super) fn end_stream(
    key: StreamKey,
    st: &mut Stream,
    now: Instant,
    reason: &str,
    out: &mut impl EventSink,
    delay_ms: f64,
    counters: &mut Counters,
) -> StreamEnd {
    if st.packets_in_second > 0 {
        interval::report_interval(key, st, out, delay_ms);
    }
    dtmf::flush(key, st, counters, out);
    let t = st.stats.totals();
    let mut r = Text::new();
    fill(&mut r, reason);
    let end = StreamEnd {
        ts: Ts::from_instant(now.max(st.last_seen)),
        call_id: st.call_id.clone(),
        ssrc: key.ssrc,
        src: Some(key.src),
        dst: Some(key.dst),
        pt: st.pt,
        codec: st.codec.clone(),
        packets: t.packets,
        expected: t.expected,
        lost: t.lost,
        duplicates: t.duplicates,
        out_of_order: t.out_of_order,
        jitter_max_ms: round3(t.jitter_max_ms),
        jitter_mean_ms: round3(t.jitter_mean_ms),
        delta_max_ms: round3(t.delta_max_ms),
        mos_min: st.mos_min,
        mos_mean: (st.mos_n > 0).then(|| round3(st.mos_sum / st.mos_n as f64)),
        rtcp_fraction_lost: st.rtcp.fraction_lost,
        rtcp_cumulative_lost: st.rtcp.cumulative_lost,
        rtcp_jitter_ms: st.rtcp.jitter_ms.map(round3),
        rtcp_rtt_ms: st.rtcp.rtt_ms.map(round3),
        rtcp_xr_loss_pct: st.rtcp.xr.map(|x| round3(x.loss_ratio() * 100.0)),
        rtcp_xr_discard_pct: st.rtcp.xr.map(|x| round3(x.discard_ratio() * 100.0)),
        rtcp_xr_r_factor: st.rtcp.xr.and_then(|x| x.r()),
        rtcp_xr_mos_lq: st.rtcp.xr.and_then(|x| x.mos_lq()),
        rtcp_xr_mos_cq: st.rtcp.xr.and_then(|x| x.mos_cq()),
        rtcp_xr_rtt_ms: st.rtcp.xr.and_then(|x| x.round_trip_ms()).map(f64::from),
        reason: r,
    };
    if st.confirmed() {
        out.emit(&Event::StreamEnd(end.clone()));
    }
    end
}

#[cfg(test)]
mod tests {
    use super::super::stream::testing::*;
    use super::*;

    /// Sends `n` packets of 20 ms from `src` to `dst` (SSRC `ssrc`), the first at `t0` µs.
    fn send(m: &mut super::super::Media, src: &str, dst: &str, ssrc: u32, n: u16, t0: u64) {
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        for i in 0..n {
            let pkt = rtp(0, 1 + i, 160 * u32::from(i), ssrc, &[0xff; 160]);
            m.on_udp(
                us(t0 + 20_000 * u64::from(i)),
                at(src),
                at(dst),
                &pkt,
                &mut c,
                &mut out,
            );
        }
    }

    #[test]
    fn g711_without_loss_scores_the_e_models_best_and_loss_lowers_it() {
        let mut st_codec = crate::track::event::Codec::new();
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

    #[test]
    fn a_closed_calls_streams_end_once_idle_with_the_calls_reason() {
        let mut m = media_with_call();
        send(&mut m, CALLER, CALLEE, 1, 10, 1_000_000);
        m.close_call(1, "call_ended");
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        m.tick(us(2_000_000), &mut c, &mut out);
        assert!(
            !out.iter().any(|e| matches!(e, Event::StreamEnd(_))),
            "not idle yet"
        );
        m.tick(us(4_000_000), &mut c, &mut out);
        let ends: Vec<(&str, u64)> = out
            .iter()
            .filter_map(|e| match e {
                Event::StreamEnd(s) => Some((s.reason.as_str(), s.packets)),
                _ => None,
            })
            .collect();
        assert_eq!(ends, [("call_ended", 10)]);
        assert_eq!((c.rtp.streams_ended, m.stream_stats().len), (1, 0));
    }

    #[test]
    fn an_open_stream_with_no_packets_ends_by_timeout() {
        let mut m = media_with_call();
        send(&mut m, CALLER, CALLEE, 1, 1, 1_000_000);
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        m.tick(us(30_000_000), &mut c, &mut out);
        assert!(!out.iter().any(|e| matches!(e, Event::StreamEnd(_))));
        m.tick(us(32_000_000), &mut c, &mut out);
        let Some(Event::StreamEnd(end)) = out.iter().find(|e| matches!(e, Event::StreamEnd(_)))
        else {
            panic!("{out:?}")
        };
        assert_eq!((end.reason.as_str(), end.packets), ("timeout", 1));
    }
}
