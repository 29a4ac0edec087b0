//! RTP stream figures against tshark's `rtp,streams` tables for every shared capture that
//! carries RTP (`../shared/pcaps/expected/NAME.txt`; a visible skip, a failure under `CI`,
//! when `../shared` is absent).
//!
//! Rule: a stream linked to a call (call_id set) is compared with the SDP-linked table
//! [A], any other with the heuristic table [B]. Packets and lost must be equal; mean and
//! max jitter within 1 % or 0.01 ms; max delta within 0.01 ms.
//!
//! Duplicates: like Wireshark (and RFC 3550's cumulative lost), `lost` is
//! `expected - received` where a duplicate counts as received, so `lost` follows tshark
//! exactly and goes negative when duplicates outnumber losses. voipsensor also reports
//! `duplicates` apart: the packets the network really lost are `lost + duplicates`.

mod common;
use common::tshark::{Row, close, parse_row};
use common::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use voipsensor::track::event::{Event, MediaProblem, StreamEnd};

fn tables(text: &str) -> (Vec<Row>, Vec<Row>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut which = 0;
    for line in text.lines() {
        if line.starts_with("###") {
            which = if !line.contains("rtp,streams") {
                0
            } else if line.contains("heuristic_rtp") {
                2
            } else {
                1
            };
            continue;
        }
        if let Some(r) = parse_row(line) {
            match which {
                1 => a.push(r),
                2 => b.push(r),
                _ => {}
            }
        }
    }
    if b.is_empty() {
        b = a.clone();
    }
    (a, b)
}

fn key(s: &StreamEnd) -> (SocketAddr, SocketAddr, u32) {
    (s.src.unwrap(), s.dst.unwrap(), s.ssrc)
}

/// Per-second `packets` and `lost` of each stream sum to its `stream_end`.
fn check_interval_sums(name: &str, events: &[Event]) {
    let mut acc: HashMap<(SocketAddr, SocketAddr, u32), (u64, i64)> = HashMap::new();
    for e in events {
        match e {
            Event::RtpInterval(i) => {
                let a = acc
                    .entry((i.src.unwrap(), i.dst.unwrap(), i.ssrc))
                    .or_default();
                a.0 += i.packets as u64;
                a.1 += i.lost as i64;
            }
            Event::StreamEnd(s) => {
                let sums = acc.remove(&key(s)).unwrap_or_default();
                assert_eq!(
                    sums,
                    (s.packets, s.lost),
                    "{name}: intervals of {:?} do not sum to its stream_end",
                    key(s)
                );
            }
            _ => {}
        }
    }
    assert!(
        acc.is_empty(),
        "{name}: intervals without stream_end {acc:?}"
    );
}

/// Replays `file`, compares every reported stream with tshark, and returns the events.
/// `skip` lists (ssrc, why) where tshark is known to mislead; those are checked by the
/// caller instead.
#[track_caller]
fn check(file: &str, expected: &str, skip: &[(u32, &str)]) -> Option<Vec<Event>> {
    let p = shared(file)?;
    let text = std::fs::read_to_string(shared(expected)?).unwrap();
    let (a, b) = tables(&text);
    let (events, _) = replay(&p);
    let ends = stream_ends(&events);
    let find = |t: &[Row], k: (SocketAddr, SocketAddr, u32)| {
        t.iter().find(|r| (r.src, r.dst, r.ssrc) == k).cloned()
    };
    for s in &ends {
        if let Some((_, why)) = skip.iter().find(|(x, _)| *x == s.ssrc) {
            eprintln!("{file}: {:08X} not compared: {why}", s.ssrc);
            continue;
        }
        let k = key(s);
        let row = if s.call_id.is_some() {
            find(&a, k).or_else(|| find(&b, k))
        } else {
            find(&b, k)
        };
        let Some(r) = row else {
            panic!("{file}: stream {k:?} is not in tshark's table");
        };
        eprintln!(
            "{file} {:08X}: pkts {}/{} lost {}/{} dup {} jmax {}/{} jmean {}/{} dmax {}/{}",
            s.ssrc,
            s.packets,
            r.packets,
            s.lost,
            r.lost,
            s.duplicates,
            s.jitter_max_ms,
            r.jitter_max,
            s.jitter_mean_ms,
            r.jitter_mean,
            s.delta_max_ms,
            r.delta_max
        );
        assert_eq!((s.packets, s.lost), (r.packets, r.lost), "{file} {k:?}");
        assert!(
            close(s.jitter_max_ms, r.jitter_max),
            "{file} {k:?} max jitter"
        );
        assert!(
            close(s.jitter_mean_ms, r.jitter_mean),
            "{file} {k:?} mean jitter"
        );
        assert!(
            (s.delta_max_ms - r.delta_max).abs() <= 0.01,
            "{file} {k:?} max delta"
        );
    }
    // Nothing tshark found is missing (each stream reported exactly once).
    for r in &b {
        let n = ends
            .iter()
            .filter(|s| key(s) == (r.src, r.dst, r.ssrc))
            .count();
        assert_eq!(n, 1, "{file}: tshark stream {r:?} reported {n} times");
    }
    check_interval_sums(file, &events);
    Some(events)
}

