//! Subcommands: each file is one `voipsensor <command>`.

pub mod boot_config;
pub mod check_config;
pub mod decode;
pub mod exit;
pub mod fixture;
pub mod interfaces;
pub mod log_filter;
pub mod memory;
pub mod noc;
pub mod publish_test;
pub mod replay;
pub mod report;
pub mod run;
pub mod selftest;
pub mod seq_check;
pub mod watch;
