//! ITU-T G.107 E-model, reduced to what a passive probe can measure.
//!
//! `R = Ro - Is - Id - Ie,eff + A` (G.107 §7.1), with every parameter we cannot observe
//! at its G.107 table 3 default:
//!
//! - `Ro - Is = 93.2`: the basic signal-to-noise ratio and simultaneous impairments of a
//!   default connection (G.107 states R = 93.2 for all-default parameters).
//! - `Id`: only the pure-delay term `Idd(Ta)` (G.107 §7.3, eq. 7-27/7-28). The talker- and
//!   listener-echo terms are left out: they need the echo loss (TELR) and round-trip
//!   path, and with echo control at its default (TELR 65 dB) they are well under one R
//!   point at VoIP delays. `Idd` is zero up to Ta = 100 ms, so the default assumed
//!   mouth-to-ear delay of **100 ms** (a typical LAN/metro call: packetisation, jitter
//!   buffer, a few ms of network) contributes nothing; callers with a measured one-way
//!   delay (e.g. RTCP RTT/2 plus jitter buffer) pass it instead.
//! - `Ie,eff = Ie + (95 - Ie) · Ppl / (Ppl/BurstR + Bpl)` (G.107 eq. 7-29), Ppl in percent,
//!   with `Ie`/`Bpl` from `codec::impairment` (G.113 Appendix I). BurstR = 1 is random
//!   loss; > 1 is burstier than random.
//! - `A = 0` (advantage factor, wired access).
//!
//! The MOS is G.107 Annex B's conversion of R, i.e. a *listening-quality estimate*
//! (MOS-LQE, ITU-T P.800.1 terminology), not a measured MOS.
// No panic on packet data by construction: every index, unwrap and expect here is a
// checked one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

/// `Ro - Is` with G.107 default parameters.
pub const R_DEFAULT: f64 = 93.2;
/// Assumed mouth-to-ear delay when none is measured (ms).
pub const DEFAULT_DELAY_MS: f64 = 100.0;

/// E-model inputs a probe can supply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelInput {
    /// Equipment impairment factor of the codec.
    pub ie: f64,
    /// Packet-loss robustness factor of the codec.
    pub bpl: f64,
    /// Packet loss, percent (0..=100). Negative (duplicates) counts as 0.
    pub ppl: f64,
    /// Burst ratio, 1 for random loss.
    pub burst_r: f64,
    /// Mean one-way (mouth-to-ear) delay Ta, ms.
    pub delay_ms: f64,
}

impl EModelInput {
    /// Random loss at the default delay.
    pub fn new(ie: f64, bpl: f64, ppl: f64) -> Self {
        EModelInput {
            ie,
            bpl,
            ppl,
            burst_r: 1.0,
            delay_ms: DEFAULT_DELAY_MS,
        }
    }
}

/// G.107 §7.3 delay impairment `Idd` for absolute delay `ta_ms` (defaults mT = 100 ms,
/// sT = 1).
pub fn idd(ta_ms: f64) -> f64 {
    if ta_ms <= 100.0 {
        return 0.0;
    }
    let x = (ta_ms / 100.0).log10() / 2f64.log10();
    25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0)
        + 2.0)
}

/// Effective equipment impairment with packet loss (G.107 eq. 7-29).
pub fn ie_eff(ie: f64, bpl: f64, ppl: f64, burst_r: f64) -> f64 {
    let ppl = ppl.clamp(0.0, 100.0);
    let burst_r = if burst_r > 0.0 { burst_r } else { 1.0 };
    if ppl == 0.0 {
        return ie;
    }
    ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl)
}

/// Transmission rating R.
pub fn r_factor(i: &EModelInput) -> f64 {
    R_DEFAULT - idd(i.delay_ms) - ie_eff(i.ie, i.bpl, i.ppl, i.burst_r)
}

/// G.107 Annex B (eq. B-4): R → MOS (here MOS-LQE), 1.0..=4.5.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// `(R, MOS-LQE)` for a codec by name and a loss ratio (0..=1) at the default delay;
/// `None` for codecs without narrowband impairment values (wideband, unknown).
pub fn estimate(codec_name: &str, loss_ratio: f64) -> Option<(f64, f64)> {
    let (ie, bpl) = super::codec::impairment(codec_name)?;
    let r = r_factor(&EModelInput::new(ie, bpl, loss_ratio * 100.0));
    Some((r, mos_from_r(r)))
}