#[test]
fn g711_call_streams_match_tshark_and_the_sip_ones_link_to_the_call() {
    let Some(ev) = check(
        "sip_call_rtp_g711.pcap",
        "expected/sip_call_rtp_g711.txt",
        &[],
    ) else {
        return;
    };
    // [A] has 3 SDP streams: the two of SIP call 12013223 (40376 <-> 8000) are linked to
    // it; the third (30000 -> 40362) was set up by MGCP (CRCX 10511), which voipsensor
    // does not read, so it is found by the heuristic and carries no call_id. The two
    // relayed legs (4800 <-> 40378) are heuristic in tshark too ([B] only).
    let ends = stream_ends(&ev);
    assert_eq!(ends.len(), 5);
    for s in &ends {
        let sip = [40376, 8000].contains(&s.src.unwrap().port());
        assert_eq!(
            s.call_id.as_deref() == Some("12013223@200.57.7.195"),
            sip,
            "{s:?}"
        );
    }
}

#[test]
fn tcp_call_streams_match_tshark_and_carry_rtcp_figures() {
    let Some(ev) = check(
        "sip_tcp_call_rtp_rtcp.pcap",
        "expected/sip_tcp_call_rtp_rtcp.txt",
        &[],
    ) else {
        return;
    };
    let ends = stream_ends(&ev);
    assert_eq!(ends.len(), 2);
    assert!(ends.iter().all(|s| s.call_id.is_some()));
    // The capture's one receiver report (from 10.33.6.100:6001) describes 6050 -> 6000.
    let reported = ends.iter().find(|s| s.ssrc == 0x42F4_33D4).unwrap();
    assert_eq!(reported.rtcp_fraction_lost, Some(0.0));
    assert_eq!(reported.rtcp_cumulative_lost, Some(0));
    assert_eq!(reported.rtcp_jitter_ms, Some(0.0));
    // Its LSR matches the sender report seen 6050's side send; SR → RR as seen at the
    // mirror (frames 14 → 17: 17.370 ms) minus DLSR (1048/65536 s = 15.991 ms) = 1.379 ms.
    let rtt = reported
        .rtcp_rtt_ms
        .expect("round-trip time from SR/RR timing");
    assert!((rtt - 1.379).abs() < 0.002, "{rtt}");
}

#[test]
fn fax_call_streams_match_tshark_and_report_their_events() {
    let misdecoded = "after the re-INVITE offering T.38 (answered 488) tshark decodes this \
                      direction as T.38/UDPTL, so it stops counting at 1838 packets and \
                      counts the packets it decoded as T.38 in between as lost (6)";
    let Some(ev) = check(
        "fax_call_t38_reinvite_dtmf.pcap",
        "expected/fax_call_t38_reinvite_dtmf.txt",
        &[(0x0EAF_0EAF, misdecoded)],
    ) else {
        return;
    };
    // What voipsensor reports for it: the whole call's audio, in sequence, none lost
    // (every sequence number from the first to the last is present).
    let s = stream_ends(&ev)
        .into_iter()
        .find(|s| s.ssrc == 0x0EAF_0EAF)
        .unwrap();
    assert_eq!((s.packets, s.expected, s.lost), (3848, 3848, 0));
    // One stream per direction, even though packets were still in flight after the BYE.
    assert_eq!(stream_ends(&ev).len(), 2);
    // Events: an RFC 4733 ANS tone (event 32, PT 102 from SDP) towards 16756, and a
    // Cisco NSE (event 194, unsignalled PT 100, same payload format) towards 15580.
    let dtmf: Vec<(u16, u8)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Dtmf(d) => Some((d.dst.unwrap().port(), d.event_code)),
            _ => None,
        })
        .collect();
    assert!(dtmf.contains(&(16756, 32)), "{dtmf:?}");
    assert!(dtmf.contains(&(15580, 194)), "{dtmf:?}");
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Dtmf(d) if d.call_id.is_some()))
    );
}

