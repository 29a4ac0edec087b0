//! Payload types and codec impairment factors.
//!
//! Static payload types follow RFC 3551 §6 table 4. Note the G.722 quirk: its RTP clock
//! rate is 8000 although it samples at 16 kHz (RFC 3551 §4.5.2, kept for historical
//! compatibility), and Wireshark computes jitter with 8000 too.
// No panic on packet data by construction: every index, unwrap and expect here is a
// checked one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

/// RFC 3551 table 4: `(encoding name, clock rate)` for static audio/video payload types.
pub fn static_pt(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

/// Comfort noise: PT 13 (RFC 3389), and PT 19, which RFC 1890 once assigned to CN and
/// Wireshark still treats as such.
pub fn is_comfort_noise_pt(pt: u8) -> bool {
    pt == 13 || pt == 19
}

/// RFC 4733 telephone events, by rtpmap encoding name.
pub fn is_telephone_event(name: &str) -> bool {
    name.eq_ignore_ascii_case("telephone-event")
}

/// Usual clock rate of a dynamic encoding when SDP gave none (an rtpmap always carries
/// one, so this is only a fallback). Values from the IANA RTP media-type registrations.
pub fn dynamic_clock_rate(name: &str) -> Option<u32> {
    const TABLE: [(&str, u32); 12] = [
        ("telephone-event", 8000),
        ("opus", 48000),
        ("AMR", 8000),
        ("AMR-WB", 16000),
        ("EVS", 16000),
        ("G7221", 16000),
        ("iLBC", 8000),
        ("G726-32", 8000),
        ("GSM-EFR", 8000),
        ("speex", 8000),
        ("H264", 90000),
        ("VP8", 90000),
    ];
    TABLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, r)| r)
}

/// Equipment impairment factor `Ie` and packet-loss robustness factor `Bpl` for the
/// E-model (G.107 §7.4), from ITU-T G.113 Appendix I (11/2007), tables I.1 (Ie) and
/// I.3 (Bpl, random loss).
///
/// G.711 is given *with* packet-loss concealment (G.711 Appendix I PLC, Bpl 25.1): every
/// current endpoint conceals loss, and the no-PLC value (Bpl 4.3) would make 1 % loss
/// cost ~19 R points, far harsher than what listeners hear on modern phones. The G.729
/// and G.723.1 values are those G.113 lists for the codecs with VAD (G.729A+VAD, G.723.1
/// 6.3 kbit/s + VAD), the usual deployment.
///
/// Wideband codecs (G.722, AMR-WB, Opus, ...) have no narrowband Ie/Bpl: the wideband
/// E-model (G.107.1) uses a different scale, so this returns `None` rather than guess.
pub fn impairment(codec_name: &str) -> Option<(f64, f64)> {
    let is = |n: &str| codec_name.eq_ignore_ascii_case(n);
    if is("PCMU") || is("PCMA") || is("G711") || is("G.711") {
        Some((0.0, 25.1))
    } else if is("G729") || is("G729A") || is("G.729") || is("G.729A") {
        Some((11.0, 19.0))
    } else if is("G723") || is("G723.1") || is("G.723.1") {
        Some((15.0, 16.1))
    } else if is("GSM-EFR") {
        // G.113 table I.1/I.3: GSM 06.60 EFR.
        Some((5.0, 10.0))
    } else {
        None
    }
}

/// G.711 without packet-loss concealment (G.113 table I.3): for callers that know the
/// endpoint does not conceal loss.
pub const G711_NO_PLC: (f64, f64) = (0.0, 4.3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_table_has_rfc3551_entries() {
        assert_eq!(static_pt(0), Some(("PCMU", 8000)));
        assert_eq!(static_pt(8), Some(("PCMA", 8000)));
        assert_eq!(static_pt(18), Some(("G729", 8000)));
        assert_eq!(static_pt(13), Some(("CN", 8000)));
        assert_eq!(static_pt(96), None);
        assert_eq!(static_pt(2), None);
    }

    #[test]
    fn g722_clock_rate_is_8000_per_rfc3551() {
        assert_eq!(static_pt(9), Some(("G722", 8000)));
    }

    #[test]
    fn impairment_matches_names_case_insensitively() {
        assert_eq!(impairment("pcma"), Some((0.0, 25.1)));
        assert_eq!(impairment("PCMU"), Some((0.0, 25.1)));
        assert_eq!(impairment("g729"), Some((11.0, 19.0)));
        assert_eq!(impairment("G723"), Some((15.0, 16.1)));
    }

    #[test]
    fn wideband_codecs_have_no_narrowband_impairment() {
        assert_eq!(impairment("G722"), None);
        assert_eq!(impairment("opus"), None);
        assert_eq!(impairment("AMR-WB"), None);
    }

    #[test]
    fn dynamic_rates_fall_back_by_name() {
        assert_eq!(dynamic_clock_rate("OPUS"), Some(48000));
        assert_eq!(dynamic_clock_rate("Telephone-Event"), Some(8000));
        assert_eq!(dynamic_clock_rate("x-unknown"), None);
        assert!(is_telephone_event("telephone-event"));
        assert!(is_comfort_noise_pt(13) && is_comfort_noise_pt(19) && !is_comfort_noise_pt(8));
    }
}
