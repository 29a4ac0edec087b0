//! Reports: a stream's `stream_end` summary, with its last second and any digit cut short.

use super::quality::{density_pct, round3};
use super::stream::{Stream, StreamKey};
use super::{dtmf, interval};
use crate::track::counters::Counters;
use crate::track::event::{Event, EventSink, StreamEnd, Text, Ts, fill};
use embassy_time::Instant;

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
    // Settle the loss pattern's last packets so the last second and the totals agree.
    st.stats.finish();
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
        burst_r: t.shape.burst_r().map(round3),
        loss_runs: t.shape.runs,
        loss_gaps: t.shape.gaps,
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
        rtcp_xr_burst_density_pct: st.rtcp.xr.map(|x| density_pct(x.burst_density)),
        rtcp_xr_gap_density_pct: st.rtcp.xr.map(|x| density_pct(x.gap_density)),
        reason: r,
    };
    if st.confirmed() {
        out.emit(&Event::StreamEnd(end.clone()));
    }
    end
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn a_closed_calls_streams_end_once_idle_with_the_calls_reason() {
        let mut m = media_with_call();
        send(&mut m, CALLER, CALLEE, 1, 10, 1_000_000);
        m.close_call(call(1), "call_ended");
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        m.tick(us(2_000_000), &mut c, &mut out, |_, _, _, _, _| {});
        assert!(
            !out.iter().any(|e| matches!(e, Event::StreamEnd(_))),
            "not idle yet"
        );
        m.tick(us(4_000_000), &mut c, &mut out, |_, _, _, _, _| {});
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
        m.tick(us(30_000_000), &mut c, &mut out, |_, _, _, _, _| {});
        assert!(!out.iter().any(|e| matches!(e, Event::StreamEnd(_))));
        m.tick(us(32_000_000), &mut c, &mut out, |_, _, _, _, _| {});
        let Some(Event::StreamEnd(end)) = out.iter().find(|e| matches!(e, Event::StreamEnd(_)))
        else {
            panic!("{out:?}")
        };
        assert_eq!((end.reason.as_str(), end.packets), ("timeout", 1));
    }
}
