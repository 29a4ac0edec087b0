//! SIP over WebSocket (RFC 7118): a frame's header, length forms and unmasking, the HTTP
//! Upgrade head, and the tracker's TCP framer and opener over the same bytes. A parsed
//! header written back by `emit` must read the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use voipsensor::track::sip_tcp;
use voipsensor::wire::websocket::{self, Frame, FrameRepr};

fuzz_target!(|data: &[u8]| {
    let mut scratch = [0u8; 256];
    black_box((websocket::is_upgrade(data), websocket::http_head_len(data)));
    let framing = sip_tcp::frame(data);
    black_box(sip_tcp::open(data, &mut scratch));
    black_box(framing);
    let Ok(f) = Frame::new_checked(data) else {
        return;
    };
    let repr = FrameRepr::parse(&f);
    assert!(f.total_len() <= data.len());
    assert_eq!(f.total_len(), f.header_len() + f.payload_len());
    black_box((f.fin(), f.opcode(), f.masked(), f.raw_payload()));
    black_box(f.payload(&mut scratch));
    // Round trip through the shortest encoding.
    let mut buf = vec![0u8; repr.header_len() + repr.payload_len];
    let mut out = Frame::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    let again = Frame::new_checked(&buf[..]).map(|g| FrameRepr::parse(&g));
    assert_eq!(again, Ok(repr));
});