#[test]
fn dtmf_only_captures_keep_tsharks_negative_loss_and_count_duplicates_apart() {
    for f in ["sipp_dtmf_2833_1", "sipp_dtmf_2833_pound"] {
        let Some(ev) = check(&format!("{f}.pcap"), &format!("expected/{f}.txt"), &[]) else {
            return;
        };
        // The end packet is sent three times (RFC 4733 §2.5.1.4) with one sequence
        // number: tshark says "-2 lost". We report the same `lost` and 2 duplicates, so
        // real loss (lost + duplicates) is 0.
        let s = stream_ends(&ev)[0];
        assert_eq!((s.packets, s.lost, s.duplicates), (10, -2, 2));
        assert!(ev.iter().any(|e| matches!(e, Event::Dtmf(_))), "{f}");
    }
}

#[test]
fn rtpproxy_dtmf_gaps_are_reported_as_loss_like_tshark() {
    let Some(ev) = check(
        "rtpproxy_dtmf_rfc2833.pcap",
        "expected/rtpproxy_dtmf_rfc2833.txt",
        &[],
    ) else {
        return;
    };
    // The test data has sequence gaps (rtpproxy's test cut packets out): tshark's ~50 %
    // "lost" is real as far as the wire shows. We agree on lost (141 and 50); the 52
    // duplicates (repeated end packets) mean 193 sequence numbers never arrived.
    let ends = stream_ends(&ev);
    let big = ends.iter().find(|s| s.ssrc == 0x37ED_87F3).unwrap();
    assert_eq!((big.packets, big.lost, big.duplicates), (151, 141, 52));
    let digits: String = ev
        .iter()
        .filter_map(|e| match e {
            Event::Dtmf(d) if d.ssrc == 0x37ED_87F3 => Some(d.digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "123456789*0#5");
}

#[test]
fn rtp_only_and_other_captures_match_tshark() {
    for f in [
        "sipp_g711a_rtp_only",
        "rtpproxy_rtp_rtcp",
        "rtpproxy_srtp_stream",
        "ndpi_rtp_vlan_opus_h263",
        "aaa_register_cancel_4xx",
    ] {
        let ext = if f.starts_with("ndpi") {
            "pcapng"
        } else {
            "pcap"
        };
        // ndpi's TCP 40252 → 5000 is RTP over TCP (RFC 4571), which the expected table
        // (no decode-as) lacks: tests/turn_rtp.rs holds it against `-d tcp.port==5000,rtp`.
        let skip: &[(u32, &str)] = match f {
            "ndpi_rtp_vlan_opus_h263" => &[(0, "RFC 4571 over TCP, see tests/turn_rtp.rs")],
            _ => &[],
        };
        let Some(ev) = check(&format!("{f}.{ext}"), &format!("expected/{f}.txt"), skip) else {
            return;
        };
        // NetBIOS/DNS noise in the aaa capture must not become streams.
        assert!(!stream_ends(&ev).is_empty(), "{f}");
    }
}

#[test]
fn generated_loopback_calls_match_tshark() {
    for f in ["sipp_loopback_clean", "sipp_loopback_nftloss5_dport6000"] {
        let Some(ev) = check(
            &format!("generated/{f}.pcap"),
            &format!("generated/{f}.txt"),
            &[],
        ) else {
            return;
        };
        assert!(stream_ends(&ev).iter().all(|s| s.call_id.is_some()), "{f}");
    }
}

#[test]
fn a_one_way_call_in_a_real_capture_is_flagged_once() {
    let Some(p) = shared("sip_call_rtp_g711.pcap") else {
        return;
    };
    let (ev, c) = replay(&p);
    // 200.57.7.204:8000 -> :40376 pauses for 5.8 s (tshark's max delta 5843 ms) while
    // the other direction keeps flowing.
    let h: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::MediaHealth(h) => Some(h),
            _ => None,
        })
        .collect();
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].problem, MediaProblem::OneWayMedia);
    assert_eq!(h[0].src, Some("200.57.7.204:8000".parse().unwrap()));
    assert_eq!(c.rtp.health_events, 1);
}