/// Burst ratio from a two-state (Gilbert) loss model fitted to counts: `p` = P(loss |
/// previous received), `q` = P(received | previous lost), BurstR = 1/(p+q) (G.113
/// Appendix I / G.107 note to eq. 7-29). Inputs: transitions received→lost and the
/// number of received packets that had a successor; lost→received and lost packets that
/// had a successor. `None` without enough data (no loss seen).
pub fn burst_ratio(
    recv_to_lost: u64,
    recv_total: u64,
    lost_to_recv: u64,
    lost_total: u64,
) -> Option<f64> {
    if recv_total == 0 || lost_total == 0 {
        return None;
    }
    let p = recv_to_lost as f64 / recv_total as f64;
    let q = lost_to_recv as f64 / lost_total as f64;
    (p + q > 0.0).then(|| 1.0 / (p + q))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent evaluation: the Annex B cubic expanded into powers of R.
    fn mos_poly(r: f64) -> f64 {
        // R(R-60)(100-R) = -R^3 + 160 R^2 - 6000 R
        1.0 + 0.035 * r + 7e-6 * (-r * r * r + 160.0 * r * r - 6000.0 * r)
    }

    #[test]
    fn g711_worked_examples_random_loss() {
        // G.711 with PLC: Ie 0, Bpl 25.1 (G.113 App. I). By hand:
        //   0 %: Ie,eff 0                      → R 93.2
        //   1 %: 95·1/(1+25.1)  = 3.6398      → R 89.560
        //   5 %: 95·5/(5+25.1)  = 15.7807     → R 77.419
        for (ppl, r_hand) in [(0.0, 93.2), (1.0, 89.560), (5.0, 77.419)] {
            let r = r_factor(&EModelInput::new(0.0, 25.1, ppl));
            assert!((r - r_hand).abs() < 0.01, "ppl {ppl}: {r}");
            let mos = mos_from_r(r);
            assert!((mos - mos_poly(r_hand)).abs() < 0.1, "ppl {ppl}: {mos}");
        }
        // Published anchors: R 93.2 ≈ MOS 4.41; R 77.4 ≈ MOS 3.92.
        assert!((mos_from_r(93.2) - 4.41).abs() < 0.01);
        assert!((mos_from_r(77.419) - 3.92).abs() < 0.01);
    }

    #[test]
    fn g711_without_plc_is_much_worse() {
        let (ie, bpl) = super::super::codec::G711_NO_PLC;
        let r = r_factor(&EModelInput::new(ie, bpl, 1.0));
        // 95·1/(1+4.3) = 17.92 → R 75.28
        assert!((r - 75.28).abs() < 0.01, "{r}");
    }

    #[test]
    fn g729_has_intrinsic_impairment() {
        let (r, mos) = estimate("G729", 0.0).unwrap();
        assert!((r - 82.2).abs() < 1e-9);
        assert!((mos - mos_poly(82.2)).abs() < 1e-9);
        assert!(estimate("G722", 0.01).is_none());
    }

    #[test]
    fn delay_impairment_starts_above_100ms() {
        assert_eq!(idd(50.0), 0.0);
        assert_eq!(idd(100.0), 0.0);
        // G.114 figure 1 shape: ~ -3 R at 200 ms, ~ -9 at 300, ~ -19 at 400 (Idd only).
        assert!((2.0..5.0).contains(&idd(200.0)), "{}", idd(200.0));
        assert!(idd(400.0) > idd(300.0) && idd(300.0) > idd(200.0));
    }

    #[test]
    fn mos_is_clamped() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
    }

    #[test]
    fn bursty_loss_hurts_more_than_random() {
        let mut i = EModelInput::new(0.0, 25.1, 5.0);
        let random = r_factor(&i);
        i.burst_r = 2.0;
        assert!(r_factor(&i) < random);
        // Random loss of 5 %: p = 0.05, q = 0.95 → BurstR 1.
        assert!((burst_ratio(5, 100, 95, 100).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(burst_ratio(0, 100, 0, 0), None);
    }
}
