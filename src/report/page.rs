//! The HTML page: one self-contained file (inline CSS and script, server-side SVG, no
//! fetches), the same bytes for the same input. The call list is plain HTML; each call's
//! ladder, charts and message texts sit in a JSON script block that the browser does not
//! parse into DOM until the call is opened, so a capture of a thousand calls opens quickly.
//! `#call=N` opens call N, `#call=N&msg=K` also shows its message K, `#all` opens every
//! call (tests, screenshots).

use super::chart::{self, Axis, Metric};
use super::ladder;
use super::svg::{esc, num};
use super::{CallReport, Report, Stream};
use crate::track::event::{CallEvent, DirectionQuality, Ts};
use serde_json::Value;
use std::fmt::Write;

const STYLE: &str = r#"
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}h3{font-size:13px;margin:10px 0 2px}
.meta{color:#666;margin:0 0 10px}
#filter{width:340px;padding:4px 6px;margin-bottom:6px}
table{border-collapse:collapse;background:#fff}
#calls th{cursor:pointer;user-select:none;background:#eee;position:sticky;top:0}
#calls td,#calls th{border:1px solid #ddd;padding:2px 6px;white-space:nowrap;text-align:left}
#calls tr.call{cursor:pointer}#calls tr.call:hover{background:#eef4ff}#calls tr.open{background:#dde8ff}
td.ok{color:#176d2c}td.bad{color:#a4161a}td.warn{color:#a15c00}
section.detail{background:#fff;border:1px solid #ccc;margin:12px 0;padding:8px 12px}
.kv span{margin-right:14px}.kv b{font-weight:600}
.ladderbox{overflow:auto;max-height:70vh;border:1px solid #eee}
svg.ladder text{font:11px monospace;text-anchor:middle}svg.ladder .off{text-anchor:start}svg.ladder .col{font-weight:bold}
svg.ladder .life{stroke:#999;stroke-dasharray:4 3}
svg.ladder .arrow{stroke:#1f4e9c;stroke-width:1.5;fill:none}
svg.ladder .retrans .arrow{stroke:#c1121f;stroke-dasharray:5 3}svg.ladder .retrans .label{fill:#c1121f}
svg.ladder .off{fill:#666}svg.ladder .sdp{fill:#176d2c;font-size:10px}
svg.ladder .hit{fill:transparent}svg.ladder g.msg{cursor:pointer}svg.ladder g.sel .hit{fill:#fff3b0;opacity:.6}
pre.msgview{background:#f4f4f4;border:1px solid #ddd;padding:6px;max-height:40vh;overflow:auto;white-space:pre-wrap}
svg.chart{display:block;background:#fff}svg.chart text{font:10px sans-serif;fill:#555}svg.chart .title{font-weight:bold;fill:#222}svg.chart .e{text-anchor:end}svg.chart .dtmf text{text-anchor:middle}
svg.chart .axis{stroke:#aaa}svg.chart .series{fill:none;stroke:#1f4e9c;stroke-width:1.2}
svg.chart .dtmf line{stroke:#7b2cbf;stroke-dasharray:2 2}svg.chart .dtmf text{fill:#7b2cbf;font-weight:bold}
.stream{margin:8px 0 14px}.charts{display:grid;grid-template-columns:repeat(2,max-content);gap:4px}.totals,.rtcp{margin:2px 0;color:#444}
table.counters td{border:1px solid #ddd;padding:1px 6px;font-family:monospace}table.counters td.zero{color:#aaa}
"#;

const SCRIPT: &str = r#"
(function(){
var rows=Array.prototype.slice.call(document.querySelectorAll('#calls tbody tr.call'));
var box=document.getElementById('detail');
function data(i){return JSON.parse(document.getElementById('c'+i).textContent);}
function open(i,keep,msg){
  var d=data(i),sec=document.createElement('section');
  sec.className='detail';sec.innerHTML=d.html;
  var view=sec.querySelector('pre.msgview');
  function show(k){
    var gs=sec.querySelectorAll('g.msg');
    for(var j=0;j<gs.length;j++)gs[j].classList.toggle('sel',+gs[j].dataset.msg===k);
    view.textContent=d.msgs[k];
  }
  sec.addEventListener('click',function(e){var g=e.target.closest('g.msg');if(g)show(+g.dataset.msg);});
  if(!keep)box.replaceChildren();
  box.appendChild(sec);
  rows.forEach(function(r){if(!keep)r.classList.toggle('open',+r.dataset.i===i);});
  if(msg!==undefined&&msg<d.msgs.length)show(msg);
}
rows.forEach(function(r){r.addEventListener('click',function(){open(+r.dataset.i,false);history.replaceState(null,'','#call='+r.dataset.i);});});
document.getElementById('filter').addEventListener('input',function(e){
  var q=e.target.value.toLowerCase();
  rows.forEach(function(r){r.hidden=q!==''&&r.textContent.toLowerCase().indexOf(q)<0;});
});
var dir={};
document.querySelectorAll('#calls th').forEach(function(th,k){th.addEventListener('click',function(){
  dir[k]=-(dir[k]||-1);
  var key=function(r){var c=r.cells[k];return c.dataset.s!==undefined?c.dataset.s:c.textContent;};
  var sorted=rows.slice().sort(function(a,b){
    var x=key(a),y=key(b),nx=parseFloat(x),ny=parseFloat(y);
    var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:(x<y?-1:x>y?1:0);
    return c*dir[k]||(+a.dataset.i-+b.dataset.i);
  });
  var tb=document.querySelector('#calls tbody');sorted.forEach(function(r){tb.appendChild(r);});
});});
var h=location.hash;
if(h==='#all'){rows.forEach(function(r){open(+r.dataset.i,true);});}
else{var m=/^#call=(\d+)(?:&msg=(\d+))?/.exec(h);if(m&&document.getElementById('c'+m[1]))open(+m[1],false,m[2]===undefined?undefined:+m[2]);}
document.body.dataset.readyMs=String(Math.round(performance.now()));
})();
"#;

/// `2023-11-14 22:13:20.123` (UTC) from packet time.
pub fn utc(ts: Ts) -> String {
    let secs = ts.0 / 1_000_000;
    let ms = (ts.0 / 1000) % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The outcome word of the call list: the last event's kind (`answered` while open).
pub fn outcome(c: &CallEvent) -> String {
    serde_json::to_value(c.event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn mos(q: Option<&DirectionQuality>) -> String {
    match q {
        Some(DirectionQuality {
            mos_min: Some(lo),
            mos_mean: Some(m),
            ..
        }) => format!("{} / {}", num(*lo, 2), num(*m, 2)),
        _ => "–".into(),
    }
}

fn opt_ms<T: Into<u64> + Copy>(v: Option<T>) -> (String, String) {
    match v {
        Some(x) => {
            let x: u64 = x.into();
            (x.to_string(), x.to_string())
        }
        None => ("–".into(), "-1".into()),
    }
}

/// JSON text safe inside a `<script>` element.
fn script_json(v: &Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

/// The whole page.
pub fn render(r: &Report) -> String {
    render_with(r, |_| {})
}

/// The page; `progress(i)` after each call is rendered (for the terminal's bar).
pub fn render_with(r: &Report, mut progress: impl FnMut(usize)) -> String {
    let mut s = String::with_capacity(64 * 1024 + r.calls.len() * 16 * 1024);
    let msgs: u64 = r.calls.iter().map(|c| c.seen).sum();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>voipsensor report: {t}</title><style>{STYLE}</style></head><body data-calls="{n}"><h1>Call report: {t}</h1><p class="meta">{n} calls · {msgs} SIP messages in calls · {f} frames · made by voipsensor {v}</p>"#,
        t = esc(&r.title),
        n = r.calls.len(),
        f = r.counters.frames,
        v = env!("CARGO_PKG_VERSION"),
    );
    s.push_str(r#"<input id="filter" placeholder="filter: number, Call-ID, outcome, warning"><table id="calls"><thead><tr><th>time (UTC)</th><th>caller</th><th>callee</th><th>outcome</th><th>code</th><th>setup ms</th><th>PDD ms</th><th>duration s</th><th>MOS caller→callee min / mean</th><th>MOS callee→caller min / mean</th><th>messages</th><th>warnings</th></tr></thead><tbody>"#);
    for (i, c) in r.calls.iter().enumerate() {
        row(&mut s, i, c);
    }
    s.push_str("</tbody></table><div id=\"detail\"></div>");
    if !r.unlinked.streams.is_empty() {
        let (lo, hi) = r.unlinked.span();
        let _ = write!(
            s,
            r#"<h2>RTP without signalling ({} streams)</h2><div class="media unlinked">{}</div>"#,
            r.unlinked.streams.len(),
            media(&r.unlinked.streams, &r.unlinked.dtmf, None, axis(lo, hi))
        );
    }
    s.push_str("<h2>Capture summary</h2><table class=\"counters\">");
    let mut flat = Vec::new();
    flatten(
        "",
        &serde_json::to_value(&r.counters).unwrap_or(Value::Null),
        &mut flat,
    );
    flatten(
        "report",
        &serde_json::to_value(r.log).unwrap_or(Value::Null),
        &mut flat,
    );
    for (k, v) in flat {
        let zero = if v == "0" || v == "false" {
            " class=\"zero\""
        } else {
            ""
        };
        let _ = write!(s, "<tr><td>{}</td><td{zero}>{}</td></tr>", esc(&k), esc(&v));
    }
    s.push_str("</table>");
    for (i, c) in r.calls.iter().enumerate() {
        let d = serde_json::json!({
            "html": detail(i, c),
            "msgs": c.messages.iter().map(|m| format!("{}  {} → {}\n\n{}", utc(m.ts), m.src, m.dst, m.text)).collect::<Vec<_>>(),
        });
        let _ = write!(
            s,
            r#"<script type="application/json" id="c{i}">{}</script>"#,
            script_json(&d)
        );
        progress(i + 1);
    }
    let _ = writeln!(s, "<script>{SCRIPT}</script></body></html>");
    s
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn row(s: &mut String, i: usize, c: &CallReport) {
    let first = c.data.calls.first();
    let last = c.data.last();
    let (lo, _) = c.span();
    let out = last.map(outcome).unwrap_or_default();
    let class = match out.as_str() {
        "ended" | "answered" | "hold" | "resume" => "ok",
        "failed" | "timeout" | "evicted" => "bad",
        _ => "warn",
    };
    let code = last
        .and_then(|l| {
            l.code
                .map(|k| format!("{k} {}", l.reason.as_deref().unwrap_or("")))
        })
        .unwrap_or_default();
    let (setup, setup_s) = opt_ms(last.and_then(|l| l.setup_ms));
    let (pdd, pdd_s) = opt_ms(last.and_then(|l| l.pdd_ms));
    let (dur, dur_s) = match last.and_then(|l| l.duration_ms) {
        Some(d) => (num(d as f64 / 1000.0, 1), d.to_string()),
        None => ("–".into(), "-1".into()),
    };
    let warnings = c.data.warnings().join(", ");
    let _ = write!(
        s,
        r#"<tr class="call" data-i="{i}" data-call-id="{id}" data-messages="{n}" data-outcome="{out}" data-code="{k}" data-final="{fin}"><td data-s="{t}">{time}</td><td>{caller}</td><td>{callee}</td><td class="{class}">{out}</td><td>{code}</td><td data-s="{setup_s}">{setup}</td><td data-s="{pdd_s}">{pdd}</td><td data-s="{dur_s}">{dur}</td><td>{m1}</td><td>{m2}</td><td>{n}</td><td class="warn">{warnings}</td></tr>"#,
        id = esc(&c.call_id),
        n = c.seen,
        fin = c
            .data
            .final_code()
            .map(|k| k.to_string())
            .unwrap_or_default(),
        k = last
            .and_then(|l| l.code)
            .map(|k| k.to_string())
            .unwrap_or_default(),
        t = lo.0,
        time = utc(lo),
        caller = esc(first.map(|f| f.caller.as_str()).unwrap_or("")),
        callee = esc(first.map(|f| f.callee.as_str()).unwrap_or("")),
        code = esc(&code),
        m1 = mos(last.and_then(|l| l.quality_caller.as_ref())),
        m2 = mos(last.and_then(|l| l.quality_callee.as_ref())),
        warnings = esc(&warnings),
    );
}

/// The time axis of a call's charts: whole seconds around its span.
fn axis(lo: Ts, hi: Ts) -> Axis {
    let t0 = lo.0 / 1_000_000 * 1_000_000;
    Axis {
        t0,
        t1: (hi.0 / 1_000_000 + 1) * 1_000_000,
    }
}

/// What the page shows when a call is opened.
fn detail(i: usize, c: &CallReport) -> String {
    let mut s = String::with_capacity(8 * 1024);
    let last = c.data.last();
    let out = last.map(outcome).unwrap_or_default();
    let _ = write!(
        s,
        r#"<div class='call-detail' data-i='{i}' data-call-id='{id}' data-messages='{n}' data-outcome='{out}'><h2>Call {id}</h2><p class='kv'>"#,
        id = esc(&c.call_id),
        n = c.seen,
    );
    if let Some(f) = c.data.calls.first() {
        let _ = write!(
            s,
            "<span><b>caller</b> {} ({})</span><span><b>callee</b> {} ({})</span>",
            esc(&f.caller),
            f.src,
            esc(&f.callee),
            f.dst
        );
        if let Some(ua) = &f.user_agent {
            let _ = write!(s, "<span><b>user agent</b> {}</span>", esc(ua));
        }
    }
    if let Some(l) = last {
        let _ = write!(
            s,
            "<span><b>outcome</b> {out} {}</span><span><b>retransmissions</b> {}</span>",
            l.code
                .map(|k| format!("{k} {}", esc(l.reason.as_deref().unwrap_or(""))))
                .unwrap_or_default(),
            l.retransmissions
        );
    }
    if c.seen > c.messages.len() as u64 {
        let _ = write!(
            s,
            "<span><b>log full</b> {} of {} messages kept</span>",
            c.messages.len(),
            c.seen
        );
    }
    s.push_str("</p><p class='kv events'>");
    let t0 = c.span().0;
    for e in &c.data.calls {
        let _ = write!(
            s,
            "<span>+{} s {}{}</span>",
            num(e.ts.0.saturating_sub(t0.0) as f64 / 1e6, 3),
            outcome(e),
            e.code.map(|k| format!(" {k}")).unwrap_or_default()
        );
    }
    s.push_str("</p><h3>SIP ladder (click an arrow for the message)</h3><div class='ladderbox'>");
    s.push_str(&ladder::svg(&ladder::layout(&c.messages)));
    s.push_str("</div><pre class='msgview'>(click an arrow)</pre>");
    let (lo, hi) = c.span();
    let _ = write!(
        s,
        r#"<h3>Media: per-second packets, loss, jitter, MOS ({} directions)</h3>{}</div>"#,
        c.data.streams.len(),
        media(&c.data.streams, &c.data.dtmf, last, axis(lo, hi))
    );
    s
}

fn media(
    streams: &[Stream],
    dtmf: &[crate::track::event::DtmfEvent],
    last: Option<&CallEvent>,
    ax: Axis,
) -> String {
    let mut s = String::new();
    for st in streams {
        let side =
            |q: Option<&DirectionQuality>| q.is_some_and(|q| q.src.is_some() && q.src == st.src);
        let who = match last {
            Some(l) if side(l.quality_caller.as_ref()) => "caller → callee: ",
            Some(l) if side(l.quality_callee.as_ref()) => "callee → caller: ",
            _ => "",
        };
        let addr = |a: Option<core::net::SocketAddr>| {
            a.map(|a| a.to_string()).unwrap_or_else(|| "?".into())
        };
        let _ = write!(
            s,
            r#"<div class='stream' data-ssrc='{ssrc}' data-src='{src}' data-dst='{dst}' data-intervals='{n}'><h3>{who}{src} → {dst} · {codec} · SSRC 0x{ssrc:08x}</h3>"#,
            ssrc = st.ssrc,
            src = addr(st.src),
            dst = addr(st.dst),
            n = st.intervals.len(),
            codec = esc(&st.codec),
        );
        let digits: Vec<_> = dtmf
            .iter()
            .filter(|d| {
                // On the stream of its direction that was flowing then.
                d.src == st.src
                    && d.dst == st.dst
                    && st.intervals.first().is_some_and(|f| d.ts.0 >= f.ts.0)
                    && st
                        .intervals
                        .last()
                        .is_some_and(|l| d.ts.0 < l.ts.0 + 1_000_000)
            })
            .cloned()
            .collect();
        s.push_str("<div class='charts'>");
        for m in Metric::ALL {
            s.push_str(&chart::chart(m, &st.intervals, &digits, ax));
        }
        s.push_str("</div>");
        if !digits.is_empty() {
            let ds: String = digits.iter().map(|d| d.digit).collect();
            let _ = write!(
                s,
                r#"<p class='totals'>DTMF: <b class='digits'>{}</b></p>"#,
                esc(&ds)
            );
        }
        if let Some(e) = &st.end {
            let _ = write!(
                s,
                r#"<p class='totals'>{} packets, {} lost, {} duplicates, {} out of order; jitter max {} ms, mean {} ms; MOS min {} mean {}; ended: {}</p>"#,
                e.packets,
                e.lost,
                e.duplicates,
                e.out_of_order,
                num(e.jitter_max_ms, 2),
                num(e.jitter_mean_ms, 2),
                e.mos_min.map(|v| num(v, 2)).unwrap_or("–".into()),
                e.mos_mean.map(|v| num(v, 2)).unwrap_or("–".into()),
                esc(&e.reason)
            );
            let mut remote = Vec::new();
            let f = |v: Option<f64>, dp| v.map(|v| num(v, dp));
            if let Some(v) = f(e.rtcp_fraction_lost, 3) {
                remote.push(format!("fraction lost {v}"));
            }
            if let Some(v) = e.rtcp_cumulative_lost {
                remote.push(format!("cumulative lost {v}"));
            }
            if let Some(v) = f(e.rtcp_jitter_ms, 2) {
                remote.push(format!("jitter {v} ms"));
            }
            if let Some(v) = f(e.rtcp_rtt_ms, 2) {
                remote.push(format!("RTT {v} ms"));
            }
            if let Some(v) = f(e.rtcp_xr_loss_pct, 2) {
                remote.push(format!("XR loss {v} %"));
            }
            if let Some(v) = f(e.rtcp_xr_discard_pct, 2) {
                remote.push(format!("XR discard {v} %"));
            }
            if let Some(v) = e.rtcp_xr_r_factor {
                remote.push(format!("XR R {v}"));
            }
            if let Some(v) = f(e.rtcp_xr_mos_lq, 2) {
                remote.push(format!("XR MOS-LQ {v}"));
            }
            if let Some(v) = f(e.rtcp_xr_mos_cq, 2) {
                remote.push(format!("XR MOS-CQ {v}"));
            }
            if let Some(v) = f(e.rtcp_xr_rtt_ms, 2) {
                remote.push(format!("XR RTT {v} ms"));
            }
            let _ = write!(
                s,
                r#"<p class='rtcp'>RTCP remote view: {}</p>"#,
                if remote.is_empty() {
                    "no RTCP report about this stream".to_string()
                } else {
                    remote.join(", ")
                }
            );
        }
        s.push_str("</div>");
    }
    if streams.is_empty() {
        s.push_str("<p class='totals'>no RTP seen</p>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_packet_time() {
        assert_eq!(utc(Ts(1_700_000_000_123_456)), "2023-11-14 22:13:20.123");
        assert_eq!(utc(Ts(951_782_400_000_000)), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn json_in_a_script_block_cannot_close_it() {
        let v = serde_json::json!({"m": "</script><b>"});
        assert!(!script_json(&v).contains("</script"));
        let back: Value = serde_json::from_str(&script_json(&v)).unwrap();
        assert_eq!(back, v);
    }
}
