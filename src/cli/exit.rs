//! Exit codes: what a script or systemd unit can tell apart without reading stderr.

use std::fmt;
use std::process::ExitCode;
use voipsensor::config::ConfigError;
use voipsensor::publish::broker::Refused;

/// How `voipsensor` ended. Codes are stable: scripts and the image's units rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, or stopped by SIGINT/SIGTERM.
    Ok,
    /// 1: failed while running (capture device lost, output unwritable, messages undelivered).
    Runtime,
    /// 2: the command line is wrong (unknown flag, flags that do nothing together).
    Usage,
    /// 3: the configuration is invalid (or a file it names cannot be read).
    Config,
    /// 4: the input capture file is missing, not a capture, or truncated/corrupt.
    Input,
    /// 5: the broker refused the sensor (credentials, ACL, client id, TLS certificate).
    BrokerRefused,
}

/// The table shown by `--help` and in the README (kept in step by a test).
pub const TABLE: &str = "\
Exit codes:
  0  ok (also after SIGINT/SIGTERM: the sensor stops cleanly, flushing what it holds)
  1  runtime failure (capture lost, output unwritable, messages not delivered)
  2  usage: bad command line, or flags that do nothing together
  3  configuration invalid (one line: FILE:LINE: section.key = value: what is wrong; what is allowed)
  4  input file missing, not a capture, truncated or corrupt
  5  broker refused the sensor (credentials, ACL, client id, TLS certificate)

Environment:
  RUST_LOG  log filter, e.g. `info` (default), `debug`, `voipsensor=debug,rumqttc=warn`;
            an invalid filter is reported and `info` used";

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Runtime => 1,
            Exit::Usage => 2,
            Exit::Config => 3,
            Exit::Input => 4,
            Exit::BrokerRefused => 5,
        }
    }

    /// The exit code an error calls for: the first classified cause in its chain.
    pub fn of(e: &anyhow::Error) -> Exit {
        for cause in e.chain() {
            if let Some(c) = cause.downcast_ref::<Coded>() {
                return c.exit;
            }
            if cause.is::<ConfigError>() {
                return Exit::Config;
            }
            if cause.is::<Refused>() {
                return Exit::BrokerRefused;
            }
            if cause.is::<clap::Error>() {
                return Exit::Usage;
            }
        }
        Exit::Runtime
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// An error with its exit code; displays exactly as the error it wraps (with its causes).
#[derive(Debug)]
pub struct Coded {
    exit: Exit,
    error: anyhow::Error,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Coded {}

fn coded(exit: Exit, e: impl Into<anyhow::Error>) -> anyhow::Error {
    Coded {
        exit,
        error: e.into(),
    }
    .into()
}

/// A problem with the input capture file (exit 4).
pub fn input(e: impl Into<anyhow::Error>) -> anyhow::Error {
    coded(Exit::Input, e)
}

/// A configuration file that cannot work (exit 3), for files other than sensor.toml.
pub fn config(e: impl Into<anyhow::Error>) -> anyhow::Error {
    coded(Exit::Config, e)
}

/// A command line that cannot work (exit 2).
pub fn usage(msg: impl fmt::Display) -> anyhow::Error {
    coded(Exit::Usage, anyhow::anyhow!("{msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_class_has_its_own_code() {
        let cfg = voipsensor::config::parse("", std::path::Path::new("x.toml")).unwrap_err();
        assert_eq!(Exit::of(&anyhow::Error::from(cfg)), Exit::Config);
        assert_eq!(Exit::of(&input(anyhow::anyhow!("gone"))), Exit::Input);
        assert_eq!(Exit::of(&usage("no")), Exit::Usage);
        let refused = anyhow::Error::from(Refused("not authorized".into()));
        assert_eq!(
            Exit::of(&refused.context("publishing")),
            Exit::BrokerRefused
        );
        assert_eq!(Exit::of(&anyhow::anyhow!("disk full")), Exit::Runtime);
        // The wrapper adds no text: the message is the error's, causes included.
        let e = input(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(format!("{e:#}"), "outer: inner");
    }
}
