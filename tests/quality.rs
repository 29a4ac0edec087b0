//! Quality figures against independent oracles: streams generated with Gilbert loss of chosen
//! p and q (the project's fixture) give G.107's BurstR = 1/(p+q) and geometric loss runs;
//! bursty loss scores worse than random loss of the same rate; a call's final quality covers
//! every stream of each direction.

mod common;
use std::net::SocketAddr;
use voipsensor::fixture::{Builder, CallSpec, Impairments, Outcome};
use voipsensor::track::event::{CallEvent, Event, StreamEnd};
use voipsensor::track::tracker::TrackerConfig;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// One answered call of `talk_s` seconds with `imp` on both directions.
fn call(id: &str, talk_s: u32, imp: Impairments) -> (Vec<Event>, CallSpec) {
    let mut b = Builder::new();
    let mut c = CallSpec::new(id, sa("10.0.0.1:5060"), sa("10.0.0.2:5060"), 1_000_000);
    c.talk_ms = talk_s * 1000;
    if let Some(r) = c.rtp.as_mut() {
        r.impairments = imp;
    }
    voipsensor::fixture::add_call(&mut b, &c);
    let (ev, _) = common::run_frames(&b, TrackerConfig::default());
    (ev, c)
}

fn stream_ends(ev: &[Event]) -> Vec<&StreamEnd> {
    ev.iter()
        .filter_map(|e| match e {
            Event::StreamEnd(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn final_call(ev: &[Event]) -> &CallEvent {
    common::finals(ev)
        .into_iter()
        .next()
        .expect("a final call event")
}

fn gilbert(p: f64, q: f64, seed: u64) -> Impairments {
    Impairments {
        gilbert: (p, q),
        seed,
        ..Impairments::none()
    }
}

#[test]
fn gilbert_loss_gives_g107_burst_ratio_and_geometric_runs() {
    for (p, q, seed) in [(0.02, 0.4, 3), (0.01, 0.25, 5)] {
        let (ev, _) = call("gilbert@test", 3600, gilbert(p, q, seed));
        let ends = stream_ends(&ev);
        assert_eq!(ends.len(), 2, "one stream each way");
        let want = 1.0 / (p + q);
        for s in ends {
            let got = s.burst_r.expect("loss was seen");
            eprintln!(
                "gilbert p {p} q {q}: {} packets, {} lost, BurstR measured {got} vs 1/(p+q) {want:.3}",
                s.packets, s.lost
            );
            assert!((got / want - 1.0).abs() < 0.05, "BurstR {got} vs {want}");
            // Runs of lost packets are geometric with parameter q.
            let runs: u32 = s.loss_runs.iter().sum();
            let share = |k: usize| f64::from(s.loss_runs[k]) / f64::from(runs);
            let (p1, p2, p3) = (q, q * (1.0 - q), q * (1.0 - q).powi(2));
            assert!((share(0) - p1).abs() < 0.03, "P(1) {} vs {p1}", share(0));
            assert!((share(1) - p2).abs() < 0.03, "P(2) {} vs {p2}", share(1));
            assert!((share(2) - p3).abs() < 0.03, "P(3) {} vs {p3}", share(2));
        }
    }
}

#[test]
fn random_loss_keeps_burst_ratio_one() {
    let imp = Impairments {
        loss: 0.03,
        seed: 9,
        ..Impairments::none()
    };
    let (ev, _) = call("random@test", 1800, imp);
    for s in stream_ends(&ev) {
        let b = s.burst_r.expect("loss was seen");
        assert!((b - 1.0).abs() < 0.05, "random loss BurstR {b}");
    }
}

#[test]
fn bursty_loss_scores_worse_than_random_loss_of_the_same_rate() {
    // Gilbert p 0.025, q 0.2: 11.1 % loss in runs of 5 on average (BurstR 4.4).
    let (p, q) = (0.025, 0.2);
    let (bursty, _) = call("bursty@test", 600, gilbert(p, q, 21));
    let random_imp = Impairments {
        loss: p / (p + q),
        seed: 22,
        ..Impairments::none()
    };
    let (random, _) = call("random@test", 600, random_imp);
    let (b, r) = (stream_ends(&bursty), stream_ends(&random));
    for (b, r) in b.iter().zip(&r) {
        let loss = |s: &StreamEnd| s.lost as f64 / s.expected as f64;
        assert!((loss(b) - loss(r)).abs() < 0.01, "same loss rate");
        let (mb, mr) = (b.mos_mean.unwrap(), r.mos_mean.unwrap());
        eprintln!(
            "loss {:.3}/{:.3}: bursty MOS {mb} (BurstR {:?}), random MOS {mr} (BurstR {:?})",
            loss(b),
            loss(r),
            b.burst_r,
            r.burst_r
        );
        assert!(
            mb < mr - 0.15,
            "bursty {mb} should be clearly below random {mr}"
        );
    }
    // The call's own quality says the same.
    let qb = final_call(&bursty).quality_caller.clone().unwrap();
    let qr = final_call(&random).quality_caller.clone().unwrap();
    assert!(qb.mos_mean.unwrap() < qr.mos_mean.unwrap());
    assert!(qb.burst_r.unwrap() > 3.0 && qr.burst_r.unwrap() < 1.2);
}

#[test]
fn a_call_whose_media_moves_ports_on_resume_sums_all_its_streams() {
    let mut b = Builder::new();
    let mut c = CallSpec::new(
        "moved@test",
        sa("10.0.0.1:5060"),
        sa("10.0.0.2:5060"),
        1_000_000,
    );
    c.outcome = Outcome::Hold;
    // Hold at 40 s, resume at 80 s on a new port, BYE at 120 s: the first stream of the
    // callee times out (30 s) long before the call ends.
    c.talk_ms = 120_000;
    if let Some(r) = c.rtp.as_mut() {
        r.resume_port_b = Some(40_000);
        r.impairments = Impairments::mild(4);
    }
    voipsensor::fixture::add_call(&mut b, &c);
    let (ev, _) = common::run_frames(&b, TrackerConfig::default());
    let ends = stream_ends(&ev);
    let call = final_call(&ev);
    let (caller_ip, callee_ip) = (c.caller_addr.ip(), c.callee_addr.ip());
    for (q, from, label) in [
        (call.quality_caller.clone(), caller_ip, "caller → callee"),
        (call.quality_callee.clone(), callee_ip, "callee → caller"),
    ] {
        let q = q.unwrap_or_else(|| panic!("{label}: no quality"));
        let mine: Vec<_> = ends
            .iter()
            .filter(|s| s.src.map(|a| a.ip()) == Some(from))
            .collect();
        let packets: u64 = mine.iter().map(|s| s.packets).sum();
        let lost: i64 = mine.iter().map(|s| s.lost).sum();
        assert_eq!(
            q.packets, packets,
            "{label}: packets = sum of its stream_end lines"
        );
        assert_eq!(q.lost, lost, "{label}");
        assert_eq!(q.streams as usize, mine.len(), "{label}");
    }
    assert_eq!(
        call.quality_callee.as_ref().map(|q| q.streams),
        Some(2),
        "the callee's media moved ports: two streams"
    );
}
