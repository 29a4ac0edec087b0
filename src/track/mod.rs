//! The sans-IO middle: frames in, events out.
//!
//! Who calls whom: `tracker` drives `call` (the SIP dialog table), `media` (endpoints and
//! RTP streams) and `health` (per-call media health) as peers. `call` returns
//! [`call::CallEffect`]s that `tracker` applies to `media` and `health`, all keyed by the
//! call's serial; `call`, `media` and `health` never import one another. Shared small
//! types live in `event` (the events and their fields), `counters` and `digest`.
// No panic on packet data by construction: every index, unwrap and expect is a checked
// one (`get`, `?`, `let else`); tests may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod call;
pub mod carried;
pub mod counters;
pub mod digest;
pub mod event;
pub mod health;
pub mod media;
pub mod mirror;
pub mod sip_tcp;
pub mod tracker;
