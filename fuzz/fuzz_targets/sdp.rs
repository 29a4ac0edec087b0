//! An SDP body: the parser and its result's every field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use voipsensor::sip::sdp;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = sdp::parse(data) {
        black_box(format!("{s:?}"));
    }
});
