//! The demo capture (the project's own fixture) against its ground truth: every call's
//! outcome as scripted, and every stream's packets and loss as the generator made them.

mod common;
use voipsensor::fixture::{self, Builder};
use voipsensor::track::event::{CallEventKind as K, Event};
use voipsensor::track::tracker::TrackerConfig;

fn replay_demo() -> (Vec<Event>, Vec<fixture::CallSummary>) {
    let mut b = Builder::new();
    let truth = fixture::demo(&mut b);
    let (ev, _) = common::run_frames(&b, TrackerConfig::default());
    (ev, truth)
}

fn kinds(ev: &[Event], id: &str) -> Vec<K> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Call(c) if c.call_id.as_str() == format!("{id}@voipsensor.demo") => {
                Some(c.event)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_demo_call_has_its_scripted_outcome() {
    let (ev, truth) = replay_demo();
    assert_eq!(truth.len(), 12);
    use K::*;
    let want: &[(&str, &[K])] = &[
        ("answered", &[Invite, Ringing, Answered, Ended]),
        ("busy", &[Invite, Failed]),
        ("cancelled", &[Invite, Ringing, Cancelled]),
        ("hold", &[Invite, Ringing, Answered, Hold, Resume, Ended]),
        ("earlymedia", &[Invite, EarlyMedia, Answered, Ended]),
        ("tcp", &[Invite, Ringing, Answered, Ended]),
        ("ipv6", &[Invite, Ringing, Answered, Ended]),
        ("vlan", &[Invite, Ringing, Answered, Ended]),
        ("rejected", &[Invite, Failed]),
        ("fragmented", &[Invite, Ringing, Answered, Ended]),
        ("erspan", &[Invite, Ringing, Answered, Ended]),
        ("tcp-cancelled", &[Invite, Ringing, Cancelled]),
    ];
    for (id, k) in want {
        assert_eq!(kinds(&ev, id), k.to_vec(), "{id}");
    }
}

#[test]
fn every_demo_stream_counts_what_the_generator_sent() {
    let (ev, truth) = replay_demo();
    let ends: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::StreamEnd(s) => Some(s),
            _ => None,
        })
        .collect();
    let mut checked = 0;
    for t in &truth {
        for st in [&t.a_to_b, &t.b_to_a].into_iter().flatten() {
            // Find our stream by packet count and first sequence number's neighbourhood:
            // the generator's SSRCs are not in the summary, its counts are.
            let ours: Vec<_> = ends
                .iter()
                .filter(|e| e.packets == st.emitted as u64)
                .collect();
            assert!(
                !ours.is_empty(),
                "no stream with {} packets: {st:?}",
                st.emitted
            );
            // Lost as Wireshark counts it: duplicates count as received.
            assert!(
                ours.iter()
                    .any(|e| e.lost + e.duplicates as i64 == st.lost as i64
                        && e.duplicates == st.duplicated as u64
                        && e.call_id.is_some()),
                "{st:?} vs {ours:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} streams checked");
}
