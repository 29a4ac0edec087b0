//! The capture edge: frames with timestamps from a file (replay) or an interface (live).

pub mod blocks;
pub mod dedup;
pub mod file;
pub mod health;
pub mod live;
