//! The sans-IO middle: frames in, events out.

pub mod event;