// --- Media health on fixture calls (no shared captures needed) ---

mod health {
    use std::net::{IpAddr, SocketAddr};
    use voipsensor::fixture::{Builder, CallSpec, Outcome, add_call};
    use voipsensor::track::event::{Event, MediaHealth, MediaProblem};
    use voipsensor::track::tracker::{Tracker, TrackerConfig};
    use voipsensor::wire::LinkType;

    /// Source address of an Ethernet/IPv4/UDP frame (the fixture's default framing).
    fn udp_src(f: &[u8]) -> Option<SocketAddr> {
        if f.get(12..14)? != [0x08, 0x00] || *f.get(23)? != 17 {
            return None;
        }
        let ihl = (*f.get(14)? as usize & 0x0f) * 4;
        let ip: [u8; 4] = f.get(26..30)?.try_into().ok()?;
        let port = u16::from_be_bytes(f.get(14 + ihl..16 + ihl)?.try_into().ok()?);
        Some(SocketAddr::new(IpAddr::from(ip), port))
    }

    /// A 20 s answered call; `drop(src, ts_us, answered_us)` removes RTP frames from the
    /// capture (the mirror never saw them). Returns the health events.
    fn run(outcome: Outcome, drop: impl Fn(SocketAddr, u64, u64) -> bool) -> Vec<MediaHealth> {
        let caller: SocketAddr = "10.1.1.1:5060".parse().unwrap();
        let callee: SocketAddr = "10.2.2.2:5060".parse().unwrap();
        let mut spec = CallSpec::new("health@test", caller, callee, 1_700_000_000_000_000);
        spec.outcome = outcome;
        spec.talk_ms = 20_000;
        let rtp = spec.rtp.unwrap();
        let mut b = Builder::new();
        let sum = add_call(&mut b, &spec);
        let answered = sum.answered_us.unwrap();
        let media = [
            SocketAddr::new(caller.ip(), rtp.port_a),
            SocketAddr::new(callee.ip(), rtp.port_b),
        ];
        let mut t = Tracker::new(TrackerConfig::default());
        let mut ev = Vec::new();
        for (ts, f) in b.frames() {
            if let Some(src) = udp_src(f)
                && media.contains(&src)
                && drop(src, ts, answered)
            {
                continue;
            }
            t.on_frame(
                embassy_time::Instant::from_micros(ts),
                LinkType::Ethernet,
                f,
                &mut ev,
            );
        }
        t.finish("end_of_capture", &mut ev);
        ev.into_iter()
            .filter_map(|e| match e {
                Event::MediaHealth(h) => Some(h),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn healthy_and_held_calls_raise_no_media_health_event() {
        assert_eq!(run(Outcome::Answered, |_, _, _| false), vec![]);
        assert_eq!(run(Outcome::Hold, |_, _, _| false), vec![]);
    }

    #[test]
    fn callee_media_missing_is_one_way_media_once_naming_the_silent_direction() {
        let h = run(Outcome::Answered, |src, _, _| {
            src.ip().to_string() == "10.2.2.2"
        });
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].problem, MediaProblem::OneWayMedia);
        assert_eq!(h[0].src.unwrap().ip().to_string(), "10.2.2.2");
        assert!(h[0].silent_ms > 5000 && h[0].silent_ms < 7000, "{h:?}");
    }

    #[test]
    fn no_rtp_at_all_is_no_media_after_answer() {
        let h = run(Outcome::Answered, |_, _, _| true);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].problem, MediaProblem::NoMediaAfterAnswer);
    }

    #[test]
    fn rtp_stopping_both_ways_mid_call_is_media_stopped_not_one_way() {
        let h = run(Outcome::Answered, |_, ts, answered| {
            ts > answered + 8_000_000
        });
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].problem, MediaProblem::MediaStopped);
    }
}
