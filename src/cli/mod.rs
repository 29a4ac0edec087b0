//! Subcommands: each file is one `voipsensor <command>`.

pub mod fixture;
pub mod replay;
pub mod check_config;
pub mod decode;
pub mod publish_test;
pub mod watch;
