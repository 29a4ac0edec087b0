//! `RUST_LOG`: the log filter, checked so a typo does not silently turn logging off.

use log::LevelFilter;
use std::str::FromStr;

/// Crates whose log targets a filter may name without a level (`RUST_LOG=rumqttc`).
const TARGETS: [&str; 6] = ["voipsensor", "rumqttc", "rustls", "pcap", "tokio", "mio"];

/// Why `spec` is not a usable filter, if it is not.
pub fn check(spec: &str) -> Option<String> {
    let directives = spec.split('/').next().unwrap_or("");
    for d in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let ok = match d.split_once('=') {
            Some((target, level)) => !target.is_empty() && LevelFilter::from_str(level).is_ok(),
            None => {
                LevelFilter::from_str(d).is_ok()
                    || TARGETS
                        .iter()
                        .any(|t| d == *t || d.starts_with(&format!("{t}::")))
            }
        };
        if !ok {
            return Some(format!(
                "RUST_LOG={spec:?}: `{d}` is neither a level (off, error, warn, info, debug, trace) \
                 nor target=level; logging at info"
            ));
        }
    }
    None
}

/// Installs the logger: `RUST_LOG` if valid, else `info`; returns why it was refused.
pub fn init() -> Option<String> {
    let spec = std::env::var("RUST_LOG").ok();
    let bad = spec.as_deref().and_then(check);
    let filter = match (&spec, &bad) {
        (Some(s), None) => s.as_str(),
        _ => "info",
    };
    env_logger::Builder::new()
        .parse_filters(filter)
        .format_timestamp_millis()
        .init();
    bad
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn levels_and_target_levels_pass_and_a_bare_word_is_refused() {
        for ok in [
            "info",
            "debug",
            "voipsensor=debug,rumqttc=warn",
            "rumqttc",
            "off",
            "",
        ] {
            assert_eq!(check(ok), None, "{ok}");
        }
        assert_eq!(
            check("bogus").as_deref(),
            Some(
                "RUST_LOG=\"bogus\": `bogus` is neither a level (off, error, warn, info, debug, \
                 trace) nor target=level; logging at info"
            )
        );
        assert!(check("voipsensor=loud").is_some());
    }
}
