//! Subcommands: each file is one `voipsensor <command>`.

pub mod boot_config;
pub mod check_config;
pub mod decode;
pub mod fixture;
pub mod interfaces;
pub mod publish_test;
pub mod replay;
pub mod report;
pub mod run;
pub mod selftest;
pub mod watch;
