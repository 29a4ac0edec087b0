//! The ladder (sngrep's call flow): a column per signalling address in order of first
//! appearance, a row per SIP message, the arrow from sender to receiver labelled with the
//! method or code and reason, the time offset at the left, retransmissions dashed and the
//! SDP summarised under the label. Layout is separate from drawing so it can be tested.

use super::messages::Logged;
use super::svg::esc;
use std::fmt::Write;

/// Pixels between columns, the first column's x, and between rows.
pub const COL_W: u32 = 240;
pub const LEFT: u32 = 110;
pub const TOP: u32 = 40;
pub const ROW_H: u32 = 30;
/// Extra height of a row whose message carries SDP (one line per media).
pub const SDP_LINE_H: u32 = 12;

#[derive(Debug, Clone, PartialEq)]
pub struct Arrow {
    /// Index of the message in the call's log (what a click shows).
    pub msg: usize,
    pub from: usize,
    pub to: usize,
    /// y of the arrow line.
    pub y: u32,
    pub label: String,
    /// Milliseconds since the call's first message.
    pub offset_ms: u64,
    pub retransmission: bool,
    pub sdp: Vec<String>,
    pub hold: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    /// `ip:port` of each column.
    pub columns: Vec<String>,
    pub arrows: Vec<Arrow>,
    pub width: u32,
    pub height: u32,
}

pub fn x_of(col: usize) -> u32 {
    LEFT + col as u32 * COL_W
}

/// Lays out messages (in capture order).
pub fn layout(msgs: &[Logged]) -> Ladder {
    let mut columns: Vec<String> = Vec::new();
    let mut col = |a: String| match columns.iter().position(|c| *c == a) {
        Some(i) => i,
        None => {
            columns.push(a);
            columns.len() - 1
        }
    };
    let t0 = msgs.first().map(|m| m.ts.0).unwrap_or(0);
    let mut y = TOP + ROW_H;
    let mut arrows = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let from = col(m.src.to_string());
        let to = col(m.dst.to_string());
        let sdp = m.sdp.as_ref().map(|s| s.media.clone()).unwrap_or_default();
        let extra = sdp.len() as u32 * SDP_LINE_H;
        arrows.push(Arrow {
            msg: i,
            from,
            to,
            y,
            label: m.label.clone(),
            offset_ms: m.ts.0.saturating_sub(t0) / 1000,
            retransmission: m.retransmission,
            hold: m.sdp.as_ref().is_some_and(|s| s.hold),
            sdp,
        });
        y += ROW_H + extra;
    }
    let width = x_of(columns.len().max(2) - 1) + LEFT;
    Ladder {
        columns,
        arrows,
        width,
        height: y,
    }
}

