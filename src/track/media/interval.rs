//! Intervals: one `rtp_interval` event per stream per second of packet time in which it
//! carried packets.

use super::quality::{mos_for, round3};
use super::stream::{Stream, StreamKey};
use crate::track::event::{Event, EventSink, RtpInterval, Ts};

/// Reports the interval being accumulated. Returns `false` (and keeps accumulating) while
/// a heuristic stream is unconfirmed.
pub(super) fn report_interval(
    key: StreamKey,
    st: &mut Stream,
    out: &mut impl EventSink,
    delay_ms: f64,
) -> bool {
    if !st.confirmed() {
        return false;
    }
    let f = st.stats.take_interval();
    st.packets_in_second = 0;
    let capture_loss = core::mem::take(&mut st.capture_loss);
    let (r, mos) = if st.event_pt == Some(st.pt) {
        (None, None)
    } else {
        mos_for(st, f.expected, f.lost, f.shape.burst_r(), delay_ms)
    };
    if let Some(m) = mos {
        st.mos_min = Some(st.mos_min.map_or(m, |x: f64| x.min(m)));
        st.mos_sum += m;
        st.mos_n += 1;
    }
    out.emit(&Event::RtpInterval(RtpInterval {
        ts: Ts(st.second * 1_000_000),
        call_id: st.call_id.clone(),
        ssrc: key.ssrc,
        src: Some(key.src),
        dst: Some(key.dst),
        pt: st.pt,
        codec: st.codec.clone(),
        packets: f.packets as u32,
        expected: f.expected as u32,
        lost: f.lost as i32,
        duplicates: f.duplicates as u32,
        out_of_order: f.out_of_order as u32,
        jitter_ms: round3(f.jitter_ms),
        jitter_max_ms: round3(f.jitter_max_ms),
        delta_max_ms: round3(f.delta_max_ms),
        r_factor: r,
        mos,
        burst_r: f.shape.burst_r().map(round3),
        loss_runs: f.shape.runs,
        loss_gaps: f.shape.gaps,
        capture_loss,
    }));
    true
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::track::counters::Counters;
    use crate::track::event::Event;

    fn intervals(out: &[Event]) -> Vec<(u64, u32, u32, i32, bool)> {
        out.iter()
            .filter_map(|e| match e {
                Event::RtpInterval(i) => Some((
                    i.ts.0 / 1_000_000,
                    i.packets,
                    i.expected,
                    i.lost,
                    i.capture_loss,
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_second_is_reported_when_the_next_one_starts_with_its_loss() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        // Second 10: sequence 1..=50 with 3 and 4 missing; second 11: one packet.
        for seq in (1..=50u16).filter(|s| *s != 3 && *s != 4) {
            let t = 10_000_000 + 20_000 * u64::from(seq - 1);
            let pkt = rtp(0, seq, 160 * u32::from(seq), 9, &[0xff; 160]);
            m.on_udp(us(t), at(CALLER), at(CALLEE), &pkt, &mut c, &mut out);
        }
        assert!(intervals(&out).is_empty(), "second 10 still open");
        let pkt = rtp(0, 51, 160 * 51, 9, &[0xff; 160]);
        m.on_udp(
            us(11_000_000),
            at(CALLER),
            at(CALLEE),
            &pkt,
            &mut c,
            &mut out,
        );
        assert_eq!(intervals(&out), [(10, 48, 50, 2, false)]);
        let Some(Event::RtpInterval(i)) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(i.call_id.as_deref(), Some("c1"));
        assert_eq!(i.codec.as_str(), "PCMU");
        assert!(i.mos.is_some_and(|m| m > 1.0 && m < 4.5), "{:?}", i.mos);
    }

    #[test]
    fn the_tick_reports_a_finished_second_and_flags_capture_loss() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        m.set_capture_loss(true);
        let pkt = rtp(0, 1, 160, 9, &[0xff; 160]);
        m.on_udp(
            us(10_500_000),
            at(CALLER),
            at(CALLEE),
            &pkt,
            &mut c,
            &mut out,
        );
        m.set_capture_loss(false);
        m.tick(us(11_000_000), &mut c, &mut out, |_, _, _, _, _| {});
        assert_eq!(intervals(&out), [(10, 1, 1, 0, true)]);
        m.tick(us(12_000_000), &mut c, &mut out, |_, _, _, _, _| {});
        assert_eq!(
            intervals(&out).len(),
            1,
            "a second without packets reports nothing"
        );
    }
}
