//! The sans-IO middle: frames in, events out.

pub mod call;
pub mod counters;
pub mod event;
pub mod media;
pub mod mirror;
pub mod tracker;
