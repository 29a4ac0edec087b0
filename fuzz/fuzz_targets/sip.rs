//! A SIP message: the parser, every accessor the tracker reads, the TCP framer's
//! Content-Length view of it, and the SDP body it carries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use voipsensor::sip::{self, Message, NameAddr, parse_uri, sdp};

fuzz_target!(|data: &[u8]| {
    black_box(sip::looks_like_sip(data));
    black_box(sip::looks_like_tls(data));
    black_box(sip::frame_len(data));
    let Ok(m) = Message::parse(data) else {
        return;
    };
    black_box((m.start(), m.is_request(), m.method(), m.status()));
    if let Some(uri) = m.request_uri() {
        black_box(parse_uri(uri));
    }
    black_box(m.headers_truncated());
    for (name, value) in m.headers() {
        black_box((name, NameAddr::parse(value)));
    }
    black_box((m.header("Via"), m.header_values("Via").count()));
    black_box((m.call_id(), m.cseq(), m.from(), m.to(), m.contact()));
    black_box((m.via_branch(), m.reason(), m.reason_text(), m.user_agent()));
    black_box((m.content_type(), m.content_length(), m.body(), m.has_sdp()));
    if let Some(body) = m.sdp_body() {
        black_box(sdp::parse(body).ok());
    }
});
