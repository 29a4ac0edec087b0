//! DTMF: RFC 4733 telephone-events of a stream, reported as digits.

use super::stream::{Stream, StreamKey};
use crate::rtp::packet::{RtpPacket, TelephoneEvent};
use crate::rtp::stats::Dtmf;
use crate::track::counters::Counters;
use crate::track::event::{DtmfEvent, Event, EventSink, Ts};
use embassy_time::Instant;

/// RFC 4733's clock is 8 kHz in practice (and in Wireshark).
const EVENT_CLOCK: u32 = 8000;

fn dtmf_event(now: Instant, key: StreamKey, st: &Stream, d: &Dtmf) -> DtmfEvent {
    DtmfEvent {
        ts: Ts::from_instant(now),
        call_id: st.call_id.clone(),
        ssrc: key.ssrc,
        src: Some(key.src),
        dst: Some(key.dst),
        digit: d.digit,
        event_code: d.event,
        duration_ms: d.duration_ms,
        volume: d.volume,
    }
}

/// An event packet of stream `key`: a digit completes once; digits of a stream not yet
/// confirmed are not reported.
pub(super) fn on_event_packet(
    now: Instant,
    key: StreamKey,
    st: &mut Stream,
    pkt: &RtpPacket,
    counters: &mut Counters,
    out: &mut impl EventSink,
) {
    if let Ok(ev) = TelephoneEvent::new_checked(pkt.payload())
        && let Some(d) = st.dtmf.on_event(pkt.timestamp(), &ev, EVENT_CLOCK)
        && st.confirmed()
    {
        counters.rtp.dtmf_events += 1;
        out.emit(&Event::Dtmf(dtmf_event(now, key, st, &d)));
    }
}

/// The stream ends: an event whose end packets never came is still a digit the caller
/// pressed.
pub(super) fn flush(
    key: StreamKey,
    st: &mut Stream,
    counters: &mut Counters,
    out: &mut impl EventSink,
) {
    if let Some(d) = st.dtmf.flush(EVENT_CLOCK)
        && st.confirmed()
    {
        counters.rtp.dtmf_events += 1;
        out.emit(&Event::Dtmf(dtmf_event(st.last_seen, key, st, &d)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::track::counters::Counters;
    use crate::track::event::Event;

    /// RFC 4733 payload: event, end bit, volume 10, duration.
    fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [code, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
    }

    fn digits(out: &[Event]) -> Vec<(char, u32)> {
        out.iter()
            .filter_map(|e| match e {
                Event::Dtmf(d) => Some((d.digit, d.duration_ms)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_event_with_its_end_packets_is_one_digit() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        // Digit 5, one RTP timestamp, durations growing to 800 units (100 ms at 8 kHz);
        // the end packet is sent three times, as RFC 4733 asks.
        let steps = [
            (160, false),
            (480, false),
            (800, true),
            (800, true),
            (800, true),
        ];
        for (i, (dur, end)) in steps.into_iter().enumerate() {
            let pkt = rtp(101, 1 + i as u16, 8000, 5, &event(5, end, dur));
            caller_sends(&mut m, &mut c, &mut out, i, &pkt);
        }
        assert_eq!(digits(&out), [('5', 100)]);
        assert_eq!(c.rtp.dtmf_events, 1);
    }

    #[test]
    fn an_event_cut_short_is_reported_when_its_stream_ends() {
        let mut m = media_with_call();
        let mut c = Counters::default();
        let mut out: Vec<Event> = Vec::new();
        for (i, dur) in [160u16, 320].into_iter().enumerate() {
            let pkt = rtp(101, 1 + i as u16, 8000, 5, &event(11, false, dur));
            caller_sends(&mut m, &mut c, &mut out, i, &pkt);
        }
        assert!(digits(&out).is_empty());
        m.stop_all(us(2_000_000), "end_of_capture", &mut c, &mut out);
        assert_eq!(digits(&out), [('#', 40)]);
    }
}
