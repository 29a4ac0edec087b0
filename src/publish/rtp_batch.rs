//! A second of RTP intervals cut into messages that fit `max_message_bytes`.

use crate::publish::payload::Format;
use crate::track::event::{Event, RtpInterval};

/// Packs greedily by encoded size, in order; the margin covers the batch header.
pub fn split(
    intervals: Vec<RtpInterval>,
    format: Format,
    max_message_bytes: usize,
) -> Vec<Vec<RtpInterval>> {
    let budget = max_message_bytes.saturating_sub(64);
    let mut parts: Vec<Vec<RtpInterval>> = vec![Vec::new()];
    let mut used = 0;
    for i in intervals {
        let size = match format {
            Format::Postcard => postcard::to_allocvec(&i).map(|v| v.len()).unwrap_or(budget),
            Format::Json => crate::publish::json::to_line(&Event::RtpInterval(i.clone())).len() + 1,
        };
        let last = parts.len() - 1;
        if used + size > budget && !parts[last].is_empty() {
            parts.push(Vec::new());
            used = 0;
        }
        used += size;
        let last = parts.len() - 1;
        parts[last].push(i);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(ssrc: u32) -> RtpInterval {
        RtpInterval {
            ssrc,
            packets: 50,
            ..Default::default()
        }
    }

    #[test]
    fn a_second_that_fits_is_one_message_in_order() {
        let parts = split((1..=3).map(interval).collect(), Format::Postcard, 16 * 1024);
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].iter().map(|i| i.ssrc).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn a_large_second_is_cut_under_the_budget_keeping_everything() {
        let one = crate::publish::json::to_line(&Event::RtpInterval(interval(1))).len() + 1;
        let max = 64 + one * 3;
        let parts = split((1..=10).map(interval).collect(), Format::Json, max);
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
        let all: Vec<u32> = parts.iter().flatten().map(|i| i.ssrc).collect();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
    }
}
