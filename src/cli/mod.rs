//! Subcommands: each file is one `voipsensor <command>`.

pub mod fixture;
pub mod replay;