/// `12.345 s` from milliseconds.
fn offset(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// The ladder as an SVG element; each arrow is a `<g class="msg" data-msg=N>` the page's
/// script opens on click.
pub fn svg(l: &Ladder) -> String {
    let mut s = String::with_capacity(256 + l.arrows.len() * 300);
    let _ = write!(
        s,
        r#"<svg class='ladder' width='{w}' height='{h}' viewBox='0 0 {w} {h}'>"#,
        w = l.width,
        h = l.height
    );
    for (i, c) in l.columns.iter().enumerate() {
        let x = x_of(i);
        let _ = write!(
            s,
            r#"<text class='col' x='{x}' y='{ty}'>{}</text><line class='life' x1='{x}' y1='{y1}' x2='{x}' y2='{h}'/>"#,
            esc(c),
            ty = TOP - 16,
            y1 = TOP,
            h = l.height,
        );
    }
    for a in &l.arrows {
        let (x1, x2) = (x_of(a.from), x_of(a.to));
        let class = if a.retransmission {
            "msg retrans"
        } else {
            "msg"
        };
        let _ = write!(
            s,
            r#"<g class='{class}' data-msg='{}'><rect class='hit' x='0' y='{}' width='{}' height='{ROW_H}'/><text class='off' x='4' y='{}'>{}</text>"#,
            a.msg,
            a.y - ROW_H / 2 - 4,
            l.width,
            a.y + 4,
            offset(a.offset_ms)
        );
        // The band (drawn first, under the text) makes the whole row easy to click.
        let mid = (x1 + x2) / 2;
        if x1 == x2 {
            // A message to its own address: a loop on the right of the lifeline.
            let _ = write!(
                s,
                r#"<path class='arrow' d='M{x1},{y0} h40 v12 h-36' marker-end='url(#head)'/>"#,
                y0 = a.y - 6
            );
        } else {
            let _ = write!(
                s,
                r#"<line class='arrow' x1='{x1}' y1='{y}' x2='{x2e}' y2='{y}' marker-end='url(#head)'/>"#,
                y = a.y,
                x2e = if x2 > x1 { x2 - 2 } else { x2 + 2 },
            );
        }
        let mark = if a.retransmission {
            " (retransmission)"
        } else {
            ""
        };
        let hold = if a.hold { " [hold]" } else { "" };
        let _ = write!(
            s,
            r#"<text class='label' x='{mid}' y='{}'>{}{}{}</text>"#,
            a.y - 5,
            esc(&a.label),
            mark,
            hold
        );
        for (k, m) in a.sdp.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text class='sdp' x='{mid}' y='{}'>{}</text>"#,
                a.y + 12 + k as u32 * SDP_LINE_H,
                esc(m)
            );
        }
        s.push_str("</g>");
    }
    s.push_str(
        r#"<defs><marker id='head' markerWidth='8' markerHeight='8' refX='7' refY='4' orient='auto'><path d='M0,0 L8,4 L0,8 z'/></marker></defs></svg>"#,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::messages::SdpSummary;
    use crate::track::event::Ts;

    fn msg(ts_ms: u64, src: &str, dst: &str, label: &str) -> Logged {
        Logged {
            ts: Ts(1_700_000_000_000_000 + ts_ms * 1000),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            label: label.into(),
            request: !label.starts_with(char::is_numeric),
            cseq: String::new(),
            retransmission: false,
            sdp: None,
            text: String::new(),
        }
    }

    const A: &str = "10.0.0.1:5060";
    const P: &str = "10.0.0.2:5060";
    const B: &str = "10.0.0.3:5060";

    #[test]
    fn columns_follow_first_appearance_and_arrows_point_from_sender_to_receiver() {
        let l = layout(&[
            msg(0, A, P, "INVITE"),
            msg(5, P, B, "INVITE"),
            msg(40, B, P, "180 Ringing"),
            msg(41, P, A, "180 Ringing"),
        ]);
        assert_eq!(l.columns, [A, P, B]);
        let dirs: Vec<_> = l.arrows.iter().map(|a| (a.from, a.to)).collect();
        assert_eq!(dirs, [(0, 1), (1, 2), (2, 1), (1, 0)]);
        assert_eq!(l.arrows[2].offset_ms, 40);
        assert_eq!(l.width, x_of(2) + LEFT);
    }

    #[test]
    fn rows_go_down_in_order_and_sdp_lines_make_room() {
        let mut invite = msg(0, A, B, "INVITE");
        invite.sdp = Some(SdpSummary {
            media: vec!["audio 10.0.0.1:4000 PCMU sendrecv".into(), "video x".into()],
            hold: false,
        });
        let l = layout(&[invite, msg(1, B, A, "100 Trying"), msg(2, B, A, "200 OK")]);
        let ys: Vec<u32> = l.arrows.iter().map(|a| a.y).collect();
        assert_eq!(ys[1] - ys[0], ROW_H + 2 * SDP_LINE_H);
        assert_eq!(ys[2] - ys[1], ROW_H);
        assert!(l.height > ys[2]);
    }

    #[test]
    fn retransmissions_and_hold_are_marked_in_the_drawing() {
        let mut re = msg(500, A, B, "INVITE");
        re.retransmission = true;
        let mut hold = msg(900, A, B, "INVITE");
        hold.sdp = Some(SdpSummary {
            media: vec!["audio 10.0.0.1:4000 PCMU sendonly".into()],
            hold: true,
        });
        let l = layout(&[msg(0, A, B, "INVITE"), re, hold]);
        assert!(l.arrows[1].retransmission && !l.arrows[0].retransmission);
        let s = svg(&l);
        assert_eq!(s.matches(r#"class='msg retrans'"#).count(), 1);
        assert_eq!(s.matches("<g class='msg").count(), 3);
        assert!(s.contains("[hold]"));
        assert!(s.contains("0.500 s"));
    }

    #[test]
    fn a_message_to_its_own_address_is_a_loop_and_one_column() {
        let l = layout(&[msg(0, A, A, "OPTIONS")]);
        assert_eq!(l.columns, [A]);
        assert!(svg(&l).contains("<path class='arrow'"));
    }

    #[test]
    fn labels_are_escaped() {
        let l = layout(&[msg(0, A, B, "<script>")]);
        let s = svg(&l);
        assert!(!s.contains("<script>") && s.contains("&lt;script&gt;"));
    }
}
